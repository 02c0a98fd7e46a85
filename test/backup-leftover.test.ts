/**
 * A crash's leftover below the checkpoint (backup/chain.ts): a killed sink's data file that lands after a
 * new sink listed the backup, holding LSNs the new sink backed up again under another name. Restore and
 * verify drop it from the chain when its records are the chain's byte for byte (verify: REDUNDANT, not
 * damage), a sink opening the backup removes it, and other bytes are BACKUP_CORRUPT naming both files.
 * On a directory (memory fs) and on an S3 prefix (test/s3/fake-s3.ts); test/s3/leftover.s3.ts runs the
 * S3 case against radosgw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupSink } from '../backup/sink.js';
import { copyRange } from '../backup/flush-pipeline.js';
import { LocalDirTarget } from '../backup/target.js';
import { realClock } from '../core/clock.js';
import { planChain } from '../backup/chain.js';
import { backupFileName, parseBackupFileName } from '../backup/format.js';
import { checkpointBytes } from '../backup/backup-file.js';
import { restoreBackup } from '../backup/restore.js';
import { S3Target } from '../backup/s3-target.js';
import { verifyBackup } from '../backup/verify.js';
import { FlushpointError } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { publishFileDurably } from '../fs/durable-publish.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { Wal } from '../wal/wal.js';
import { payloadFor } from './helpers/wal-fixtures.js';
import { FakeS3 } from './s3/fake-s3.js';
import { filesOfFlush, type CapturedFile } from './s3/late-object.js';
import { appendUpTo, expectRestoreEqualsWal } from './s3/restore-equal.js';

const BK = '/bk';

/** A sink's flush, run to its end (checkpoint included), then the sink closed. */
async function flushWith(open: () => Promise<BackupSink>): Promise<{ removedOnOpen: number; adoptedOnOpen: number; checkpointLsn: number }> {
  const sink = await open();
  const opened = sink.stats();
  await sink.forceFlush();
  const checkpointLsn = sink.checkpointLsn;
  await sink.close();
  return { removedOnOpen: opened.removedOnOpen, adoptedOnOpen: opened.adoptedOnOpen, checkpointLsn };
}

async function failure(p: Promise<unknown>): Promise<FlushpointError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(FlushpointError);
  return err as FlushpointError;
}

const entry = (firstLsn: number, lastLsn: number): { name: string; firstLsn: number; lastLsn: number } => ({ name: backupFileName(firstLsn, lastLsn), firstLsn, lastLsn });
const names = (files: ReadonlyArray<{ name: string }>): string[] => files.map((f) => f.name);

describe('planChain: the files that tile a backup, and what a crash left over', () => {
  it('a late file shorter or longer than the new sink\'s, or spanning two of them, is a leftover; the chain tiles start..checkpoint', () => {
    const chain = [entry(1, 10), entry(11, 40)];
    for (const late of [entry(11, 25), entry(11, 33), entry(21, 30)]) {
      const plan = planChain([...chain, late], 1, 40);
      expect(plan).toMatchObject({ complete: true, coveredLsn: 40, leftovers: [late] });
      expect(names(plan.chain)).toEqual(names(chain));
    }
    const split = [entry(1, 10), entry(11, 20), entry(21, 40)];
    expect(planChain([...split, entry(11, 30)], 1, 40)).toMatchObject({ complete: true, path: split, leftovers: [entry(11, 30)] });
  });

  it('of two tilings, the one with fewer files; a file running past the checkpoint is a leftover when another ends there', () => {
    expect(names(planChain([entry(1, 10), entry(11, 20), entry(1, 20)], 1, 20).path)).toEqual([backupFileName(1, 20)]);
    const straddler = planChain([entry(1, 10), entry(11, 20), entry(11, 30)], 1, 20);
    expect(straddler).toMatchObject({ complete: true, coveredLsn: 20, leftovers: [entry(11, 30)] });
    // Point in time: a chain may run past the end asked for.
    expect(planChain([entry(1, 10), entry(11, 20)], 1, 15)).toMatchObject({ complete: true, coveredLsn: 20, leftovers: [] });
  });

  it('a gap: the chain is the path as far as it reaches, then every file it does not cover (readers report the gap)', () => {
    const plan = planChain([entry(1, 10), entry(5, 12), entry(21, 30), entry(3, 8)], 1, 30);
    expect(plan.complete).toBe(false);
    expect(plan.coveredLsn).toBe(10);
    expect(names(plan.chain)).toEqual(names([entry(1, 10), entry(5, 12), entry(21, 30)]));
    expect(plan.leftovers).toEqual([entry(3, 8)]);
    expect(planChain([], 1, 0)).toMatchObject({ complete: true, chain: [], coveredLsn: 0 });
  });
});

describe('a killed sink\'s late data file on a directory target', () => {
  /**
   * Sink A backs up 1..20 and is "killed" during its next flush of 21..30: the file it was writing lands
   * only after sink B opened (B never saw it). B then backs up 21..40 (or to the late file's end).
   */
  async function lateFileAfterNewSink(o: { lateToLsn?: number; lateFromOtherWal?: boolean; bFileBytesMax?: number; damageAtByte?: number } = {}) {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 64 * 1024 });
    await appendUpTo(wal, 20);
    await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    const lateToLsn = o.lateToLsn ?? 30;
    await appendUpTo(wal, lateToLsn);
    let late: CapturedFile[];
    if (o.lateFromOtherWal) {
      const other = await Wal.open({ dir: '/other', fs, segmentSizeBytes: 64 * 1024 });
      await appendUpTo(other, lateToLsn, 7);
      late = await filesOfFlush(other, 21, lateToLsn, 1);
      await other.close();
    } else {
      late = await filesOfFlush(wal, 21, lateToLsn, 1);
    }
    expect(late).toHaveLength(1);
    const lateFile = late[0] as CapturedFile;
    // Damaged on its way (the store has no Content-MD5 to refuse it by): one byte of the body flipped.
    if (o.damageAtByte !== undefined) lateFile.bytes[o.damageAtByte] = (lateFile.bytes[o.damageAtByte] as number) ^ 0x40;
    const sinkB = await BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000, ...(o.bFileBytesMax ? { segmentSizeBytesMax: o.bFileBytesMax } : {}) });
    expect(sinkB.checkpointLsn).toBe(20);
    // The dead sink's file lands now, after B listed the directory.
    await publishFileDurably(fs, BK, lateFile.name, [lateFile.bytes]);
    await appendUpTo(wal, Math.max(40, lateToLsn));
    await sinkB.forceFlush();
    await sinkB.close();
    const bFiles = (await fs.readdir(BK)).filter((n) => n.endsWith('.fpb') && n !== lateFile.name && parseBackupFileName(n)!.firstLsn > 20);
    return { fs, wal, lateName: lateFile.name, bFiles };
  }

  it('restore equals the WAL byte for byte, verify reports REDUNDANT (ok), and the next open removes the file', async () => {
    const { fs, wal, lateName, bFiles } = await lateFileAfterNewSink();
    expect(bFiles).toEqual([backupFileName(21, 40)]);
    const v = await verifyBackup(BK, { fs });
    expect(v).toMatchObject({ ok: true, firstLsn: 1, lastLsn: 40, checkpointLsn: 40, records: 40 });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'REDUNDANT', file: `${BK}/${lateName}`, lsn: 21, lastLsn: 30 })]);
    expect(v.problems[0]!.message).toContain(`${BK}/${backupFileName(21, 40)}`);
    await expectRestoreEqualsWal(BK, fs, '/restored', wal, 40);
    const reopened = await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    expect(reopened).toMatchObject({ removedOnOpen: 1, adoptedOnOpen: 0, checkpointLsn: 40 });
    expect(await fs.readdir(BK)).not.toContain(lateName);
    expect(await verifyBackup(BK, { fs })).toMatchObject({ ok: true, lastLsn: 40, problems: [] });
    await wal.close();
  });

  it('a late file spanning two of the new sink\'s files, and one running past the checkpoint: the same, and the next sink backs the rest up', async () => {
    // B cuts its files at 1 KiB: 21..40 takes several. The late file 21..45 runs past B's checkpoint 40.
    // Both tilings end at the checkpoint: the chain is the one with fewer files, the late one here, and
    // B's files are the duplicates (the same bytes either way).
    const { fs, wal, lateName, bFiles } = await lateFileAfterNewSink({ lateToLsn: 45, bFileBytesMax: 1024 });
    expect(bFiles.length).toBeGreaterThanOrEqual(2);
    let v = await verifyBackup(BK, { fs });
    expect(v).toMatchObject({ ok: true, lastLsn: 45, checkpointLsn: 45 });
    expect(v.problems.map((p) => [p.code, p.file])).toEqual(bFiles.sort().map((n) => ['REDUNDANT', `${BK}/${n}`]));
    for (const p of v.problems) expect(p.message).toContain(`as ${BK}/${lateName} holds them`);
    await expectRestoreEqualsWal(BK, fs, '/restored-1', wal, 45);

    // The same late file against a checkpoint it runs past: B's flush (its pipeline, driven by hand) went
    // only to 40. The late file straddles the checkpoint.
    const fs2 = new MemoryFileSystem();
    const wal2 = await Wal.open({ dir: '/wal', fs: fs2, segmentSizeBytes: 64 * 1024 });
    await appendUpTo(wal2, 20);
    await flushWith(() => BackupSink.open({ wal: wal2, dir: BK, fs: fs2, flushIntervalMs: 3_600_000 }));
    await appendUpTo(wal2, 45);
    const [lateFile] = await filesOfFlush(wal2, 21, 45, 1);
    const late2 = lateFile!.name;
    await publishFileDurably(fs2, BK, late2, [lateFile!.bytes]);
    await copyRange({ wal: wal2, target: new LocalDirTarget(fs2, BK), compression: 'none', segmentSizeBytesMax: 1024, clock: realClock }, 21, 40, 1);
    v = await verifyBackup(BK, { fs: fs2 });
    expect(v).toMatchObject({ ok: true, lastLsn: 40, checkpointLsn: 40 });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'REDUNDANT', file: `${BK}/${late2}` })]);
    expect(v.problems[0]!.message).toMatch(/LSNs 41\.\.45 are beyond the checkpoint/);
    await expectRestoreEqualsWal(BK, fs2, '/restored-2', wal2, 40);
    await appendUpTo(wal2, 50);
    // The next open adopts the straddler (it continues the chain past the checkpoint, and its records
    // are the WAL's): never removed, since it may be the only copy of its LSNs past the checkpoint.
    const reopened = await flushWith(() => BackupSink.open({ wal: wal2, dir: BK, fs: fs2, flushIntervalMs: 3_600_000 }));
    expect(reopened).toMatchObject({ removedOnOpen: 0, adoptedOnOpen: 1, checkpointLsn: 50 });
    expect(await verifyBackup(BK, { fs: fs2 })).toMatchObject({ ok: true, lastLsn: 50 });
    await expectRestoreEqualsWal(BK, fs2, '/restored-3', wal2, 50);
    // B's short files are the leftovers now, and the open after removes them.
    const again = await flushWith(() => BackupSink.open({ wal: wal2, dir: BK, fs: fs2, flushIntervalMs: 3_600_000 }));
    expect(again.removedOnOpen).toBeGreaterThanOrEqual(1);
    expect(await verifyBackup(BK, { fs: fs2 })).toMatchObject({ ok: true, lastLsn: 50, problems: [] });
    await wal.close();
    await wal2.close();
  });

  it('a frozen old sink whose file and CHECKPOINT land late moves the checkpoint back: the next open adopts the newer file past it, never removes it', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 1024 });
    await appendUpTo(wal, 20);
    await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    await appendUpTo(wal, 30);
    const [late] = await filesOfFlush(wal, 21, 30, 1); // the old sink's flush, frozen before its renames
    const newer = await BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 });
    await appendUpTo(wal, 40);
    expect((await newer.forceFlush()).checkpointLsn).toBe(40); // acknowledged: 21..40 are backed up
    // The old sink wakes: its data file and its CHECKPOINT(30) are renamed into place.
    await publishFileDurably(fs, BK, late!.name, [late!.bytes]);
    await publishFileDurably(fs, BK, 'CHECKPOINT', [checkpointBytes(30, 1)]);
    await newer.close();
    // The WAL's owner goes on; the newer sink's hold was at 41, so retention drops what is below it.
    await appendUpTo(wal, 200);
    await wal.truncateBefore(41);
    expect(wal.firstLsn).toBeGreaterThan(31); // LSNs 31..40 are only in the newer sink's file now
    const reopened = await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    expect(reopened).toMatchObject({ adoptedOnOpen: 1, removedOnOpen: 0, checkpointLsn: 200 });
    expect(await fs.readdir(BK)).toContain(backupFileName(21, 40));
    expect(await verifyBackup(BK, { fs })).toMatchObject({ ok: true, firstLsn: 1, lastLsn: 200, records: 200 });
    expect((await restoreBackup({ from: BK, to: '/restored', fs })).lastLsn).toBe(200);
    await wal.close();
  });

  it('a late file with other bytes for the same LSNs is BACKUP_CORRUPT naming both files, in verify and restore; a sink leaves it in place', async () => {
    const { fs, wal, lateName } = await lateFileAfterNewSink({ lateFromOtherWal: true });
    const both = [`${BK}/${lateName}`, `${BK}/${backupFileName(21, 40)}`];
    const v = await verifyBackup(BK, { fs });
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([expect.objectContaining({ code: 'BACKUP_CORRUPT', file: `${BK}/${lateName}`, lsn: 21 })]);
    for (const name of both) expect(v.problems[0]!.message).toContain(name);
    const err = await failure(restoreBackup({ from: BK, to: '/restored', fs }));
    expect(err).toMatchObject({ code: 'BACKUP_CORRUPT', file: `${BK}/${lateName}`, lsn: 21 });
    for (const name of both) expect(err.message).toContain(name);
    expect(await fs.stat('/restored').catch(() => null)).toBeNull();
    const reopened = await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    expect(reopened.removedOnOpen).toBe(0);
    expect(await fs.readdir(BK)).toContain(lateName);
    await wal.close();
  });

  it('a late file that does not verify: verify names it BACKUP_CORRUPT, restore still equals the WAL (the chain holds every LSN), the next open removes it', async () => {
    const { fs, wal, lateName } = await lateFileAfterNewSink({ damageAtByte: 200 });
    const v = await verifyBackup(BK, { fs });
    expect(v).toMatchObject({ ok: false, lastLsn: 40, checkpointLsn: 40 });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'BACKUP_CORRUPT', file: `${BK}/${lateName}` })]);
    await expectRestoreEqualsWal(BK, fs, '/restored', wal, 40);
    // Point in time inside the damaged file's range: the intact file that holds the same LSNs is read.
    for (const untilLsn of [21, 25, 30]) expect((await restoreBackup({ from: BK, to: `/pit-${untilLsn}`, fs, untilLsn })).lastLsn).toBe(untilLsn);
    const reopened = await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    expect(reopened).toMatchObject({ removedOnOpen: 1, checkpointLsn: 40 });
    expect(await verifyBackup(BK, { fs })).toMatchObject({ ok: true, lastLsn: 40, problems: [] });
    await wal.close();
  });

  it('a damaged late file that would tile the range in fewer files than the intact ones never takes the chain: restore works, the next open removes it', async () => {
    const { fs, wal, lateName, bFiles } = await lateFileAfterNewSink({ lateToLsn: 45, bFileBytesMax: 1024, damageAtByte: 200 });
    expect(bFiles.length).toBeGreaterThanOrEqual(2);
    const v = await verifyBackup(BK, { fs });
    expect(v).toMatchObject({ lastLsn: 45, checkpointLsn: 45 });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'BACKUP_CORRUPT', file: `${BK}/${lateName}` })]);
    await expectRestoreEqualsWal(BK, fs, '/restored', wal, 45);
    const reopened = await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    expect(reopened).toMatchObject({ removedOnOpen: 1, checkpointLsn: 45 });
    expect(await verifyBackup(BK, { fs })).toMatchObject({ ok: true, lastLsn: 45, problems: [] });
    await wal.close();
  });

  it('two crashed flushes beyond the checkpoint starting at the same LSN: the shorter is adopted, the other removed (was BACKUP_CORRUPT "straddles")', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 64 * 1024 });
    await appendUpTo(wal, 20);
    await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    await appendUpTo(wal, 40);
    for (const toLsn of [30, 40]) for (const f of await filesOfFlush(wal, 21, toLsn, 1)) await publishFileDurably(fs, BK, f.name, [f.bytes]);
    const reopened = await flushWith(() => BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 }));
    expect(reopened).toMatchObject({ adoptedOnOpen: 1, removedOnOpen: 1, checkpointLsn: 40 });
    expect(await verifyBackup(BK, { fs })).toMatchObject({ ok: true, lastLsn: 40, problems: [] });
    await expectRestoreEqualsWal(BK, fs, '/restored', wal, 40);
    await wal.close();
  });
});

describe('a killed sink\'s late data object on an S3 prefix (in-process S3 look-alike)', () => {
  let fake: FakeS3;
  const BUCKET = 'late';
  beforeAll(async () => {
    fake = await FakeS3.start();
    fake.buckets.set(BUCKET, new Map());
  });
  afterAll(() => fake.close());

  it('restore equals the WAL byte for byte, verify reports REDUNDANT, and the next open removes the object after its claim', async () => {
    const s3 = { endpoint: fake.endpoint, bucket: BUCKET, prefix: 'p', credentials: { accessKeyId: 'k', secretAccessKey: 's' }, attemptsCountMax: 1 };
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 64 * 1024 });
    await appendUpTo(wal, 20);
    await flushWith(() => BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 }));
    await appendUpTo(wal, 30);
    const [late] = await filesOfFlush(wal, 21, 30, 1);
    const sinkB = await BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 });
    fake.put(BUCKET, `p/${late!.name}`, late!.bytes); // the dead sink's PUT, applied after B listed
    await appendUpTo(wal, 40);
    await sinkB.forceFlush();
    await sinkB.close();
    const reader = new S3Target(s3, fs);
    try {
      const v = await verifyBackup(reader.location, { fs: reader.readFs });
      expect(v).toMatchObject({ ok: true, lastLsn: 40, checkpointLsn: 40 });
      expect(v.problems).toEqual([expect.objectContaining({ code: 'REDUNDANT', file: `${reader.location}/${late!.name}` })]);
      await expectRestoreEqualsWal(reader.location, reader.readFs, '/restored', wal, 40);
      const seen = fake.requests.length;
      const reopened = await flushWith(() => BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 }));
      expect(reopened).toMatchObject({ removedOnOpen: 1, checkpointLsn: 40 });
      // The claim (a conditional checkpoint) went out before the delete.
      const after = fake.requests.slice(seen).filter((r) => r.startsWith('PUT p/CHECKPOINT') || r.startsWith('DELETE'));
      expect(after[0]).toBe('PUT p/CHECKPOINT if-match');
      expect(after[1]).toBe(`DELETE p/${late!.name}`);
      expect(fake.object(BUCKET, `p/${late!.name}`)).toBeUndefined();
      expect(await verifyBackup(reader.location, { fs: reader.readFs })).toMatchObject({ ok: true, lastLsn: 40, problems: [] });
    } finally {
      await reader.close();
      await wal.close();
    }
  });
});

describe('restore of a backup that holds no record yet', () => {
  it('starting after LSN 1: BACKUP_GAP, nothing restored (a WAL of no record would reopen at LSN 1, an engine on it as empty)', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, firstLsn: 100 });
    const sink = await BackupSink.open({ wal, dir: BK, fs, flushIntervalMs: 3_600_000 });
    expect(sink.startLsn).toBe(100);
    await sink.close();
    // What an S3 sink's claim at its first open leaves (a directory sink publishes nothing until a flush).
    await publishFileDurably(fs, BK, 'CHECKPOINT', [checkpointBytes(99, 100)]);
    const err = await failure(restoreBackup({ from: BK, to: '/restored', fs }));
    expect(err.code).toBe('BACKUP_GAP');
    expect(err.message).toContain('holds no record yet (it starts at LSN 100');
    expect(await fs.readdir('/').then((names) => names.includes('restored'))).toBe(false);
    await wal.close();
  });
});
