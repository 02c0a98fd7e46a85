/** The backup layer's logger: a child tagged `{ component: 'backup' }` when the logger can make one (pino). */
import type { Logger } from '../core/logger.js';

export const LOG_COMPONENT = 'backup';

export function backupLogger(logger: Logger | undefined): Logger | undefined {
  if (logger === undefined) return undefined;
  const child = (logger as { child?: (bindings: object) => Logger }).child;
  return typeof child === 'function' ? child.call(logger, { component: LOG_COMPONENT }) : logger;
}
