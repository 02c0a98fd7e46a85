/** WAL options: one doc line each, units in the name, defaults applied in one place (walDefaults). */
import { directoryPath, integerInRange } from '../core/check.js';
import type { Logger } from '../core/logger.js';
import type { FileSystem, SyncMethod } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { SEGMENT_HEADER_BYTES } from './format.js';
import { recordBytes } from '../record/format.js';

export type { Logger };
export type RecoveryMode = 'truncate-torn-tail' | 'strict';

export interface WalOptions {
  /** Directory holding the segments; created if missing. One process at a time (flock). */
  dir: string;
  /** Size of each segment file, preallocated with zeros. Default 64 MiB. */
  segmentSizeBytes?: number;
  /** How a commit is made durable. Default 'fdatasync'. */
  syncMethod?: SyncMethod;
  /** Extra time a batch gathers before its flush starts, in ms. Default 0 (the next event-loop turn). */
  commitDelayMs?: number;
  /** What to do with a torn tail found on open: cut it (default) or fail with WAL_CORRUPT. */
  recovery?: RecoveryMode;
  /** The file system. Default: the real one (node:fs). */
  fs?: FileSystem;
  /** Optional pino-style logger: open, recovery, repairs and slow syncs are logged. */
  logger?: Logger;
  /** A commit slower than this is logged and counted as slow. Default 1000 ms. */
  fsyncLatencyMsWarn?: number;
  /** Size of the shared-memory chunks records are encoded into. Default 1 MiB. */
  stagingChunkBytes?: number;
  /** LSN of the first record when the directory holds no log yet (restores use it). Default 1. */
  firstLsn?: number;
}

export interface ResolvedWalOptions {
  dir: string;
  segmentSizeBytes: number;
  syncMethod: SyncMethod;
  commitDelayMs: number;
  recovery: RecoveryMode;
  fs: FileSystem;
  logger: Logger | undefined;
  fsyncLatencyMsWarn: number;
  stagingChunkBytes: number;
  firstLsn: number;
}

export const SEGMENT_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024;
export const SEGMENT_SIZE_BYTES_MIN = 1024;
/** Segment sizes are stored as u32 in the header. */
export const SEGMENT_SIZE_BYTES_MAX = 2 ** 32 - 8;

export function walDefaults(options: WalOptions): ResolvedWalOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('Wal.open needs an options object');
  const segmentSizeBytes = integerInRange(options.segmentSizeBytes ?? SEGMENT_SIZE_BYTES_DEFAULT, 'segmentSizeBytes', SEGMENT_SIZE_BYTES_MIN, SEGMENT_SIZE_BYTES_MAX);
  if (segmentSizeBytes % 8 !== 0) throw new RangeError(`segmentSizeBytes must be a multiple of 8, got ${segmentSizeBytes}`);
  const syncMethod = options.syncMethod ?? 'fdatasync';
  if (syncMethod !== 'fdatasync' && syncMethod !== 'fsync') throw new RangeError(`syncMethod must be 'fdatasync' or 'fsync', got ${String(syncMethod)}`);
  const recovery = options.recovery ?? 'truncate-torn-tail';
  if (recovery !== 'truncate-torn-tail' && recovery !== 'strict') throw new RangeError(`recovery must be 'truncate-torn-tail' or 'strict', got ${String(recovery)}`);
  const commitDelayMs = options.commitDelayMs ?? 0;
  if (typeof commitDelayMs !== 'number' || !(commitDelayMs >= 0) || commitDelayMs > 10_000) throw new RangeError(`commitDelayMs must be in [0, 10000], got ${commitDelayMs}`);
  return {
    dir: directoryPath(options.dir, 'options.dir'),
    segmentSizeBytes,
    syncMethod,
    commitDelayMs,
    recovery,
    fs: options.fs ?? nodeFileSystem,
    logger: options.logger,
    fsyncLatencyMsWarn: integerInRange(options.fsyncLatencyMsWarn ?? 1000, 'fsyncLatencyMsWarn', 1, 3_600_000),
    stagingChunkBytes: integerInRange(options.stagingChunkBytes ?? 1024 * 1024, 'stagingChunkBytes', 4096, 256 * 1024 * 1024),
    firstLsn: integerInRange(options.firstLsn ?? 1, 'firstLsn', 1, Number.MAX_SAFE_INTEGER - 1),
  };
}

/** Largest payload a segment of this size can hold. */
export function payloadBytesMax(segmentSizeBytes: number): number {
  let n = segmentSizeBytes - SEGMENT_HEADER_BYTES - 24;
  while (n > 0 && recordBytes(n) + SEGMENT_HEADER_BYTES > segmentSizeBytes) n--;
  return n;
}
