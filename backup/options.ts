/** BackupSink options: one doc line each, units in the name, defaults applied in backupDefaults. */
import path from 'node:path';
import { directoryPath, integerInRange, knownOptionsOnly } from '../core/check.js';
import { realClock, type Clock } from '../core/clock.js';
import { seededRandom, type Random } from '../core/random.js';
import { randomInt } from 'node:crypto';
import type { FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import type { Logger } from '../core/logger.js';
import { TIMEOUT_MS_MAX, WAITERS_COUNT_MAX_DEFAULT, WAITERS_COUNT_MAX_MAX, WAITERS_COUNT_MAX_MIN, type Wal } from '../wal/index.js';
import type { Compression } from './backup-file.js';
import { backupLogger } from './log.js';
import * as L from './limits.js';
import { s3Defaults, s3Location, type S3TargetOptions } from './s3-options.js';

export type ForceFlushMode = 'barrier' | 'join' | 'reject';

export interface BackupSinkOptions {
  /** The WAL to back up. The sink reads its durable records and holds it at the checkpoint. */
  wal: Wal;
  /** Backup directory; created if missing. One sink at a time (a lock file, taken over once stale). Or give `target`. */
  dir?: string;
  /** Instead of `dir`: an S3 bucket prefix (s3-options.ts); a second sink on it gets BACKUP_LOCKED at its first publish. */
  target?: { s3: S3TargetOptions };
  /** A flush starts at least this often while there is durable data not yet backed up. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Largest raw body of one backup file; a lag of this many bytes also triggers a flush. Default 64 MiB. */
  segmentSizeBytesMax?: number;
  /** A flush starts once this many bytes are durable in the WAL and not backed up (at once, or when the running one ends). Default 256 KiB; 8 MiB on S3. */
  flushLagBytes?: number;
  /** What forceFlush does by default while a flush runs. Default 'barrier'. */
  forceFlushMode?: ForceFlushMode;
  /** Default forceFlush timeout. Default 60000 ms. */
  forceFlushTimeoutMs?: number;
  /** Most forceFlush callers waiting at once; one more is refused with a RangeError. Default 1,000,000. */
  waitersCountMax?: number;
  /** Backup file body compression. Default 'none'. */
  compression?: Compression;
  /** File system for the backup directory. Default: the real one. */
  fs?: FileSystem;
  /** Optional pino-style logger; the sink logs through its child `{ component: 'backup' }` when it has `.child`. */
  logger?: Logger;
  /** First retry delay after a failed flush; doubles per failure, with jitter. Default 100 ms. */
  retryDelayMsMin?: number;
  /** Upper bound of the retry delay. Default 10000 ms. */
  retryDelayMsMax?: number;
  /** After this many consecutive failed flushes the sink pauses (resume() restarts it). Default 10. */
  failuresCountMax?: number;
  /** A lock not refreshed for this long is stale and may be taken over. Default 10000 ms (min 2000). */
  lockStaleMs?: number;
  /** How long open waits for a backup directory locked by another sink (a stale lock included). Default 0 ms. */
  lockWaitMs?: number;
  /** Name of the sink's hold on the WAL, unique per WAL. Default 'backup:' + the resolved backup directory. */
  holdName?: string;
  /** Time and timers (tests inject a manual clock). Default: the real clock. */
  clock?: Clock;
  /** Random source for the retry jitter (tests inject a seeded one). Default: seeded from node:crypto. */
  random?: Random;
}

export interface ResolvedBackupOptions {
  wal: Wal;
  /** The backup directory, or for S3 its location s3://bucket/prefix (names it in messages). */
  dir: string;
  /** The S3 target's options, or null for a directory. */
  s3: S3TargetOptions | null;
  flushIntervalMs: number;
  segmentSizeBytesMax: number;
  flushLagBytes: number;
  forceFlushMode: ForceFlushMode;
  forceFlushTimeoutMs: number;
  waitersCountMax: number;
  compression: Compression;
  fs: FileSystem;
  logger: Logger | undefined;
  retryDelayMsMin: number;
  retryDelayMsMax: number;
  failuresCountMax: number;
  lockStaleMs: number;
  lockWaitMs: number;
  holdName: string;
  clock: Clock;
  random: Random;
}

export function checkMode(mode: unknown, name: string): ForceFlushMode {
  if (mode !== 'barrier' && mode !== 'join' && mode !== 'reject') throw new RangeError(`${name} must be 'barrier', 'join' or 'reject', got ${String(mode)}`);
  return mode;
}

export const BACKUP_OPTION_NAMES: readonly (keyof BackupSinkOptions)[] = [
  'wal', 'dir', 'target', 'flushIntervalMs', 'segmentSizeBytesMax', 'flushLagBytes', 'forceFlushMode', 'forceFlushTimeoutMs', 'waitersCountMax', 'compression', 'fs', 'logger',
  'retryDelayMsMin', 'retryDelayMsMax', 'failuresCountMax', 'lockStaleMs', 'lockWaitMs', 'holdName', 'clock', 'random',
];

export function backupDefaults(o: BackupSinkOptions): ResolvedBackupOptions {
  if (o === null || typeof o !== 'object') throw new TypeError('BackupSink.open needs an options object');
  knownOptionsOnly(o, BACKUP_OPTION_NAMES, 'BackupSink.open');
  if (o.wal === null || typeof o.wal !== 'object' || typeof o.wal.append !== 'function') throw new TypeError('options.wal must be an open Wal');
  const compression = o.compression ?? 'none';
  if (compression !== 'none' && compression !== 'deflate') throw new RangeError(`compression must be 'none' or 'deflate', got ${String(compression)}`);
  let s3: S3TargetOptions | null = null;
  if (o.target !== undefined) {
    if (o.target === null || typeof o.target !== 'object' || typeof o.target.s3 !== 'object' || o.target.s3 === null) throw new TypeError('options.target must be { s3: { endpoint, bucket, prefix, ... } }');
    if (o.dir !== undefined) throw new TypeError('give options.dir (a directory) or options.target (S3), not both');
    s3 = o.target.s3;
  }
  const dir = s3 === null ? directoryPath(o.dir, 'options.dir') : (() => {
    const r = s3Defaults(s3); // argument errors at open, before any request
    return s3Location(r.bucket, r.prefix);
  })();
  if (o.holdName !== undefined && (typeof o.holdName !== 'string' || o.holdName.length === 0)) throw new TypeError('holdName must be a non-empty string');
  const retryDelayMsMin = integerInRange(o.retryDelayMsMin ?? L.RETRY_DELAY_MS_MIN_DEFAULT, 'retryDelayMsMin', 1, L.RETRY_DELAY_MS_LIMIT);
  return {
    wal: o.wal,
    dir,
    s3,
    flushIntervalMs: integerInRange(o.flushIntervalMs ?? L.FLUSH_INTERVAL_MS_DEFAULT, 'flushIntervalMs', 1, L.FLUSH_INTERVAL_MS_MAX),
    segmentSizeBytesMax: integerInRange(o.segmentSizeBytesMax ?? L.SEGMENT_SIZE_BYTES_MAX_DEFAULT, 'segmentSizeBytesMax', L.SEGMENT_SIZE_BYTES_MAX_MIN, L.SEGMENT_SIZE_BYTES_MAX_MAX),
    flushLagBytes: integerInRange(o.flushLagBytes ?? (s3 === null ? L.FLUSH_LAG_BYTES_DEFAULT : L.FLUSH_LAG_BYTES_DEFAULT_S3), 'flushLagBytes', L.FLUSH_LAG_BYTES_MIN, L.FLUSH_LAG_BYTES_MAX),
    forceFlushMode: checkMode(o.forceFlushMode ?? 'barrier', 'forceFlushMode'),
    // Infinity means no timeout, as a per-call timeoutMs does (checkWaitOptions).
    forceFlushTimeoutMs: o.forceFlushTimeoutMs === Infinity ? Infinity : integerInRange(o.forceFlushTimeoutMs ?? L.FORCE_FLUSH_TIMEOUT_MS_DEFAULT, 'forceFlushTimeoutMs', 0, TIMEOUT_MS_MAX),
    waitersCountMax: integerInRange(o.waitersCountMax ?? WAITERS_COUNT_MAX_DEFAULT, 'waitersCountMax', WAITERS_COUNT_MAX_MIN, WAITERS_COUNT_MAX_MAX),
    compression,
    fs: o.fs ?? nodeFileSystem,
    logger: backupLogger(o.logger),
    retryDelayMsMin,
    retryDelayMsMax: integerInRange(o.retryDelayMsMax ?? L.RETRY_DELAY_MS_MAX_DEFAULT, 'retryDelayMsMax', retryDelayMsMin, L.RETRY_DELAY_MS_LIMIT),
    failuresCountMax: integerInRange(o.failuresCountMax ?? L.FAILURES_COUNT_MAX_DEFAULT, 'failuresCountMax', 1, L.FAILURES_COUNT_MAX_LIMIT),
    lockStaleMs: integerInRange(o.lockStaleMs ?? L.LOCK_STALE_MS_DEFAULT, 'lockStaleMs', L.LOCK_STALE_MS_MIN, L.LOCK_STALE_MS_MAX),
    lockWaitMs: integerInRange(o.lockWaitMs ?? L.LOCK_WAIT_MS_DEFAULT, 'lockWaitMs', 0, L.LOCK_WAIT_MS_MAX),
    holdName: o.holdName ?? `backup:${s3 === null ? path.resolve(dir) : dir}`,
    clock: o.clock ?? realClock,
    random: o.random ?? seededRandom(randomInt(2 ** 32)),
  };
}

/** RangeError unless the backup and WAL directories are apart: neither is the other nor inside it (resolved paths). */
export function checkDirsApart(backupDir: string, walDir: string): void {
  const b = path.resolve(backupDir);
  const w = path.resolve(walDir);
  const within = (child: string, parent: string): boolean => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
  if (within(b, w) || within(w, b)) {
    throw new RangeError(`backup directory ${backupDir} (${b}) overlaps the WAL directory ${walDir} (${w}): it must be neither the WAL directory, nor inside it, nor contain it`);
  }
}
