/**
 * The inline checkpoint after review (docs/decisions.md, the inline-checkpoint section): a 412 takeover
 * with an inline checkpoint on either side, one read of the CHECKPOINT for prepare() and adoption, an
 * object with other bytes under an inline file's name, and a version 3 checkpoint in a local directory
 * (a bucket copied with `aws s3 sync`). Against the in-process S3 look-alike (test/s3/fake-s3.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkpointBytes, encodeBackupFile, listBackupFiles } from '../backup/backup-file.js';
import { BodyBuilder, CHECKPOINT_NAME, backupFileName, decodeCheckpoint, encodeCheckpointInline, frameRecords } from '../backup/format.js';
import { restoreBackup } from '../backup/restore.js';
import { S3Target } from '../backup/s3-target.js';
import { BackupSink } from '../backup/sink.js';
import { verifyBackup } from '../backup/verify.js';
import { publishFileDurably } from '../fs/durable-publish.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { Wal } from '../wal/wal.js';
import { FakeS3 } from './s3/fake-s3.js';
import { until } from './s3/cluster.js';
import { appendUpTo, expectRestoreEqualsWal } from './s3/restore-equal.js';

let fake: FakeS3;
const BUCKET = 'inline-review';
const opened: Array<{ close(): Promise<void> }> = [];
beforeAll(async () => {
  fake = await FakeS3.start();
  fake.buckets.set(BUCKET, new Map());
});
afterEach(async () => {
  fake.release();
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => {});
});
afterAll(() => fake.close());

const s3 = (prefix: string, extra: Record<string, unknown> = {}) => ({ endpoint: fake.endpoint, bucket: BUCKET, prefix, credentials: { accessKeyId: 'k', secretAccessKey: 's' }, attemptsCountMax: 1, ...extra });
async function target(prefix: string, extra: Record<string, unknown> = {}): Promise<S3Target> {
  const t = new S3Target(s3(prefix, extra));
  opened.push(t);
  await t.prepare();
  return t;
}
async function walWith(lastLsn: number): Promise<{ fs: MemoryFileSystem; wal: Wal }> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 64 * 1024 });
  opened.push(wal);
  await appendUpTo(wal, lastLsn);
  return { fs, wal };
}
const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);
const stored = (prefix: string, name: string): Buffer | undefined => fake.object(BUCKET, `${prefix}/${name}`)?.bytes;
const storedCheckpointLsn = (prefix: string): number | null => {
  const d = decodeCheckpoint(stored(prefix, CHECKPOINT_NAME) ?? Buffer.alloc(0));
  return d.ok ? d.value.checkpointLsn : null;
};

/** A backup file of the WAL's own records first..last, framed as the WAL framed them (what a sink of this WAL writes). */
async function walFile(wal: Wal, first: number, last: number, compression: 'none' | 'deflate' = 'none'): Promise<{ name: string; chunks: Uint8Array[] }> {
  const body = new BodyBuilder();
  for await (const span of wal.readRaw({ fromLsn: first, toLsn: last })) body.add(span);
  const f = await encodeBackupFile(body, compression);
  return { name: f.name, chunks: f.chunks };
}
/** A backup file of records first..last of another history (payloads tagged `tag`). */
async function otherFile(first: number, last: number, tag: string): Promise<{ name: string; chunks: Uint8Array[] }> {
  const body = new BodyBuilder();
  body.add(frameRecords(first, Array.from({ length: last - first + 1 }, (_, i) => Buffer.from(`${tag} record ${first + i}`))));
  const f = await encodeBackupFile(body, 'none');
  return { name: f.name, chunks: f.chunks };
}
const checkpointBytesForTest = (lsn: number): Uint8Array => checkpointBytes(lsn, 1);
const inlineCheckpoint = (f: { chunks: Uint8Array[] }, lsn: number): Uint8Array[] => encodeCheckpointInline(lsn, 1, Date.now(), f.chunks);

/**
 * A writer (`a`, killed: its last request times out client-side) publishes 1..10, then its checkpoint
 * 20 (inline 11..20 when `inline`) is held at the store; `b` opens (prepare) meanwhile; then it lands.
 */
async function lateCheckpointOfKilledWriter(prefix: string, wal: Wal, inline: boolean): Promise<{ b: S3Target; late: { name: string } }> {
  const a = await target(prefix, { requestTimeoutMs: 200 });
  const f1 = await walFile(wal, 1, 10);
  await a.putFile(f1.name, f1.chunks);
  await a.publishCheckpoint(checkpointBytesForTest(10));
  const late = await walFile(wal, 11, 20);
  if (!inline) await a.putFile(late.name, late.chunks);
  fake.holdWhere((method, key) => method === 'PUT' && key === `${prefix}/${CHECKPOINT_NAME}`);
  const put = inline ? a.publishCheckpointInline(inlineCheckpoint(late, 20), late.name) : a.publishCheckpoint(checkpointBytesForTest(20));
  expect(await failure(put)).toMatchObject({ name: 'TimeoutError' });
  const b = await target(prefix);
  fake.release();
  await until(async () => storedCheckpointLsn(prefix) === 20, 'the killed writer\'s late checkpoint to land');
  return { b, late };
}

describe('a 412 takeover with an inline checkpoint on either side', () => {
  it('theirs plain (a killed writer\'s late checkpoint), ours inline: taken over, as a plain publish is (review finding 3)', async () => {
    const { wal } = await walWith(25);
    const { b } = await lateCheckpointOfKilledWriter('t-plain-inline', wal, false);
    const mine = await walFile(wal, 21, 25);
    await b.publishCheckpointInline(inlineCheckpoint(mine, 25), mine.name);
    expect(b.stats().checkpointTakeovers).toBe(1);
    expect(storedCheckpointLsn('t-plain-inline')).toBe(25);
    await b.settled();
    expect(stored('t-plain-inline', mine.name)).toBeDefined();
  });

  it('theirs inline (a killed writer\'s, the same records), ours plain: taken over, their inline file stored under its name first', async () => {
    const { fs, wal } = await walWith(25);
    const { b, late } = await lateCheckpointOfKilledWriter('t-inline-plain', wal, true);
    const mine = await walFile(wal, 11, 25); // b continued from the checkpoint it read (10)
    await b.putFile(mine.name, mine.chunks);
    await b.publishCheckpoint(checkpointBytesForTest(25));
    expect(b.stats().checkpointTakeovers).toBe(1);
    expect(storedCheckpointLsn('t-inline-plain')).toBe(25);
    expect(stored('t-inline-plain', late.name)).toBeDefined();
    const r = new S3Target(s3('t-inline-plain'), fs);
    opened.push(r);
    const v = await verifyBackup(r.location, { fs: r.readFs });
    expect(v.ok).toBe(true);
    expect(v.problems.map((p) => p.code)).toEqual(['REDUNDANT']); // their 11..20 beside our 11..25, byte for byte
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 25);
  });

  it('theirs inline, ours inline (the same records): taken over (review findings 1 and 3)', async () => {
    const { fs, wal } = await walWith(25);
    const { b, late } = await lateCheckpointOfKilledWriter('t-inline-inline', wal, true);
    const mine = await walFile(wal, 11, 25);
    await b.publishCheckpointInline(inlineCheckpoint(mine, 25), mine.name);
    await b.settled();
    expect(b.stats().checkpointTakeovers).toBe(1);
    expect(storedCheckpointLsn('t-inline-inline')).toBe(25);
    expect(stored('t-inline-inline', late.name)).toBeDefined();
    const r = new S3Target(s3('t-inline-inline'), fs);
    opened.push(r);
    expect((await verifyBackup(r.location, { fs: r.readFs })).ok).toBe(true);
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 25);
  });

  it('a LIVE second writer whose last checkpoint is inline (its file not stored yet), other records: BACKUP_LOCKED, its checkpoint stays (review finding 1)', async () => {
    const prefix = 't-live';
    const a = await target(prefix);
    const b = await target(prefix);
    const fa = await otherFile(1, 10, 'A');
    fake.holdWhere((method, key) => method === 'PUT' && key === `${prefix}/${fa.name}`);
    await a.publishCheckpointInline(inlineCheckpoint(fa, 10), fa.name); // acknowledged: 1..10 are A's
    await until(async () => fake.seen.some((r) => r.method === 'PUT' && r.key === `${prefix}/${fa.name}`), 'A\'s file PUT held');
    const acknowledged = Buffer.from(stored(prefix, CHECKPOINT_NAME)!);
    const fb = await otherFile(1, 15, 'B');
    await b.putFile(fb.name, fb.chunks);
    const err = await failure(b.publishCheckpoint(checkpointBytesForTest(15)));
    expect(err).toMatchObject({ code: 'BACKUP_LOCKED' });
    expect(b.stats().checkpointTakeovers).toBe(0);
    expect(stored(prefix, CHECKPOINT_NAME)!.equals(acknowledged)).toBe(true);
    // The same with B's flush inline: still BACKUP_LOCKED.
    const fb2 = await otherFile(1, 12, 'B');
    expect(await failure(b.publishCheckpointInline(inlineCheckpoint(fb2, 12), fb2.name))).toMatchObject({ code: 'BACKUP_LOCKED' });
    expect(stored(prefix, CHECKPOINT_NAME)!.equals(acknowledged)).toBe(true);
    fake.release();
    await a.settled();
    expect(await failure(a.publishCheckpoint(checkpointBytesForTest(10)))).toBe(null); // A still owns the prefix
  });

  it('a LIVE writer\'s inline checkpoint of another history met by OUR inline publish with no file of ours beyond the checkpoint seen: BACKUP_LOCKED, its checkpoint stays (second review finding 3)', async () => {
    const prefix = 't-live-mine';
    const a = await target(prefix);
    const f1 = await otherFile(1, 10, 'A');
    await a.putFile(f1.name, f1.chunks);
    await a.publishCheckpoint(checkpointBytesForTest(10));
    const b = await target(prefix); // seen: 10, knows 1..10
    const fa = await otherFile(11, 20, 'A');
    fake.holdWhere((method, key) => method === 'PUT' && key === `${prefix}/${fa.name}`);
    await a.publishCheckpointInline(inlineCheckpoint(fa, 20), fa.name); // acknowledged: 11..20 are A's, only in the CHECKPOINT
    await until(async () => fake.seen.some((r) => r.method === 'PUT' && r.key === `${prefix}/${fa.name}`), 'A\'s file PUT held');
    const acknowledged = Buffer.from(stored(prefix, CHECKPOINT_NAME)!);
    // B's records 11..25 are only in its own inline file: the files it knows (1..10) do not reach A's 11..20,
    // so only the comparison with B's own inline file can tell A's records are another history's.
    const fb = await otherFile(11, 25, 'B');
    expect(await failure(b.publishCheckpointInline(inlineCheckpoint(fb, 25), fb.name))).toMatchObject({ code: 'BACKUP_LOCKED' });
    expect(b.stats().checkpointTakeovers).toBe(0);
    expect(stored(prefix, CHECKPOINT_NAME)!.equals(acknowledged)).toBe(true);
    fake.release();
    await a.settled();
  });

  it('theirs inline (a killed writer\'s, the same records), one of our files holding some of those LSNs damaged since, another holding them all intact: taken over (second review finding 6)', async () => {
    const prefix = 't-damaged-source';
    const { wal } = await walWith(25);
    const { b, late } = await lateCheckpointOfKilledWriter(prefix, wal, true);
    const short = await walFile(wal, 11, 18);
    const mine = await walFile(wal, 11, 25);
    await b.putFile(short.name, short.chunks);
    await b.putFile(mine.name, mine.chunks);
    expect(short.name).not.toBe(late.name);
    const damaged = Buffer.concat(short.chunks);
    damaged[100] = (damaged[100] as number) ^ 0xff;
    fake.put(BUCKET, `${prefix}/${short.name}`, damaged);
    await b.publishCheckpoint(checkpointBytesForTest(25));
    expect(b.stats().checkpointTakeovers).toBe(1);
    expect(storedCheckpointLsn(prefix)).toBe(25);
  });

  it('a sink opening while a killed writer\'s late INLINE checkpoint lands: prepare() and adoption see ONE read of the CHECKPOINT, and the next forceFlush takes it over (review finding 4)', async () => {
    const prefix = 't-one-read';
    const { fs, wal } = await walWith(25);
    const a = await target(prefix, { requestTimeoutMs: 200 });
    const f1 = await walFile(wal, 1, 10);
    await a.putFile(f1.name, f1.chunks);
    await a.publishCheckpoint(checkpointBytesForTest(10));
    const late = await walFile(wal, 11, 20);
    fake.holdWhere((method, key) => method === 'PUT' && key === `${prefix}/${CHECKPOINT_NAME}`);
    expect(await failure(a.publishCheckpointInline(inlineCheckpoint(late, 20), late.name))).toMatchObject({ name: 'TimeoutError' });
    // The new sink's prepare() GETs the CHECKPOINT (10); its listing is held until the late checkpoint (20) landed.
    fake.holdWhere((_method, key) => key === '');
    const seenBefore = fake.seen.length;
    const opening = BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 });
    await until(async () => fake.seen.slice(seenBefore).some((r) => r.key === BUCKET), 'the new sink\'s listing held');
    fake.release(); // the late PUT is applied first (it waited first), then the listing
    const sink = await opening;
    opened.push(sink);
    expect(storedCheckpointLsn(prefix)).toBe(20);
    expect(sink.checkpointLsn).toBe(10); // the checkpoint whose ETag the target holds
    const r = await sink.forceFlush({ timeoutMs: 5000 });
    expect(r.checkpointLsn).toBe(25);
    await sink.settled();
    expect(storedCheckpointLsn(prefix)).toBe(25);
    expect(stored(prefix, late.name)).toBeDefined();
    const reader = new S3Target(s3(prefix), fs);
    opened.push(reader);
    expect((await verifyBackup(reader.location, { fs: reader.readFs })).ok).toBe(true);
    await expectRestoreEqualsWal(reader.location, reader.readFs, '/restored', wal, 25);
  });
});

/** A sink's inline flush of 1..30 (acknowledged), the PUT of the file under its own name held at the store. */
async function inlineFlushHeld(prefix: string, options: { compression?: 'none' | 'deflate' } = {}): Promise<{ fs: MemoryFileSystem; wal: Wal; sink: BackupSink; name: string }> {
  const { fs, wal } = await walWith(30);
  const sink = await BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000, ...options });
  opened.push(sink);
  const name = backupFileName(1, 30);
  fake.holdWhere((method, key) => method === 'PUT' && key === `${prefix}/${name}`);
  expect((await sink.forceFlush({ timeoutMs: 5000 })).checkpointLsn).toBe(30); // acknowledged, inline
  return { fs, wal, sink, name };
}

/** A sink's inline flush of 1..30, stored under its name too; then one byte of the object `damaged` (a record in it) flipped. */
async function inlineFlushStoredThenDamaged(prefix: string, damaged: string, offset = 200): Promise<{ fs: MemoryFileSystem; wal: Wal; r: S3Target }> {
  const { fs, wal } = await walWith(30);
  const sink = await BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 });
  opened.push(sink);
  await sink.forceFlush();
  await sink.settled();
  await sink.close();
  const bytes = Buffer.from(stored(prefix, damaged)!);
  bytes[offset] = (bytes[offset] as number) ^ 0xff;
  fake.put(BUCKET, `${prefix}/${damaged}`, bytes);
  const r = new S3Target(s3(prefix), fs);
  opened.push(r);
  return { fs, wal, r };
}

describe('an object with other bytes under an inline file\'s name (review finding 2)', () => {
  it('readers report BACKUP_CORRUPT naming both; the sink\'s open refuses with BACKUP_LOCKED saying what to do; once the object is deleted, the checkpoint\'s copy is read and stored', async () => {
    const prefix = 'foreign';
    const { fs, wal, sink, name } = await inlineFlushHeld(prefix);
    const foreign = await otherFile(1, 30, 'FOREIGN');
    fake.put(BUCKET, `${prefix}/${name}`, Buffer.concat(foreign.chunks)); // a late object of a writer that lost the prefix
    fake.release();
    await sink.settled();
    // close() says so (second review finding 4): the acknowledged range is only in the CHECKPOINT, and readers refuse it until the operator acts.
    const closeErr = await failure(sink.close());
    expect(closeErr).toMatchObject({ code: 'BACKUP_LOCKED', file: `s3://${BUCKET}/${prefix}/${name}` });
    expect((closeErr as Error).message).toContain('delete');
    const r = new S3Target(s3(prefix), fs);
    opened.push(r);
    const v = await verifyBackup(r.location, { fs: r.readFs });
    expect(v.ok).toBe(false);
    const problem = v.problems.find((p) => p.code === 'BACKUP_CORRUPT');
    expect(problem?.message).toContain(`${r.location}/${name}`);
    expect(problem?.message).toContain(`${r.location}/${CHECKPOINT_NAME}`);
    const restoreErr = await failure(restoreBackup({ from: r.location, to: '/restored', fs: r.readFs }));
    expect(restoreErr).toMatchObject({ code: 'BACKUP_CORRUPT' });
    expect((restoreErr as Error).message).toContain(`${r.location}/${CHECKPOINT_NAME}`);
    const openErr = await failure(BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 }));
    expect(openErr).toMatchObject({ code: 'BACKUP_LOCKED' });
    expect((openErr as Error).message).toContain('delete');
    expect(storedCheckpointLsn(prefix)).toBe(30); // the acknowledged range is still in the CHECKPOINT
    // The operator's action: delete the other object. Then readers read the checkpoint's copy, and a sink stores it.
    fake.buckets.get(BUCKET)!.delete(`${prefix}/${name}`);
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 30);
    const reopened = await BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 });
    opened.push(reopened);
    expect(reopened.checkpointLsn).toBe(30);
    const d = decodeCheckpoint(stored(prefix, CHECKPOINT_NAME)!);
    expect(stored(prefix, name)!.equals(d.ok ? d.value.inline!.bytes : Buffer.alloc(0))).toBe(true);
  });

  it('an object under the name that does not verify, found by the materialization: replaced by the checkpoint\'s copy, the next flush goes on (second review finding 5)', async () => {
    const prefix = 'damaged-replaced';
    const { fs, wal, sink, name } = await inlineFlushHeld(prefix);
    const d = decodeCheckpoint(stored(prefix, CHECKPOINT_NAME)!);
    const inline = Buffer.from(d.ok ? d.value.inline!.bytes : Buffer.alloc(0));
    const damaged = Buffer.from(inline);
    damaged[200] = (damaged[200] as number) ^ 0xff;
    fake.put(BUCKET, `${prefix}/${name}`, damaged); // e.g. an upload damaged on its way
    fake.release();
    await sink.settled();
    await appendUpTo(wal, 40);
    expect((await sink.forceFlush({ timeoutMs: 5000 })).checkpointLsn).toBe(40);
    await sink.settled();
    expect(stored(prefix, name)!.equals(inline)).toBe(true);
    await sink.close();
    const r = new S3Target(s3(prefix), fs);
    opened.push(r);
    expect(await verifyBackup(r.location, { fs: r.readFs })).toMatchObject({ ok: true, checkpointLsn: 40, problems: [] });
  });

  it('an object under the name that does not verify: readers read the checkpoint\'s copy (review finding 7)', async () => {
    const { wal, r } = await inlineFlushStoredThenDamaged('damaged-object', backupFileName(1, 30));
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 30);
  });
});

describe('a damaged inline section, the file stored under its name (review finding 7)', () => {
  it('readers and a sink\'s open use the stored file (it verifies): the CHECKPOINT\'s fields verify on their own', async () => {
    const prefix = 'damaged-inline-stored';
    const { wal, r } = await inlineFlushStoredThenDamaged(prefix, CHECKPOINT_NAME); // a record inside the inline copy
    expect(stored(prefix, backupFileName(1, 30))).toBeDefined();
    expect(await verifyBackup(r.location, { fs: r.readFs })).toMatchObject({ ok: true, checkpointLsn: 30, lastLsn: 30 });
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 30);
    const reopened = await BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 });
    opened.push(reopened);
    expect(reopened.checkpointLsn).toBe(30);
    await appendUpTo(wal, 45);
    await reopened.forceFlush();
    await reopened.settled();
    expect(await verifyBackup(r.location, { fs: r.readFs })).toMatchObject({ ok: true, checkpointLsn: 45, problems: [] });
  });
});

describe('one range encoded twice: the same records, other bytes, under an inline file\'s name (second review finding 1)', () => {
  it('S3: the materialization finds the other encoding there and counts it as stored; verify ok, restore equals the WAL, a reopened sink goes on', async () => {
    const prefix = 'same-records';
    const { fs, wal, sink, name } = await inlineFlushHeld(prefix, { compression: 'deflate' });
    const plain = Buffer.concat((await walFile(wal, 1, 30, 'none')).chunks); // e.g. a killed sink of this WAL, compression 'none'
    const d = decodeCheckpoint(stored(prefix, CHECKPOINT_NAME)!);
    expect(d.ok && Buffer.from(d.value.inline!.bytes).equals(plain)).toBe(false);
    fake.put(BUCKET, `${prefix}/${name}`, plain);
    fake.release();
    await sink.settled();
    await appendUpTo(wal, 40);
    expect((await sink.forceFlush({ timeoutMs: 5000 })).checkpointLsn).toBe(40); // the materialization did not fail it
    await sink.settled();
    await sink.close();
    const r = new S3Target(s3(prefix), fs);
    opened.push(r);
    expect(await verifyBackup(r.location, { fs: r.readFs })).toMatchObject({ ok: true, checkpointLsn: 40 });
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 40);
    const reopened = await BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 });
    opened.push(reopened);
    expect(reopened.checkpointLsn).toBe(40);
  });

  it('readers, and a directory sink\'s open: the checkpoint carries the deflated copy, the file under the name is the plain one', async () => {
    const { fs, wal } = await walWith(30);
    await fs.mkdir('/twice');
    await fs.syncDir('/');
    const f1 = await walFile(wal, 1, 10);
    await publishFileDurably(fs, '/twice', f1.name, f1.chunks);
    await publishFileDurably(fs, '/twice', CHECKPOINT_NAME, inlineCheckpoint(await walFile(wal, 11, 20, 'deflate'), 20));
    const plain = await walFile(wal, 11, 20, 'none');
    await publishFileDurably(fs, '/twice', plain.name, plain.chunks);
    expect(await verifyBackup('/twice', { fs })).toMatchObject({ ok: true, checkpointLsn: 20, problems: [] });
    await expectRestoreEqualsWal('/twice', fs, '/restored', wal, 20);
    const sink = await BackupSink.open({ wal, dir: '/twice', fs, flushIntervalMs: 3_600_000 });
    opened.push(sink);
    expect(Buffer.from(fs.readFileNow(`/twice/${plain.name}`)).equals(Buffer.concat(plain.chunks))).toBe(true); // kept
    await sink.forceFlush();
    await expectRestoreEqualsWal('/twice', fs, '/restored2', wal, 30);
  });
});

describe('a damaged inline section vouched for only by the very file it carried (second review finding 2)', () => {
  it('(a) the inline header verifies, its body does not; the object under the name is a foreign file that verifies: BACKUP_CORRUPT naming CHECKPOINT, not the foreign records', async () => {
    const prefix = 'vouch-foreign';
    const { wal, r } = await inlineFlushStoredThenDamaged(prefix, CHECKPOINT_NAME); // a record inside the inline copy
    const foreign = await otherFile(1, 30, 'FOREIGN');
    fake.put(BUCKET, `${prefix}/${backupFileName(1, 30)}`, Buffer.concat(foreign.chunks));
    const v = await verifyBackup(r.location, { fs: r.readFs });
    expect(v.ok).toBe(false);
    expect(v.problems.find((p) => p.code === 'BACKUP_CORRUPT')?.message).toContain(`${r.location}/${CHECKPOINT_NAME}`);
    expect(await failure(restoreBackup({ from: r.location, to: '/restored', fs: r.readFs }))).toMatchObject({ code: 'BACKUP_CORRUPT' });
    const checkpoint = Buffer.from(stored(prefix, CHECKPOINT_NAME)!);
    expect(await failure(BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 }))).toMatchObject({ code: 'BACKUP_CORRUPT' });
    expect(stored(prefix, CHECKPOINT_NAME)!.equals(checkpoint)).toBe(true);
  });

  it('(b) the inline header itself damaged; a stored file ends at the checkpoint but nothing below it reaches its start: BACKUP_CORRUPT, the sink does not open, the damaged only copy stays', async () => {
    const prefix = 'vouch-untiled';
    const { wal } = await inlineFlushStoredThenDamaged(prefix, CHECKPOINT_NAME, 10); // inside the inline file's 64-byte header
    fake.buckets.get(BUCKET)!.delete(`${prefix}/${backupFileName(1, 30)}`);
    const tail = await walFile(wal, 21, 30); // covers 21..30 only: 1..20 are in the damaged inline copy alone
    fake.put(BUCKET, `${prefix}/${tail.name}`, Buffer.concat(tail.chunks));
    const checkpoint = Buffer.from(stored(prefix, CHECKPOINT_NAME)!);
    const err = await failure(BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 }));
    expect(err).toMatchObject({ code: 'BACKUP_CORRUPT' });
    expect((err as Error).message).toContain(CHECKPOINT_NAME);
    expect(stored(prefix, CHECKPOINT_NAME)!.equals(checkpoint)).toBe(true);
  });
});

describe('a version 3 CHECKPOINT in a local directory (a bucket copied with aws s3 sync; review finding 5)', () => {
  /** /copy: file 1..10, and a CHECKPOINT at 20 carrying 11..20 inline (no file of that name). */
  async function copiedBucket(): Promise<{ fs: MemoryFileSystem; wal: Wal; late: { name: string; chunks: Uint8Array[] } }> {
    const { fs, wal } = await walWith(30);
    await fs.mkdir('/copy');
    await fs.syncDir('/');
    const f1 = await walFile(wal, 1, 10);
    await publishFileDurably(fs, '/copy', f1.name, f1.chunks);
    const late = await walFile(wal, 11, 20);
    await publishFileDurably(fs, '/copy', CHECKPOINT_NAME, inlineCheckpoint(late, 20));
    return { fs, wal, late };
  }

  it('verify and restore read the inline file', async () => {
    const { fs, wal, late } = await copiedBucket();
    expect((await listBackupFiles(fs, '/copy')).map((f) => f.name)).toContain(late.name);
    expect(await verifyBackup('/copy', { fs })).toMatchObject({ ok: true, lastLsn: 20, checkpointLsn: 20, problems: [] });
    await expectRestoreEqualsWal('/copy', fs, '/restored', wal, 20);
  });

  it('a directory sink\'s open stores the inline file durably under its name before it publishes anything', async () => {
    const { fs, wal, late } = await copiedBucket();
    const sink = await BackupSink.open({ wal, dir: '/copy', fs, flushIntervalMs: 3_600_000 });
    opened.push(sink);
    expect(sink.checkpointLsn).toBe(20);
    // Power lost right after the open: the file is there, whole.
    const after = fs.crash();
    expect(Buffer.from(after.readFileNow(`/copy/${late.name}`)).equals(Buffer.concat(late.chunks))).toBe(true);
    await sink.forceFlush();
    expect(await verifyBackup('/copy', { fs })).toMatchObject({ ok: true, lastLsn: 30, checkpointLsn: 30, problems: [] });
    await expectRestoreEqualsWal('/copy', fs, '/restored', wal, 30);
  });

  it('a file of that name in the directory: one that does not verify is replaced by the checkpoint\'s copy; one of another history refuses the open (BACKUP_CORRUPT naming both), nothing written', async () => {
    const { fs, wal, late } = await copiedBucket();
    const checkpoint = Buffer.from(fs.readFileNow(`/copy/${CHECKPOINT_NAME}`));
    const other = await otherFile(11, 20, 'OTHER');
    await publishFileDurably(fs, '/copy', late.name, other.chunks);
    const err = await failure(BackupSink.open({ wal, dir: '/copy', fs, flushIntervalMs: 3_600_000 }));
    expect(err).toMatchObject({ code: 'BACKUP_CORRUPT', file: `/copy/${late.name}` });
    expect((err as Error).message).toContain(`/copy/${CHECKPOINT_NAME}`);
    expect(Buffer.from(fs.readFileNow(`/copy/${CHECKPOINT_NAME}`)).equals(checkpoint)).toBe(true);
    expect(Buffer.from(fs.readFileNow(`/copy/${late.name}`)).equals(Buffer.concat(other.chunks))).toBe(true);
    const damaged = Buffer.concat(late.chunks);
    damaged[100] = (damaged[100] as number) ^ 0xff;
    await publishFileDurably(fs, '/copy', late.name, [damaged]);
    const sink = await BackupSink.open({ wal, dir: '/copy', fs, flushIntervalMs: 3_600_000 });
    opened.push(sink);
    expect(Buffer.from(fs.readFileNow(`/copy/${late.name}`)).equals(Buffer.concat(late.chunks))).toBe(true);
    await sink.forceFlush();
    await expectRestoreEqualsWal('/copy', fs, '/restored', wal, 30);
  });
});
