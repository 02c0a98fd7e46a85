/**
 * Sublevels of an Engine. abstract-level resolves an encoding name through the database's own
 * transcoder, which knows only its built-in names; a sublevel has its own transcoder, so the engine's
 * 'msgpack' name has to be resolved there too: in the sublevel's options, in per-operation options,
 * and in sublevels of sublevels.
 */
import { AbstractSublevel } from 'abstract-level';
import { resolveEncoding } from './msgpack-encoding.js';

type EncodingOptions = { keyEncoding?: unknown; valueEncoding?: unknown };

/** `options` with 'msgpack' replaced by the encoding object in keyEncoding and valueEncoding. */
export function resolveEncodingOptions<T>(options: T): T {
  if (options === null || typeof options !== 'object') return options;
  const resolved: EncodingOptions = { ...(options as EncodingOptions) };
  if (resolved.keyEncoding !== undefined) resolved.keyEncoding = resolveEncoding(resolved.keyEncoding);
  if (resolved.valueEncoding !== undefined) resolved.valueEncoding = resolveEncoding(resolved.valueEncoding);
  return resolved as T;
}

/** The storage format is the engine's EngineKey (not imported: engine.ts imports this module). */
export class EngineSublevel extends AbstractSublevel<unknown, string | Uint8Array, unknown, unknown> {
  constructor(db: unknown, name: string | string[], options?: object) {
    super(db, name as string, resolveEncodingOptions(options) as never);
  }

  override keyEncoding(encoding?: unknown): never {
    return super.keyEncoding(resolveEncoding(encoding) as never) as never;
  }

  override valueEncoding(encoding?: unknown): never {
    return super.valueEncoding(resolveEncoding(encoding) as never) as never;
  }

  /** @internal abstract-level's hook: sublevels of this sublevel accept 'msgpack' too. */
  _sublevel(name: string | string[], options: object): EngineSublevel {
    return new EngineSublevel(this, name, options);
  }
}
