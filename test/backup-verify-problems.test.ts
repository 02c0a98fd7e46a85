/**
 * verifyBackup and restoreBackup on damaged or missing backups: where the backup starts (CHECKPOINT
 * format 2 records it), one problem per fault, typed errors for a path that holds no backup, and a
 * deflate body that cannot inflate past the size its header states.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../core/crc.js';
import { FlushpointError } from '../core/errors.js';
import { Wal } from '../wal/wal.js';
import { BackupSink } from '../backup/sink.js';
import { verifyBackup } from '../backup/verify.js';
import { restoreBackup } from '../backup/restore.js';
import { CHECKPOINT_MAGIC, FLAG_DEFLATE, backupFileName, decodeCheckpoint, encodeBackupHeader, encodeCheckpoint } from '../backup/format.js';
import { BACKUP_DIR, checkRestored, makeBackup } from './backup-restore-fixtures.js';

const deflateRaw = promisify(zlib.deflateRaw);

async function failure(p: Promise<unknown>): Promise<FlushpointError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlushpointError);
  return err as FlushpointError;
}

/** A format 1 CHECKPOINT (40 bytes, no start LSN), as backups written before format 2 hold. */
function checkpointV1(checkpointLsn: number): Uint8Array {
  const out = new Uint8Array(40);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(CHECKPOINT_MAGIC), 0);
  view.setUint32(8, 1, true);
  view.setUint32(16, checkpointLsn, true);
  view.setUint32(36, crc32(out.subarray(0, 36)), true);
  return out;
}

describe('where the backup starts (issue 8 item 14)', () => {
  it('a lost first file is one BACKUP_GAP in verify, and restore refuses to start later', async () => {
    const { fs, files } = await makeBackup(50);
    const cp = decodeCheckpoint(fs.readFileNow(`${BACKUP_DIR}/CHECKPOINT`));
    expect(cp).toMatchObject({ ok: true, value: { checkpointLsn: 50, startLsn: 1 } });
    const copy = fs.crash();
    await copy.unlink(`${BACKUP_DIR}/${files[0]}`);
    const v = await verifyBackup(BACKUP_DIR, { fs: copy });
    expect(v).toMatchObject({ ok: false, firstLsn: 1, firstLsnRecorded: true, lastLsn: 0, checkpointLsn: 50 });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'BACKUP_GAP', lsn: 1, lastLsn: 10, file: `${BACKUP_DIR}/${files[1]}` })]);
    expect(v.problems[0]?.message).toMatch(/LSNs 1\.\.10 are missing.*starts at LSN 1/);
    const err = await failure(restoreBackup({ from: BACKUP_DIR, to: '/r', fs: copy }));
    expect(err).toMatchObject({ code: 'BACKUP_GAP', lsn: 1 });
    expect(err.message).toMatch(/LSNs 1\.\.10 are missing/);
    expect(await copy.stat('/r').catch(() => null)).toBeNull(); // and no partial WAL left at the target
  });

  it('a backup of a WAL that no longer starts at 1 records its real start; untilLsn before it is a RangeError', async () => {
    const { fs, files, startLsn } = await makeBackup(80, { truncateBelow: 40 });
    expect(startLsn).toBeGreaterThan(1);
    const v = await verifyBackup(BACKUP_DIR, { fs });
    expect(v).toMatchObject({ ok: true, firstLsn: startLsn, lastLsn: 80, checkpointLsn: 80, problems: [] });
    await restoreBackup({ from: BACKUP_DIR, to: '/r1', fs });
    await checkRestored(fs, '/r1', startLsn, 80);
    await expect(restoreBackup({ from: BACKUP_DIR, to: '/r2', fs, untilLsn: startLsn - 1 })).rejects.toThrow(
      new RangeError(`untilLsn ${startLsn - 1} is before the backup's first LSN ${startLsn}: it holds LSNs ${startLsn}..80`),
    );
    await expect(restoreBackup({ from: BACKUP_DIR, to: '/r2', fs, untilLsn: 0 })).rejects.toBeInstanceOf(RangeError);
    const copy = fs.crash();
    await copy.unlink(`${BACKUP_DIR}/${files[0]}`);
    const lost = await verifyBackup(BACKUP_DIR, { fs: copy });
    expect(lost.ok).toBe(false);
    expect(lost.problems).toEqual([expect.objectContaining({ code: 'BACKUP_GAP', lsn: startLsn })]);
  });

  it('still reads a format 1 CHECKPOINT (start taken from the first file), and the next flush records the start', async () => {
    const { fs } = await makeBackup(30);
    const cp = await fs.open(`${BACKUP_DIR}/CHECKPOINT`, 'w+');
    await cp.commit([checkpointV1(30)], 0, 'fdatasync');
    await cp.close();
    expect(await verifyBackup(BACKUP_DIR, { fs })).toMatchObject({ ok: true, firstLsn: 1, firstLsnRecorded: false, lastLsn: 30, checkpointLsn: 30 });
    await restoreBackup({ from: BACKUP_DIR, to: '/r', fs });
    await checkRestored(fs, '/r', 1, 30);
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 2048 });
    const sink = await BackupSink.open({ wal, dir: BACKUP_DIR, fs, flushIntervalMs: 3_600_000 });
    wal.append(new Uint8Array(5));
    await sink.forceFlush();
    await sink.close();
    await wal.close();
    expect(decodeCheckpoint(fs.readFileNow(`${BACKUP_DIR}/CHECKPOINT`))).toMatchObject({ ok: true, value: { checkpointLsn: 31, startLsn: 1 } });
    expect(await verifyBackup(BACKUP_DIR, { fs })).toMatchObject({ ok: true, firstLsn: 1, firstLsnRecorded: true, lastLsn: 31 });
  });

  it('a CHECKPOINT of an unknown format version is BACKUP_CORRUPT naming it and the offset', async () => {
    const { fs } = await makeBackup(10);
    const bytes = fs.readFileNow(`${BACKUP_DIR}/CHECKPOINT`);
    new DataView(bytes.buffer).setUint32(8, 4, true);
    const cp = await fs.open(`${BACKUP_DIR}/CHECKPOINT`, 'w+');
    await cp.commit([bytes], 0, 'fdatasync');
    await cp.close();
    const err = await failure(restoreBackup({ from: BACKUP_DIR, to: '/r', fs }));
    expect(err).toMatchObject({ code: 'BACKUP_CORRUPT', file: `${BACKUP_DIR}/CHECKPOINT`, offset: 8 });
    expect(err.message).toMatch(/unsupported checkpoint format version 4/);
  });
});

describe('one problem per fault, typed errors for no backup (issue 8 item 21)', () => {
  it('a missing middle file is one BACKUP_GAP naming its LSN range, a missing last file one more', async () => {
    const { fs, files } = await makeBackup(100);
    expect(files).toHaveLength(10);
    const copy = fs.crash();
    await copy.unlink(`${BACKUP_DIR}/${files[3]}`);
    const v = await verifyBackup(BACKUP_DIR, { fs: copy });
    expect(v).toMatchObject({ ok: false, firstLsn: 1, lastLsn: 30, checkpointLsn: 100, files: 9, records: 90 });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'BACKUP_GAP', lsn: 31, lastLsn: 40, file: `${BACKUP_DIR}/${files[4]}` })]);
    expect(v.problems[0]?.message).toMatch(/^LSNs 31\.\.40 are missing/);
    await copy.unlink(`${BACKUP_DIR}/${files[9]}`);
    const v2 = await verifyBackup(BACKUP_DIR, { fs: copy });
    expect(v2.problems.map((p) => [p.code, p.lsn, p.lastLsn])).toEqual([
      ['BACKUP_GAP', 31, 40],
      ['BACKUP_GAP', 91, 100],
    ]);
  });

  it('a file beyond the checkpoint does not hide the LSNs missing below it', async () => {
    const { fs, files } = await makeBackup(110);
    const cp = await fs.open(`${BACKUP_DIR}/CHECKPOINT`, 'w+');
    await cp.commit([encodeCheckpoint(100, 1, 0)], 0, 'fdatasync');
    await cp.close();
    await fs.unlink(`${BACKUP_DIR}/${files[9]}`); // 91..100
    const v = await verifyBackup(BACKUP_DIR, { fs });
    expect(v).toMatchObject({ ok: false, lastLsn: 90, checkpointLsn: 100 });
    expect(v.problems.map((p) => [p.code, p.lsn, p.lastLsn, p.file])).toEqual([
      ['BEYOND_CHECKPOINT', undefined, undefined, `${BACKUP_DIR}/${files[10]}`],
      ['BACKUP_GAP', 91, 100, undefined],
    ]);
  });

  it('a damaged middle file is one BACKUP_CORRUPT naming it, and no gap', async () => {
    const { fs, files } = await makeBackup(100);
    const copy = fs.crash();
    copy.corrupt(`${BACKUP_DIR}/${files[5]}`, 70, new Uint8Array([0xee]));
    const v = await verifyBackup(BACKUP_DIR, { fs: copy });
    expect(v).toMatchObject({ ok: false, lastLsn: 50 });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'BACKUP_CORRUPT', file: `${BACKUP_DIR}/${files[5]}` })]);
  });

  it('a missing path, a file, or a directory holding no backup: BACKUP_NOT_FOUND, for verify and restore', async () => {
    const { fs } = await makeBackup(10);
    await fs.mkdir('/empty');
    for (const from of ['/nope', `${BACKUP_DIR}/CHECKPOINT`]) {
      const err = await failure(verifyBackup(from, { fs }));
      expect(err).toMatchObject({ code: 'BACKUP_NOT_FOUND', file: from });
      expect(err.message).toMatch(from === '/nope' ? /does not exist/ : /is a file/);
    }
    for (const from of ['/nope', `${BACKUP_DIR}/CHECKPOINT`, '/empty']) {
      const err = await failure(restoreBackup({ from, to: '/r', fs }));
      expect(err).toMatchObject({ code: 'BACKUP_NOT_FOUND', file: from });
    }
    expect(await fs.stat('/r').catch(() => null)).toBeNull();
    await expect(verifyBackup(BACKUP_DIR, { fs, onprogress: () => {} } as never)).rejects.toThrow(new TypeError("verifyBackup: unknown option 'onprogress' (known: fs, onProgress)"));
  });
});

describe('bounded inflate (issue 8 item 19)', () => {
  /** Writes a deflate backup file for LSNs 1..1 whose header states `rawBodyBytes`, with valid CRCs. */
  async function craft(rawBodyBytes: number, inflatesToBytes: number): Promise<{ fs: Awaited<ReturnType<typeof makeBackup>>['fs']; file: string }> {
    const { fs, files } = await makeBackup(10, { perFile: 10 });
    await fs.unlink(`${BACKUP_DIR}/${files[0]}`);
    const stored = new Uint8Array(await deflateRaw(Buffer.alloc(inflatesToBytes)));
    const header = encodeBackupHeader({ flags: FLAG_DEFLATE, firstLsn: 1, lastLsn: 10, recordCount: 10, storedBodyBytes: stored.byteLength, rawBodyBytes, bodyCrc: crc32(stored) });
    const file = `${BACKUP_DIR}/${backupFileName(1, 10)}`;
    const h = await fs.open(file, 'w+');
    await h.commit([header, stored], 0, 'fdatasync');
    await h.close();
    return { fs, file };
  }

  it('a body that inflates past the size its header states is BACKUP_CORRUPT naming the file, found without inflating it all', async () => {
    const { fs, file } = await craft(4096, 16 * 1024 * 1024);
    const v = await verifyBackup(BACKUP_DIR, { fs });
    expect(v.problems).toEqual([expect.objectContaining({ code: 'BACKUP_CORRUPT', file, offset: 64 })]);
    expect(v.problems[0]?.message).toMatch(/inflates beyond the 4096 bytes the header states/);
    const err = await failure(restoreBackup({ from: BACKUP_DIR, to: '/r', fs }));
    expect(err).toMatchObject({ code: 'BACKUP_CORRUPT', file });
  });

  it('a header stating more than its deflate body can ever inflate to is BACKUP_CORRUPT before inflating', async () => {
    const { fs, file } = await craft(2 ** 32 - 1, 1024);
    const err = await failure(restoreBackup({ from: BACKUP_DIR, to: '/r', fs }));
    expect(err).toMatchObject({ code: 'BACKUP_CORRUPT', file, offset: 40 });
    expect(err.message).toMatch(/more than any \d+-byte deflate body can/);
  });
});
