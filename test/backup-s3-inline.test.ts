/**
 * An S3 flush that a caller waits for, of one small file, publishes ONE PUT: a checkpoint carrying the
 * file inline (format.ts, version 3); the file is then stored under its own name in the background
 * ("materialized"), and no later checkpoint replaces the only copy before that. Against the in-process
 * S3 look-alike (test/s3/fake-s3.ts), with the store holding or dropping the materialization's PUT;
 * test/s3/inline.s3.ts runs the SIGKILL case against radosgw.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackupSink } from '../backup/sink.js';
import { encodeBackupFile, listBackupFiles } from '../backup/backup-file.js';
import { BACKUP_HEADER_BYTES, BodyBuilder, CHECKPOINT_BYTES, decodeCheckpoint, decodeCheckpointFieldsOnly, encodeCheckpointInline, frameRecords } from '../backup/format.js';
import { restoreBackup } from '../backup/restore.js';
import { S3Target } from '../backup/s3-target.js';
import { verifyBackup } from '../backup/verify.js';
import { isFlushpointError } from '../core/errors.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { Wal } from '../wal/wal.js';
import { FakeS3 } from './s3/fake-s3.js';
import { until } from './s3/cluster.js';
import { appendUpTo, expectRestoreEqualsWal } from './s3/restore-equal.js';

let fake: FakeS3;
const BUCKET = 'inline';
const opened: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  fake = await FakeS3.start();
});
afterEach(async () => {
  fake.release();
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => {});
});
afterAll(() => fake.close());

function s3(prefix: string): { endpoint: string; bucket: string; prefix: string; credentials: { accessKeyId: string; secretAccessKey: string }; attemptsCountMax: number } {
  if (!fake.buckets.has(BUCKET)) fake.buckets.set(BUCKET, new Map());
  return { endpoint: fake.endpoint, bucket: BUCKET, prefix, credentials: { accessKeyId: 'k', secretAccessKey: 's' }, attemptsCountMax: 1 };
}

async function setup(prefix: string): Promise<{ fs: MemoryFileSystem; wal: Wal; sink: BackupSink }> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 64 * 1024 });
  const sink = await BackupSink.open({ wal, target: { s3: s3(prefix) }, flushIntervalMs: 3_600_000 });
  opened.push(wal, sink);
  return { fs, wal, sink };
}

async function reader(prefix: string, fs: MemoryFileSystem): Promise<S3Target> {
  const t = new S3Target(s3(prefix), fs);
  opened.push(t);
  return t;
}

const puts = (from: number, prefix: string): string[] => fake.seen.slice(from).filter((r) => r.method === 'PUT' && r.key.startsWith(`${prefix}/`)).map((r) => r.key.slice(prefix.length + 1));
const stored = (prefix: string, name: string): Buffer | undefined => fake.object(BUCKET, `${prefix}/${name}`)?.bytes;
const isDataFile = (key: string): boolean => key.endsWith('.fpb');
/** Until the store holds a data file's PUT (the materialization starts on the next turn after the flush). */
const heldAtStore = (prefix: string, name?: string): Promise<void> =>
  until(async () => fake.seen.some((r) => r.method === 'PUT' && (name === undefined ? isDataFile(r.key) && r.key.startsWith(`${prefix}/`) : r.key === `${prefix}/${name}`)), `a data PUT under ${prefix} at the store`);

describe('an inline checkpoint: one PUT per idle flush (in-process S3 look-alike)', () => {
  it('an idle forceFlush resolves after ONE PUT, the checkpoint carrying the file, while the file\'s own PUT is held at the store', async () => {
    const { wal, sink } = await setup('one');
    await appendUpTo(wal, 50);
    const seenBefore = fake.seen.length;
    fake.holdWhere((method, key) => method === 'PUT' && isDataFile(key));
    // On the two-PUT protocol the flush waits for its held data PUT: FLUSH_TIMEOUT.
    const r = await sink.forceFlush({ timeoutMs: 5000 });
    expect(r.checkpointLsn).toBe(50);
    const checkpoint = decodeCheckpoint(stored('one', 'CHECKPOINT')!);
    expect(checkpoint.ok && checkpoint.value.checkpointLsn).toBe(50);
    expect(checkpoint.ok && checkpoint.value.inline?.name).toBe('0000000000000001-0000000000000032.fpb');
    expect(puts(seenBefore, 'one')[0]).toBe('CHECKPOINT');
    expect(stored('one', '0000000000000001-0000000000000032.fpb')).toBeUndefined();
    fake.release();
    await sink.settled();
    // Materialized: the very bytes the checkpoint carries, under the file's name, after the checkpoint.
    expect(puts(seenBefore, 'one')).toEqual(['CHECKPOINT', '0000000000000001-0000000000000032.fpb']);
    expect(stored('one', '0000000000000001-0000000000000032.fpb')!.equals(checkpoint.ok ? checkpoint.value.inline!.bytes : Buffer.alloc(0))).toBe(true);
    // The next idle flush goes inline again: one request per flush on the path, every time.
    await appendUpTo(wal, 80);
    const seenNext = fake.seen.length;
    await sink.forceFlush();
    await sink.settled();
    expect(puts(seenNext, 'one')).toEqual(['CHECKPOINT', '0000000000000033-0000000000000050.fpb']);
  });

  /** Opens a sink, publishes 1..40 inline with the file's own PUT held at the store; returns the held file's name. */
  async function inlineHeld(prefix: string): Promise<{ wal: Wal; sink: BackupSink; first: string }> {
    const { wal, sink } = await setup(prefix);
    await appendUpTo(wal, 40);
    const first = '0000000000000001-0000000000000028.fpb';
    fake.holdWhere((method, key) => method === 'PUT' && key === `${prefix}/${first}`);
    await sink.forceFlush({ timeoutMs: 5000 });
    await heldAtStore(prefix, first);
    await appendUpTo(wal, 60);
    return { wal, sink, first };
  }

  /** No checkpoint PUT reaches the store while the first file's PUT is held; then it is released, and the store applied that file first. */
  async function expectNoCheckpointUntilStored(prefix: string, first: string, seenBefore: number, flushDone: () => Promise<unknown>, sink: BackupSink): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(puts(seenBefore, prefix).filter((k) => k === 'CHECKPOINT')).toEqual([]);
    expect(sink.checkpointLsn).toBe(40);
    fake.release();
    await flushDone();
    expect(sink.checkpointLsn).toBe(60);
    const applied = fake.requests.filter((r) => r.startsWith(`PUT ${prefix}/`));
    expect(applied.indexOf(`PUT ${prefix}/${first} if-none-match`)).toBeLessThan(applied.lastIndexOf(`PUT ${prefix}/CHECKPOINT if-match`));
    const checkpoint = decodeCheckpoint(stored(prefix, 'CHECKPOINT')!);
    expect(checkpoint.ok && checkpoint.value.checkpointLsn).toBe(60);
  }

  it('the next forceFlush (inline too) sends its checkpoint only once the previous inline file is stored under its name', async () => {
    const { sink, first } = await inlineHeld('wait');
    const seenBefore = fake.seen.length;
    const second = sink.forceFlush();
    await until(async () => sink.flushing, 'the second flush to start');
    await expectNoCheckpointUntilStored('wait', first, seenBefore, () => second, sink);
    const checkpoint = decodeCheckpoint(stored('wait', 'CHECKPOINT')!);
    expect(checkpoint.ok && checkpoint.value.inline?.name).toBe('0000000000000029-000000000000003c.fpb');
  });

  it('a background flush (two PUTs: nobody waits) after an inline one puts its data, but its checkpoint waits for the inline file', async () => {
    const { sink, first } = await inlineHeld('wait-bg');
    const seenBefore = fake.seen.length;
    sink.resume(); // asks for a flush that no caller waits for
    await until(async () => fake.requests.includes('PUT wait-bg/0000000000000029-000000000000003c.fpb if-none-match'), 'the second data PUT answered');
    await expectNoCheckpointUntilStored('wait-bg', first, seenBefore, () => until(async () => sink.checkpointLsn === 60, 'the background flush to end'), sink);
    const checkpoint = decodeCheckpoint(stored('wait-bg', 'CHECKPOINT')!);
    expect(checkpoint.ok && checkpoint.value.inline).toBe(null);
  });

  it('restore and verify read an inline file the bucket holds only in the checkpoint, byte for byte', async () => {
    const { fs, wal, sink } = await setup('read');
    await appendUpTo(wal, 30);
    await sink.forceFlush();
    await sink.settled();
    await appendUpTo(wal, 70);
    fake.holdWhere((method, key) => method === 'PUT' && isDataFile(key));
    await sink.forceFlush({ timeoutMs: 5000 });
    expect(stored('read', '000000000000001f-0000000000000046.fpb')).toBeUndefined();
    const r = await reader('read', fs);
    const v = await verifyBackup(r.location, { fs: r.readFs });
    expect(v).toMatchObject({ ok: true, firstLsn: 1, lastLsn: 70, checkpointLsn: 70, problems: [] });
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 70);
    // Every reader lists it (backup-file.ts), though the bucket's listing does not show it yet.
    expect(await r.readFs.readdir(r.location)).not.toContain('000000000000001f-0000000000000046.fpb');
    expect((await listBackupFiles(r.readFs, r.location)).map((f) => f.name)).toContain('000000000000001f-0000000000000046.fpb');
  });

  it('the materialization is lost (the writer died after the checkpoint PUT): the next open stores the file first, and the backup goes on', async () => {
    const { fs, wal, sink } = await setup('crash');
    await appendUpTo(wal, 30);
    fake.holdWhere((method, key) => method === 'PUT' && isDataFile(key));
    await sink.forceFlush({ timeoutMs: 5000 });
    await heldAtStore('crash');
    fake.drop(); // the file's PUT is never applied
    await sink.settled();
    await sink.close();
    expect(stored('crash', '0000000000000001-000000000000001e.fpb')).toBeUndefined();
    const seenBefore = fake.seen.length;
    const reopened = await BackupSink.open({ wal, target: { s3: s3('crash') }, flushIntervalMs: 3_600_000 });
    opened.push(reopened);
    expect(reopened.checkpointLsn).toBe(30);
    // Stored under its name before any checkpoint of the new sink.
    expect(puts(seenBefore, 'crash')[0]).toBe('0000000000000001-000000000000001e.fpb');
    const checkpoint = decodeCheckpoint(stored('crash', 'CHECKPOINT')!);
    expect(stored('crash', '0000000000000001-000000000000001e.fpb')!.equals(checkpoint.ok ? checkpoint.value.inline!.bytes : Buffer.alloc(0))).toBe(true);
    await appendUpTo(wal, 55);
    await reopened.forceFlush();
    await reopened.close();
    const r = await reader('crash', fs);
    expect(await verifyBackup(r.location, { fs: r.readFs })).toMatchObject({ ok: true, lastLsn: 55, problems: [] });
    await expectRestoreEqualsWal(r.location, r.readFs, '/restored', wal, 55);
  });

  it('a failed materialization fails the next flush (BACKUP_FAILED to its waiters), which the next attempt retries', async () => {
    const { wal, sink } = await setup('fail');
    await appendUpTo(wal, 30);
    const first = '0000000000000001-000000000000001e.fpb';
    fake.holdWhere((method, key) => method === 'PUT' && key === `fail/${first}`);
    await sink.forceFlush({ timeoutMs: 5000 });
    await appendUpTo(wal, 40);
    const second = sink.forceFlush().then(() => null, (e: unknown) => e);
    await until(async () => sink.flushing, 'the second flush to start');
    await heldAtStore('fail', first);
    fake.drop(); // the first file's PUT fails: the second flush, waiting for it, fails
    const err = await second;
    expect(isFlushpointError(err, 'BACKUP_FAILED')).toBe(true);
    expect((err as Error).message).toContain(first);
    expect(sink.checkpointLsn).toBe(30);
    const checkpoint = decodeCheckpoint(stored('fail', 'CHECKPOINT')!);
    expect(checkpoint.ok && checkpoint.value.inline?.name).toBe(first); // the checkpoint carrying the file stays
    await sink.forceFlush();
    expect(sink.checkpointLsn).toBe(40);
    expect(stored('fail', first)!.equals(checkpoint.ok ? checkpoint.value.inline!.bytes : Buffer.alloc(0))).toBe(true);
  });
});

describe('the inline checkpoint format (version 3)', () => {
  const file = async (first: number, count: number): Promise<Uint8Array[]> => {
    const body = new BodyBuilder();
    body.add(frameRecords(first, Array.from({ length: count }, (_, i) => Buffer.from(`record ${first + i}`))));
    return (await encodeBackupFile(body, 'none')).chunks;
  };

  it('round-trips: the file first, byte for byte, then the checkpoint fields', async () => {
    const chunks = await file(11, 10);
    const bytes = Buffer.concat(encodeCheckpointInline(20, 1, 1234, chunks));
    const d = decodeCheckpoint(bytes);
    expect(d).toMatchObject({ ok: true, value: { checkpointLsn: 20, startLsn: 1, publishedAtMs: 1234, inline: { name: '000000000000000b-0000000000000014.fpb', firstLsn: 11, lastLsn: 20 } } });
    expect(Buffer.from(d.ok ? d.value.inline!.bytes : []).equals(Buffer.concat(chunks))).toBe(true);
    expect(bytes.byteLength).toBe(Buffer.concat(chunks).byteLength + CHECKPOINT_BYTES);
    // A writer reading back its own bytes reads the fields only: the inline file is not checked.
    bytes[BACKUP_HEADER_BYTES + 3] = (bytes[BACKUP_HEADER_BYTES + 3] as number) ^ 0xff;
    expect(decodeCheckpoint(bytes)).toMatchObject({ ok: false, offset: BACKUP_HEADER_BYTES, reason: 'inline file: whole-file checksum mismatch' });
    expect(decodeCheckpointFieldsOnly(bytes)).toMatchObject({ ok: true, value: { checkpointLsn: 20, startLsn: 1, inline: null } });
    bytes[bytes.byteLength - 30] = (bytes[bytes.byteLength - 30] as number) ^ 0xff; // the fields themselves
    expect(decodeCheckpointFieldsOnly(bytes)).toMatchObject({ ok: false, reason: 'checkpoint CRC mismatch' });
  });

  it('a damaged inline section is BACKUP_CORRUPT naming the CHECKPOINT object, for restore, verify and a sink\'s open', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 64 * 1024 });
    opened.push(wal);
    await appendUpTo(wal, 30);
    const sink = await BackupSink.open({ wal, target: { s3: s3('bad') }, flushIntervalMs: 3_600_000 });
    fake.holdWhere((method, key) => method === 'PUT' && isDataFile(key));
    await sink.forceFlush({ timeoutMs: 5000 });
    await heldAtStore('bad');
    fake.drop();
    await sink.close();
    const bytes = Buffer.from(stored('bad', 'CHECKPOINT')!);
    bytes[200] = (bytes[200] as number) ^ 0xff; // a record inside the inline file
    fake.put(BUCKET, 'bad/CHECKPOINT', bytes);
    const d = decodeCheckpoint(bytes);
    expect(d.ok).toBe(false);
    const r = await reader('bad', fs);
    const where = `${r.location}/CHECKPOINT`;
    const v = await verifyBackup(r.location, { fs: r.readFs });
    expect(v.ok).toBe(false);
    expect(v.problems).toContainEqual(expect.objectContaining({ code: 'BACKUP_CORRUPT', file: where }));
    const restoreErr = await restoreBackup({ from: r.location, to: '/restored', fs: r.readFs }).then(() => null, (e: unknown) => e);
    expect(restoreErr).toMatchObject({ code: 'BACKUP_CORRUPT', file: where });
    const openErr = await BackupSink.open({ wal, target: { s3: s3('bad') }, flushIntervalMs: 3_600_000 }).then(() => null, (e: unknown) => e);
    expect(openErr).toMatchObject({ code: 'BACKUP_CORRUPT', file: where });
  });
});
