/** The subset of a pino logger flushpoint uses; pass a pino logger or anything shaped like it. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
