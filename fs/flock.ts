/**
 * flock(2) through fs-ext's native addon, loaded on first use. Importing flushpoint must work where the
 * addon was not built (npm's --ignore-scripts, install scripts not approved, no compiler): only taking a
 * WAL's lock needs it, and that fails with LOCK_UNAVAILABLE saying how to fix it.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { ErrorCode, FlushpointError } from '../core/errors.js';

type Flock = (fd: number, flags: 'exnb') => Promise<void>;

let flock: Flock | null = null;

/** fs-ext's flock, promisified; throws LOCK_UNAVAILABLE when the addon cannot be loaded. */
export function loadFlock(): Flock {
  if (flock !== null) return flock;
  let fsExt: typeof import('fs-ext');
  try {
    fsExt = createRequire(import.meta.url)('fs-ext') as typeof import('fs-ext');
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    // Not installed at all: npm leaves an optional dependency out when its build fails (no compiler).
    const missing = (err as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND' && /'fs-ext'/.test(reason ?? '');
    throw new FlushpointError(
      ErrorCode.LOCK_UNAVAILABLE,
      missing
        ? "the WAL's directory lock needs fs-ext, an optional dependency that is not installed (npm leaves it out when its build fails); " +
            "install python3, make and a C++ compiler, then 'npm install fs-ext'"
        : `the WAL's directory lock needs fs-ext's native addon, which did not load (${reason}); build it with 'npm rebuild fs-ext' ` +
            '(needs python3, make and a C++ compiler; with npm 11, approve its install script)',
      { cause: err },
    );
  }
  flock = promisify(fsExt.flock) as Flock;
  return flock;
}
