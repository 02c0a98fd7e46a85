/**
 * Opening a WAL directory: create it, take its lock, sweep temp files, recover the segments (recovery.ts),
 * cut a torn tail (repair.ts), and make what was found durable before it counts as durable. Either it
 * hands back the lock, the segments and the last segment's open handle, or it fails having released
 * everything it took (no descriptor, no lock).
 */
import { FlushpointError, ErrorCode } from '../core/errors.js';
import type { FileHandle, FileLock } from '../fs/file-system.js';
import { makeDirDurable, sweepTempFiles } from '../fs/durable-publish.js';
import { FORMAT_VERSION_RECYCLED, SEGMENT_NAME_RE } from './format.js';
import { wrapIoError } from './io-error.js';
import type { ResolvedWalOptions } from './options.js';
import { recoverSegments, type TornTail } from './recovery.js';
import { repairTornTail } from './repair.js';
import { SegmentRecycler } from './segment-recycler.js';
import type { Segment } from './segment-writer.js';

export const LOCK_NAME = 'LOCK';

export interface RecoveryInfo {
  segments: number;
  bytesScanned: number;
  durationMs: number;
  lastLsn: number;
  /** The torn tail that was cut, if any (a copy of its bytes is kept as <segment>.torn, or .torn.N). */
  tornTail: TornTail | null;
}

export interface OpenedLog {
  lock: FileLock;
  /** Oldest first. */
  segments: Segment[];
  /** The last segment, open for commits (null when the log holds no segment). */
  current: FileHandle | null;
  /** Where the next record goes in the last segment, and that file's size, in bytes (0, 0: none). */
  tail: { offset: number; capacityBytes: number };
  recovery: RecoveryInfo;
  /** Free files found (segment-recycler.ts), ready for reuse. */
  recycler: SegmentRecycler;
}

/** Names in a directory that say it is an engine's location or a backup, not a WAL directory. */
const NOT_A_WAL_NAMES = new Set(['wal', 'checkpoints', 'CHECKPOINT']);
const BACKUP_FILE_RE = /\.fpb$/;

/**
 * Refuses (WRONG_DIRECTORY, before anything is created there) a directory that is an engine's location
 * (its wal/ and checkpoints/) or a backup (its CHECKPOINT and .fpb files): opening it as a WAL would
 * start an empty log inside it, beside the data the caller meant to open.
 */
async function checkKind(o: ResolvedWalOptions): Promise<void> {
  let names: string[];
  try {
    names = await o.fs.readdir(o.dir);
  } catch {
    return; // missing (created below), or not a directory (the open below says so)
  }
  const found = names.find((n) => NOT_A_WAL_NAMES.has(n) || BACKUP_FILE_RE.test(n));
  if (found === undefined) return;
  const kind = found === 'wal' || found === 'checkpoints' ? "an engine's location (open it with new Engine(dir); its WAL is dir/wal)" : 'a backup (restore it with restoreBackup)';
  throw new FlushpointError(ErrorCode.WRONG_DIRECTORY, `${o.dir} is not a WAL directory: it holds ${found}, so it is ${kind}`, { file: `${o.dir}/${found}` });
}

async function lockDirectory(o: ResolvedWalOptions): Promise<FileLock> {
  await checkKind(o);
  try {
    await makeDirDurable(o.fs, o.dir);
  } catch (err) {
    throw wrapIoError(err, `open of ${o.dir}`);
  }
  try {
    return await o.fs.lock(`${o.dir}/${LOCK_NAME}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EWOULDBLOCK' || code === 'EAGAIN') {
      throw new FlushpointError(ErrorCode.WAL_LOCKED, `WAL directory ${o.dir} is locked by another process (or another Wal in this one)`, {
        cause: err,
        file: `${o.dir}/${LOCK_NAME}`,
      });
    }
    throw wrapIoError(err, `lock of ${o.dir}`);
  }
}

export async function openLogDirectory(o: ResolvedWalOptions): Promise<OpenedLog> {
  const started = performance.now();
  const lock = await lockDirectory(o);
  let current: FileHandle | null = null;
  try {
    const names = await o.fs.readdir(o.dir);
    await sweepTempFiles(o.fs, o.dir, names);
    const recycler = new SegmentRecycler(o.fs, o.dir, o.segmentSizeBytes, o.recycleSegments);
    await recycler.adopt(names);
    const segNames = names.filter((n) => SEGMENT_NAME_RE.test(n)).sort();
    const rec = await recoverSegments(o.fs, o.dir, segNames, o.recovery === 'strict');
    if (rec.torn) await repairTornTail(o.fs, rec.torn, o.logger);
    const segments: Segment[] = rec.segments.map((s) => ({ name: s.name, firstLsn: s.firstLsn, salt: s.salt, lastLsn: s.lastLsn, endOffset: s.endOffset, index: s.index, recycledSizeBytes: s.version === FORMAT_VERSION_RECYCLED ? s.fileSizeBytes : 0 }));
    const last = rec.segments[rec.segments.length - 1];
    if (last) {
      current = await o.fs.open(`${o.dir}/${last.name}`, 'r+');
      // A previous process may have died between its write and its fdatasync: what we found is
      // durable only after this sync, and only then may it count as durable.
      await current.datasync();
      await o.fs.syncDir(o.dir);
    }
    const recovery: RecoveryInfo = {
      segments: segments.length,
      bytesScanned: rec.bytesScanned,
      durationMs: performance.now() - started,
      lastLsn: rec.lastLsn,
      tornTail: rec.torn,
    };
    // The commit worker is wanted only when commits go to it (syncMode 'worker').
    if (o.syncMode === 'worker') await o.fs.warmUp?.();
    return { lock, segments, current, tail: { offset: last?.endOffset ?? 0, capacityBytes: last?.fileSizeBytes ?? 0 }, recovery, recycler };
  } catch (err) {
    // Nothing may stay open after a failed open: the last segment's handle, the lock.
    await current?.close().catch(() => {});
    await lock.release().catch(() => {});
    throw wrapIoError(err, `recovery of ${o.dir}`);
  }
}
