/** Fixtures shared by the backup verify and restore tests: a backup on a memory fs, and a check of a restore. */
import { Wal } from '../wal/wal.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import type { FileSystem } from '../fs/file-system.js';
import { BackupSink } from '../backup/sink.js';
import { payloadFor, readAll } from './helpers/wal-fixtures.js';

export const BACKUP_DIR = '/bk';

/** Length of the payload of an LSN in these backups. */
export const lengthOf = (lsn: number): number => (lsn * 13) % 120;

/**
 * A backup of LSNs 1..n, one file per `perFile` records, on a memory fs. With `truncateBelow`, the WAL
 * first drops every segment below that LSN, so the backup starts later than LSN 1.
 */
export async function makeBackup(n: number, options: { perFile?: number; compression?: 'none' | 'deflate'; truncateBelow?: number } = {}): Promise<{ fs: MemoryFileSystem; files: string[]; startLsn: number }> {
  const fs = new MemoryFileSystem();
  const perFile = options.perFile ?? 10;
  const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 2048 });
  const append = async (fromLsn: number, toLsn: number): Promise<void> => {
    for (let lsn = fromLsn; lsn <= toLsn; lsn++) wal.append(payloadFor(lsn, lengthOf(lsn)));
    await wal.sync();
  };
  let lsn = 1;
  if (options.truncateBelow !== undefined) {
    await append(1, options.truncateBelow - 1);
    await wal.truncateBefore(options.truncateBelow);
    lsn = options.truncateBelow;
  }
  const startLsn = wal.firstLsn;
  const sink = await BackupSink.open({ wal, dir: BACKUP_DIR, fs, flushIntervalMs: 3_600_000, segmentSizeBytesMax: 64 * 1024, compression: options.compression ?? 'none' });
  for (; lsn <= n; lsn += perFile) {
    await append(lsn, Math.min(n, lsn + perFile - 1));
    await sink.forceFlush();
  }
  await sink.close();
  await wal.close();
  const files = (await fs.readdir(BACKUP_DIR)).filter((f) => f.endsWith('.fpb'));
  return { fs, files, startLsn };
}

/** Opens the WAL in `dir` and checks it holds exactly fromLsn..toLsn with the fixtures' payloads. Returns its last LSN. */
export async function checkRestored(fs: FileSystem, dir: string, fromLsn: number, toLsn: number): Promise<void> {
  const wal = await Wal.open({ dir, fs });
  try {
    const records = await readAll(wal);
    const lsns = records.map((r) => r.lsn);
    const want = Array.from({ length: toLsn - fromLsn + 1 }, (_, i) => fromLsn + i);
    if (lsns.length !== want.length || lsns.some((l, i) => l !== want[i])) throw new Error(`${dir} holds LSNs ${lsns[0]}..${lsns[lsns.length - 1]} (${lsns.length}), expected ${fromLsn}..${toLsn}`);
    for (const r of records) {
      if (Buffer.compare(r.payload, payloadFor(r.lsn, lengthOf(r.lsn))) !== 0) throw new Error(`${dir}: LSN ${r.lsn} restored with wrong bytes`);
    }
  } finally {
    await wal.close();
  }
}
