/** WAL options: one doc line each, units in the name, defaults applied in one place (walDefaults). */
import { booleanOption, directoryPath, integerInRange, knownOptionsOnly } from '../core/check.js';
import type { Logger } from '../core/logger.js';
import type { CommitWait, FileSystem, SyncMethod } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { randomInt } from 'node:crypto';
import type { Random } from '../core/random.js';
import { SEGMENT_HEADER_BYTES } from './format.js';
import { RECORD_HEADER_BYTES, recordBytes } from '../record/format.js';
import {
  COMMIT_DELAY_MS_DEFAULT,
  COMMIT_DELAY_MS_MAX,
  FSYNC_LATENCY_MS_WARN_DEFAULT,
  FSYNC_LATENCY_MS_WARN_MAX,
  FSYNC_LATENCY_MS_WARN_MIN,
  PAYLOAD_BYTES_MAX,
  RECYCLE_SEGMENTS_DEFAULT,
  RECYCLE_SEGMENTS_MAX,
  SEGMENT_SIZE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_MAX,
  SEGMENT_SIZE_BYTES_MIN,
  STAGING_CHUNK_BYTES_DEFAULT,
  STAGING_CHUNK_BYTES_MAX,
  STAGING_CHUNK_BYTES_MIN,
  WAITERS_COUNT_MAX_DEFAULT,
  WAITERS_COUNT_MAX_MAX,
  WAITERS_COUNT_MAX_MIN,
} from './limits.js';

export type { Logger };
export type RecoveryMode = 'truncate-torn-tail' | 'strict';
/** Where a commit's writev + fdatasync run: on the commit worker thread, or on the event loop's own thread. */
export type SyncMode = 'worker' | 'inline';
/** Pipelined group commit: 'auto' where it measures faster (default), 'off', or 'always' (tests, and loads known to gain). */
export type PipelineMode = 'auto' | 'off' | 'always';

export interface WalOptions {
  /** Directory holding the segments; created if missing. One process at a time (flock). */
  dir: string;
  /** Size of each segment file, in bytes; zero-filled in steps ahead of the write position. Default 64 MiB. */
  segmentSizeBytes?: number;
  /** How a commit is made durable. Default 'fdatasync'. */
  syncMethod?: SyncMethod;
  /**
   * Where each commit's writev + sync run: 'worker' (default) on the commit worker thread, so the event
   * loop never blocks; 'inline' synchronously on the calling thread, which blocks the event loop for the
   * whole write + sync of every commit (lower latency for one writer: no thread wake-ups). The same
   * durability either way. 'inline' needs a file system with synchronous calls (FileSystem.syncCalls).
   */
  syncMode?: SyncMode;
  /**
   * How the event loop waits for a commit on the commit worker (syncMode 'worker'; ignored with
   * 'inline'). 'auto' (default): while the log is busy (a commit sent within 1 ms of the previous
   * one's answer) and its commits are quick (writev + sync under 1 ms on average), the loop checks for
   * the answer once per event-loop turn (setImmediate) for up to 1 ms instead of sleeping until a
   * thread wakes it, and the worker looks for the next request for up to 100 us before it sleeps;
   * otherwise both sleep (a slow disk's syncs gain little from it, and a loop polling through them
   * would look saturated). The loop keeps serving its other events either way, never blocked; what
   * busy commits cost is a CPU kept busy while they are in flight (one writer here 1.6-1.9x the
   * commits per second of 'sleep'). 'poll': the same for every commit, idle or not. 'sleep': the
   * loop and the worker always sleep until woken (the least CPU; each commit then pays two thread
   * wake-ups, ~30-40 us each here). The same durability in every mode.
   */
  commitWait?: CommitWait;
  /** Extra time a batch gathers before its flush starts, in ms. Default 0 (the next event-loop turn). */
  commitDelayMs?: number;
  /**
   * Pipelined group commit, in syncMode 'worker' with commitDelayMs 0 (ignored otherwise): the writers in
   * two cohorts, a flush starting at once with what was appended while the previous one ran, so one
   * cohort's event-loop work overlaps the other's writev + fdatasync; still one flush in flight.
   * 'auto' (default): tried now and then under load of at least 32 records per batch, and kept only while
   * it acknowledges more records per ms than full batches (many writers of large records gain; a flush
   * whose fixed cost dominates does not). 'off': full batches only. 'always': pipelined whenever records
   * wait while a flush runs (tests; loads known to gain).
   */
  pipelineCommits?: PipelineMode;
  /** What to do with a torn tail found on open: cut it (default) or fail with WAL_CORRUPT. */
  recovery?: RecoveryMode;
  /** The file system. Default: the real one (node:fs). */
  fs?: FileSystem;
  /** Optional pino-style logger (a child with { component: 'wal' } is used when it has .child). */
  logger?: Logger;
  /** A commit slower than this, in ms, is logged and counted as slow. Default 1000 ms. */
  fsyncLatencyMsWarn?: number;
  /** Size of the shared-memory chunks records are encoded into, in bytes. Default 1 MiB. */
  stagingChunkBytes?: number;
  /** LSN of the first record when the directory holds no log yet (restores use it). Default 1. */
  firstLsn?: number;
  /** Most callers waiting on the log at once (waitDurable, sync, nextDurable), a count; beyond it a wait rejects with RangeError. Default 1,000,000. */
  waitersCountMax?: number;
  /** Most segment files freed by truncateBefore that are kept (renamed) for reuse as later segments, a count; 0 deletes them all (as before). Default 2. */
  recycleSegments?: number;
  /**
   * Drop the page cache of durable log bytes once the writer is 16 MiB past them (posix_fadvise
   * DONTNEED, wal/cache-dropper.ts), so a growing log reuses its memory instead of filling the cache.
   * Needs flushpoint's native addon (built by npm install; `pageCacheDrop()` tells); without it, nothing
   * is dropped. Default true.
   */
  dropCacheBehind?: boolean;
  /** Random source of each new segment's salt (wal/format.ts). Default: node:crypto; tests pass a seeded one (core/random.ts). */
  random?: Random;
}

export interface ResolvedWalOptions {
  dir: string;
  segmentSizeBytes: number;
  syncMethod: SyncMethod;
  syncMode: SyncMode;
  commitWait: CommitWait;
  commitDelayMs: number;
  pipelineCommits: PipelineMode;
  recovery: RecoveryMode;
  fs: FileSystem;
  logger: Logger | undefined;
  fsyncLatencyMsWarn: number;
  stagingChunkBytes: number;
  firstLsn: number;
  waitersCountMax: number;
  recycleSegments: number;
  dropCacheBehind: boolean;
  random: Random;
}

const WAL_OPTION_NAMES: readonly (keyof WalOptions)[] = [
  'dir',
  'segmentSizeBytes',
  'syncMethod',
  'syncMode',
  'commitWait',
  'commitDelayMs',
  'pipelineCommits',
  'recovery',
  'fs',
  'logger',
  'fsyncLatencyMsWarn',
  'stagingChunkBytes',
  'firstLsn',
  'waitersCountMax',
  'recycleSegments',
  'dropCacheBehind',
  'random',
];

/** The WAL logs through a child carrying { component: 'wal' } when the logger can make one (pino can). */
function componentLogger(logger: Logger | undefined): Logger | undefined {
  const withChild = logger as (Logger & { child?: (bindings: object) => Logger }) | undefined;
  return typeof withChild?.child === 'function' ? withChild.child({ component: 'wal' }) : logger;
}

/** Segment salts come from node:crypto unless a test injects a seeded source. */
const CRYPTO_RANDOM: Random = { seed: 0, next: () => randomInt(2 ** 48) / 2 ** 48, int: (n: number) => randomInt(n) };

function randomSource(random: Random | undefined): Random {
  if (random === undefined) return CRYPTO_RANDOM;
  if (random === null || typeof random !== 'object' || typeof random.int !== 'function') throw new TypeError('options.random must be a Random (core/random.ts) with int(n)');
  return random;
}

export function walDefaults(options: WalOptions): ResolvedWalOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('Wal.open needs an options object');
  knownOptionsOnly(options, WAL_OPTION_NAMES, 'Wal.open');
  const segmentSizeBytes = integerInRange(options.segmentSizeBytes ?? SEGMENT_SIZE_BYTES_DEFAULT, 'segmentSizeBytes', SEGMENT_SIZE_BYTES_MIN, SEGMENT_SIZE_BYTES_MAX);
  if (segmentSizeBytes % 8 !== 0) throw new RangeError(`segmentSizeBytes must be a multiple of 8, got ${segmentSizeBytes}`);
  const syncMethod = options.syncMethod ?? 'fdatasync';
  if (syncMethod !== 'fdatasync' && syncMethod !== 'fsync') throw new RangeError(`syncMethod must be 'fdatasync' or 'fsync', got ${String(syncMethod)}`);
  const syncMode = options.syncMode ?? 'worker';
  if (syncMode !== 'worker' && syncMode !== 'inline') throw new RangeError(`syncMode must be 'worker' or 'inline', got ${String(syncMode)}`);
  const commitWait = options.commitWait ?? 'auto';
  if (commitWait !== 'auto' && commitWait !== 'sleep' && commitWait !== 'poll') throw new RangeError(`commitWait must be 'auto', 'sleep' or 'poll', got ${String(commitWait)}`);
  const fs = options.fs ?? nodeFileSystem;
  if (syncMode === 'inline' && fs.syncCalls !== true) {
    throw new TypeError("syncMode 'inline' needs a file system with synchronous calls (FileSystem.syncCalls: writevSync, datasyncSync, syncSync); this one has none");
  }
  const recovery = options.recovery ?? 'truncate-torn-tail';
  if (recovery !== 'truncate-torn-tail' && recovery !== 'strict') throw new RangeError(`recovery must be 'truncate-torn-tail' or 'strict', got ${String(recovery)}`);
  const commitDelayMs = options.commitDelayMs ?? COMMIT_DELAY_MS_DEFAULT;
  if (typeof commitDelayMs !== 'number' || !(commitDelayMs >= 0) || commitDelayMs > COMMIT_DELAY_MS_MAX) {
    throw new RangeError(`commitDelayMs must be in [0, ${COMMIT_DELAY_MS_MAX}], got ${commitDelayMs}`);
  }
  const pipelineCommits = options.pipelineCommits ?? 'auto';
  if (pipelineCommits !== 'auto' && pipelineCommits !== 'off' && pipelineCommits !== 'always') {
    throw new RangeError(`pipelineCommits must be 'auto', 'off' or 'always', got ${String(pipelineCommits)}`);
  }
  return {
    dir: directoryPath(options.dir, 'options.dir'),
    segmentSizeBytes,
    syncMethod,
    syncMode,
    commitWait,
    commitDelayMs,
    pipelineCommits,
    recovery,
    fs,
    logger: componentLogger(options.logger),
    fsyncLatencyMsWarn: integerInRange(options.fsyncLatencyMsWarn ?? FSYNC_LATENCY_MS_WARN_DEFAULT, 'fsyncLatencyMsWarn', FSYNC_LATENCY_MS_WARN_MIN, FSYNC_LATENCY_MS_WARN_MAX),
    stagingChunkBytes: integerInRange(options.stagingChunkBytes ?? STAGING_CHUNK_BYTES_DEFAULT, 'stagingChunkBytes', STAGING_CHUNK_BYTES_MIN, STAGING_CHUNK_BYTES_MAX),
    firstLsn: integerInRange(options.firstLsn ?? 1, 'firstLsn', 1, Number.MAX_SAFE_INTEGER - 1),
    waitersCountMax: integerInRange(options.waitersCountMax ?? WAITERS_COUNT_MAX_DEFAULT, 'waitersCountMax', WAITERS_COUNT_MAX_MIN, WAITERS_COUNT_MAX_MAX),
    recycleSegments: integerInRange(options.recycleSegments ?? RECYCLE_SEGMENTS_DEFAULT, 'recycleSegments', 0, RECYCLE_SEGMENTS_MAX),
    dropCacheBehind: booleanOption(options.dropCacheBehind, 'dropCacheBehind', true),
    random: randomSource(options.random),
  };
}

/**
 * Largest payload one record can carry in a segment of this size: it must fit an empty segment, and
 * no record may reach RECORD_BYTES_MAX (limits.ts), whatever the segment size.
 */
export function payloadBytesMax(segmentSizeBytes: number): number {
  let n = Math.min(segmentSizeBytes - SEGMENT_HEADER_BYTES - RECORD_HEADER_BYTES, PAYLOAD_BYTES_MAX);
  while (n > 0 && recordBytes(n) + SEGMENT_HEADER_BYTES > segmentSizeBytes) n--;
  return n;
}
