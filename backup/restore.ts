/**
 * restoreBackup: replays a backup into a new WAL directory holding exactly the backup's first LSN ..
 * untilLsn (default: the checkpoint), verifying every file on the way. Point-in-time: it stops exactly
 * at untilLsn.
 */
import { FlushpointError, ErrorCode } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { Wal } from '../wal/index.js';
import { listBackupFiles, readBackupFile, readCheckpoint } from './backup-file.js';

export interface RestoreProgress {
  files: number;
  filesTotal: number;
  records: number;
  lastLsn: number;
  untilLsn: number;
}

export interface RestoreOptions {
  /** The backup directory. */
  from: string;
  /** The new WAL directory: must be missing or empty. */
  to: string;
  /** Last LSN to restore (point in time). Default: the backup's checkpoint. */
  untilLsn?: number;
  onProgress?: (p: RestoreProgress) => void;
  /** File system for both directories. Default: the real one. */
  fs?: FileSystem;
  /** Segment size of the restored WAL. */
  segmentSizeBytes?: number;
}

export interface RestoreResult {
  lastLsn: number;
  records: number;
  files: number;
}

const SYNC_EVERY_BYTES = 8 * 1024 * 1024;

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  if (options === null || typeof options !== 'object') throw new TypeError('restoreBackup needs an options object');
  const { from, to } = options;
  if (typeof from !== 'string' || from.length === 0) throw new TypeError('from must be a non-empty string');
  if (typeof to !== 'string' || to.length === 0) throw new TypeError('to must be a non-empty string');
  const fs = options.fs ?? nodeFileSystem;
  const checkpoint = await readCheckpoint(fs, from);
  if (checkpoint === null) throw new FlushpointError(ErrorCode.BACKUP_CORRUPT, `${from} has no CHECKPOINT: not a backup, or nothing was ever published`, { file: `${from}/CHECKPOINT` });
  let untilLsn = checkpoint;
  if (options.untilLsn !== undefined) {
    if (typeof options.untilLsn !== 'number') throw new TypeError('untilLsn must be a number');
    if (!Number.isSafeInteger(options.untilLsn) || options.untilLsn < 0) throw new RangeError(`untilLsn must be a safe integer >= 0, got ${options.untilLsn}`);
    if (options.untilLsn > checkpoint) throw new RangeError(`untilLsn ${options.untilLsn} is beyond the backup's checkpoint ${checkpoint}`);
    untilLsn = options.untilLsn;
  }
  try {
    const existing = await fs.readdir(to);
    if (existing.length > 0) throw new RangeError(`restore target ${to} is not empty`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const files = (await listBackupFiles(fs, from)).filter((f) => f.firstLsn <= untilLsn);
  const firstLsn = files[0]?.firstLsn ?? 1;
  const wal = await Wal.open({ dir: to, fs, firstLsn, ...(options.segmentSizeBytes ? { segmentSizeBytes: options.segmentSizeBytes } : {}) });
  let records = 0;
  let sinceSync = 0;
  let expected = firstLsn;
  try {
    for (const [i, f] of files.entries()) {
      if (f.firstLsn !== expected) {
        throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup gap: LSNs ${expected}..${f.firstLsn - 1} are missing before ${from}/${f.name}`, { file: `${from}/${f.name}`, lsn: expected });
      }
      const { records: recs } = await readBackupFile(fs, from, f);
      for (const r of recs) {
        if (r.lsn > untilLsn) break;
        const lsn = wal.append(r.payload);
        if (lsn !== r.lsn) throw new Error(`restore assigned LSN ${lsn} to backup record ${r.lsn}`);
        records++;
        sinceSync += r.payload.byteLength;
        expected = r.lsn + 1;
      }
      if (sinceSync >= SYNC_EVERY_BYTES) {
        await wal.sync();
        sinceSync = 0;
      }
      options.onProgress?.({ files: i + 1, filesTotal: files.length, records, lastLsn: expected - 1, untilLsn });
    }
    if (expected - 1 < untilLsn) {
      throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup ends at LSN ${expected - 1}, before ${untilLsn}`, { lsn: expected });
    }
    await wal.sync();
  } finally {
    await wal.close();
  }
  return { lastLsn: expected - 1, records, files: files.length };
}
