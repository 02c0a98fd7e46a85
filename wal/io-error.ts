/** How the WAL reports a file-system error: WAL_FAILED naming what failed, with the errno error as cause. */
import { FlushpointError, ErrorCode } from '../core/errors.js';

/** Wraps an I/O error; FlushpointErrors and argument errors (TypeError, RangeError) pass through. */
export function wrapIoError(err: unknown, what: string): unknown {
  if (err instanceof FlushpointError || err instanceof TypeError || err instanceof RangeError) return err;
  const e = err as NodeJS.ErrnoException;
  return new FlushpointError(ErrorCode.WAL_FAILED, `WAL ${what} failed: ${e?.message ?? String(err)}`, { cause: err, file: e?.path });
}
