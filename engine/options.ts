/** Engine options: one doc line each, units in the name, defaults applied in one place (engineDefaults). */
import { directoryPath, integerInRange, knownOptionsOnly } from '../core/check.js';
import type { Logger } from '../core/logger.js';
import type { FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/index.js';
import type { BackupSinkOptions } from '../backup/index.js';
import { walDefaults, type WalOptions } from '../wal/index.js';
import { BACKUP_OPTION_NAMES } from '../backup/options.js';
import { LOCK_STALE_MS_DEFAULT, LOCK_WAIT_MS_MAX } from '../backup/limits.js';
import type { EngineAdminOptions } from './admin/engine-admin.js';
import { CHECKPOINT_EVERY_BYTES_DEFAULT, CHECKPOINT_EVERY_BYTES_MIN, ENGINE_BACKUP_LOCK_WAIT_MARGIN_MS, CHECKPOINT_STATE_PERCENT_DEFAULT, CHECKPOINT_STATE_PERCENT_MAX, VALUE_SLAB_BYTES, VALUE_SLAB_VALUE_BYTES_MIN } from './limits.js';

/** Options of the engine's own WAL (under <location>/wal); dir, fs and logger come from the engine. */
export type EngineWalOptions = Omit<WalOptions, 'dir' | 'fs' | 'logger'>;
/** Options of the engine's backup sink; wal comes from the engine, fs and logger default to the engine's. */
export type EngineBackupOptions = Omit<BackupSinkOptions, 'wal'>;

/** What the engine adds to abstract-level's options (keyEncoding, valueEncoding, createIfMissing...). */
export interface EngineOwnOptions {
  /** Options of the WAL under <location>/wal (segmentSizeBytes, commitDelayMs, syncMethod, syncMode: 'inline' blocks the loop per commit ...). */
  wal?: EngineWalOptions;
  /** An automatic checkpoint starts once this many bytes of records were appended since the last one. Default 64 MiB. */
  checkpointEveryBytes?: number;
  /**
   * ...and, for a state larger than that, once the bytes appended since the last checkpoint reach this
   * percent of the state's size (the newest checkpoint's bytes per key times the keys held now): each
   * checkpoint rewrites the whole state, so the bytes checkpoints write stay about 100/percent times
   * the WAL's. Default 100; 0: checkpointEveryBytes alone.
   */
  checkpointStatePercent?: number;
  /** Runs a BackupSink on the engine's WAL; closed before the WAL, so close never skips the final backup. */
  backup?: EngineBackupOptions;
  /** The file system (tests pass a MemoryFileSystem or FaultFileSystem). Default: the real one. */
  fs?: FileSystem;
  /** Optional pino-style logger: open, recovery, checkpoints, fallbacks. */
  logger?: Logger;
  /** The admin endpoint: HTTP on the Unix socket at socketPath (mode 0600). None by default. */
  admin?: EngineAdminOptions;
  /**
   * @internal Size of a value slab (engine/value-slabs.ts), for tests that fill and relocate slabs with
   * few values. Default VALUE_SLAB_BYTES.
   */
  valueSlabBytes?: number;
}

export interface ResolvedEngineOptions {
  location: string;
  wal: EngineWalOptions;
  checkpointEveryBytes: number;
  checkpointStatePercent: number;
  backup: EngineBackupOptions | undefined;
  fs: FileSystem;
  logger: Logger | undefined;
  admin: EngineAdminOptions | undefined;
  valueSlabBytes: number;
}



export function engineDefaults(location: unknown, o: EngineOwnOptions): ResolvedEngineOptions {
  const wal = o.wal ?? {};
  if (wal === null || typeof wal !== 'object') throw new TypeError('options.wal must be an object');
  for (const k of ['dir', 'fs', 'logger'] as const) {
    if (k in wal) throw new TypeError(`options.wal.${k} is set by the engine (use options.${k === 'dir' ? 'location' : k})`);
  }
  if (o.backup !== undefined && (o.backup === null || typeof o.backup !== 'object')) throw new TypeError('options.backup must be an object');
  if (o.backup && 'wal' in o.backup) throw new TypeError('options.backup.wal is set by the engine');
  if (o.backup) knownOptionsOnly(o.backup, BACKUP_OPTION_NAMES.filter((n) => n !== 'wal'), 'options.backup');
  if (o.admin !== undefined && (o.admin === null || typeof o.admin !== 'object' || typeof o.admin.socketPath !== 'string')) throw new TypeError('options.admin must be { socketPath: string }');
  if (o.admin) knownOptionsOnly(o.admin, ['socketPath', 'requestTimeoutMs'], 'options.admin');
  const dir = directoryPath(location, 'location');
  // The WAL's options checked now, before open creates anything under the location.
  walDefaults({ ...wal, dir: `${dir}/wal` });
  return {
    location: dir,
    wal,
    checkpointEveryBytes: integerInRange(o.checkpointEveryBytes ?? CHECKPOINT_EVERY_BYTES_DEFAULT, 'checkpointEveryBytes', CHECKPOINT_EVERY_BYTES_MIN, Number.MAX_SAFE_INTEGER),
    checkpointStatePercent: integerInRange(o.checkpointStatePercent ?? CHECKPOINT_STATE_PERCENT_DEFAULT, 'checkpointStatePercent', 0, CHECKPOINT_STATE_PERCENT_MAX),
    backup: o.backup && backupWithLockWait(o.backup),
    fs: o.fs ?? nodeFileSystem,
    logger: o.logger,
    admin: o.admin,
    valueSlabBytes: integerInRange(o.valueSlabBytes ?? VALUE_SLAB_BYTES, 'valueSlabBytes', VALUE_SLAB_VALUE_BYTES_MIN, VALUE_SLAB_BYTES),
  };
}

/**
 * The sink's options with lockWaitMs, where not given, long enough for a lock left by a killed process
 * to turn stale (lockStaleMs and a margin): an engine restarted at once after a crash (a supervisor's
 * restart) would otherwise fail with BACKUP_LOCKED for up to lockStaleMs, though its predecessor is dead
 * (the WAL's flock died with it). A live holder of the location holds the WAL's lock too, and open
 * fails on that first (WAL_LOCKED), without waiting.
 */
function backupWithLockWait(backup: EngineBackupOptions): EngineBackupOptions {
  if (backup.lockWaitMs !== undefined) return backup;
  const staleMs = typeof backup.lockStaleMs === 'number' ? backup.lockStaleMs : LOCK_STALE_MS_DEFAULT;
  return { ...backup, lockWaitMs: Math.min(LOCK_WAIT_MS_MAX, staleMs + ENGINE_BACKUP_LOCK_WAIT_MARGIN_MS) };
}
