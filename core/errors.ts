/**
 * FlushpointError: every operating error the engine reports carries a stable uppercase `code`, a message
 * that names the file, byte offset or LSN involved, and the underlying `cause` where there is one.
 *
 * Wrong arguments are not operating errors: they are TypeError / RangeError, thrown at once.
 * An abort rejects with the AbortSignal's own reason, as Node's APIs do.
 */

export const ErrorCode = {
  WAL_LOCKED: 'WAL_LOCKED',
  WAL_CORRUPT: 'WAL_CORRUPT',
  WAL_CLOSED: 'WAL_CLOSED',
  WAL_FAILED: 'WAL_FAILED',
  /** A read reached records that truncateBefore deleted meanwhile (hold the LSN to keep them). */
  WAL_TRUNCATED: 'WAL_TRUNCATED',
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
  FLUSH_TIMEOUT: 'FLUSH_TIMEOUT',
  FLUSH_IN_PROGRESS: 'FLUSH_IN_PROGRESS',
  BACKUP_LOCKED: 'BACKUP_LOCKED',
  /** No backup at the path given: it does not exist, is not a directory, or holds no backup at all. */
  BACKUP_NOT_FOUND: 'BACKUP_NOT_FOUND',
  BACKUP_CORRUPT: 'BACKUP_CORRUPT',
  BACKUP_GAP: 'BACKUP_GAP',
  BACKUP_FAILED: 'BACKUP_FAILED',
  /** The WAL's directory lock cannot be taken on this installation: fs-ext's native addon is not built. */
  LOCK_UNAVAILABLE: 'LOCK_UNAVAILABLE',
  /** The engine's state cannot be rebuilt: no valid checkpoint and the WAL does not reach back to LSN 1, or a record is not the engine's. */
  ENGINE_CORRUPT: 'ENGINE_CORRUPT',
  /** The engine is draining (rolling restart): new writes are refused until resume() or close. */
  ENGINE_DRAINING: 'ENGINE_DRAINING',
  /**
   * A checkpoint could not be written or published: the cause is the file system's (ENOSPC, EIO...) and
   * `file` names the file. No WAL segment a checkpoint still needs was dropped; automatic ones retry.
   */
  ENGINE_CHECKPOINT_FAILED: 'ENGINE_CHECKPOINT_FAILED',
  /** The admin socket path is taken: a live server answers there, or it is not a socket (never replaced). */
  ADMIN_SOCKET_IN_USE: 'ADMIN_SOCKET_IN_USE',
  /** The admin socket could not be made: the file system refused a step (a full disk, EACCES); `file` names it. */
  ADMIN_SOCKET_FAILED: 'ADMIN_SOCKET_FAILED',
  /**
   * The directory holds another kind of flushpoint directory than the one asked for (an engine's or a
   * backup where a WAL is opened; a WAL or a backup where an engine is): refused, nothing written.
   */
  WRONG_DIRECTORY: 'WRONG_DIRECTORY',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Extra facts an error may carry, for programs that react to it (all optional). */
export interface ErrorDetails {
  /** The file involved. */
  file?: string;
  /** Byte offset within `file`. */
  offset?: number;
  /** The LSN involved. */
  lsn?: number;
  /** For FLUSH_TIMEOUT: the checkpoint or durable LSN reached when the caller gave up. */
  reachedLsn?: number;
  /** For WAL_CORRUPT: true when the damage is a torn tail refused by `recovery: 'strict'`. */
  tornTail?: boolean;
}

export class FlushpointError extends Error {
  readonly code: ErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly lsn: number | undefined;
  readonly reachedLsn: number | undefined;
  readonly tornTail: boolean | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorDetails & { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FlushpointError';
    this.code = code;
    this.file = options.file;
    this.offset = options.offset;
    this.lsn = options.lsn;
    this.reachedLsn = options.reachedLsn;
    this.tornTail = options.tornTail;
  }
}

export function isFlushpointError(err: unknown, code?: ErrorCode): err is FlushpointError {
  return err instanceof FlushpointError && (code === undefined || err.code === code);
}

/** An assertion that stays on in production: a broken invariant is a bug, never an operating error. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`flushpoint assertion failed: ${message}`);
}
