/**
 * The BackupSink over S3, against the real radosgw: the forceFlush contract (barrier, join, reject, 1,000
 * callers, timeout and abort per caller) and the faults (radosgw paused mid-upload, radosgw stopped, a
 * second sink on the same prefix), then restore and verify from the bucket.
 *
 * An upload is held open deterministically by pausing radosgw (SIGSTOP) before the flush starts: the
 * kernel still accepts the connection, nothing answers until SIGCONT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackupSink } from '../../backup/sink.js';
import { restoreBackup } from '../../backup/restore.js';
import { verifyBackup } from '../../backup/verify.js';
import { S3Target } from '../../backup/s3-target.js';
import type { S3TargetOptions } from '../../backup/s3-options.js';
import { isFlushpointError } from '../../core/errors.js';
import { Wal } from '../../wal/index.js';
import { payloadFor } from '../helpers/wal-fixtures.js';
import { cluster, newBucket, rawClient, targetOptions, until } from './cluster.js';
import { lengthOf, walRecords } from './sink-fixtures.js';

const c = cluster();
const raw = rawClient(c);
let bucket = '';
let tmp = '';
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  bucket = await newBucket(c, 'sink');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'fp-s3-sink-'));
});
afterEach(async () => {
  c.resumeRgw(); // never leave radosgw paused for the next test
  await c.startRgw();
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
});
afterAll(() => {
  raw.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

let seq = 0;

/** A WAL on disk and a sink on s3://bucket/<prefix>; both closed after the test. */
async function setup(o: { s3?: Partial<S3TargetOptions>; sink?: Record<string, unknown>; prefix?: string; preload?: number; preloadOther?: boolean } = {}) {
  const name = `t${++seq}`;
  const prefix = o.prefix ?? name;
  const wal = await Wal.open({ dir: path.join(tmp, name, 'wal'), segmentSizeBytes: 64 * 1024 });
  // preloadOther: records of another history (other lengths) than append() makes.
  for (let lsn = 1; lsn <= (o.preload ?? 0); lsn++) wal.append(payloadFor(lsn, lengthOf(lsn) + (o.preloadOther ? 1 : 0)));
  await wal.sync();
  const sink = await BackupSink.open({ wal, target: { s3: targetOptions(c, bucket, prefix, o.s3) }, flushIntervalMs: 3_600_000, ...o.sink });
  cleanups.push(async () => {
    await sink.close().catch(() => {});
    await wal.close().catch(() => {});
  });
  const append = async (n: number): Promise<number> => {
    for (let i = 0; i < n; i++) {
      const lsn = wal.lastLsn + 1;
      wal.append(payloadFor(lsn, lengthOf(lsn)));
    }
    await wal.sync();
    return wal.lastLsn;
  };
  return { wal, sink, prefix, append, walDir: path.join(tmp, name, 'wal') };
}

/** Data objects (backup files) under the prefix: one per flush here (files are far below the size cap). */
async function dataObjects(prefix: string): Promise<string[]> {
  const r = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
  return (r.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).filter((k) => k.endsWith('.fpb'));
}

const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );

describe('forceFlush over S3', () => {
  it('barrier: a caller arriving while the upload froze short chains ONE more flush and resolves only past its target', async () => {
    const { sink, append, prefix } = await setup();
    await append(10);
    c.pauseRgw();
    const first = sink.forceFlush();
    await until(async () => sink.flushing, 'the first flush to start');
    const target2 = await append(5);
    const second = sink.forceFlush();
    const third = sink.forceFlush();
    c.resumeRgw();
    const r1 = await first;
    const r2 = await second;
    await third;
    await sink.settled(); // an inline flush's file is stored under its name just after it
    expect(r1.checkpointLsn).toBeGreaterThanOrEqual(10);
    expect(r2).toMatchObject({ targetLsn: target2, flushesJoined: 1, flushesRun: 1 });
    expect(r2.checkpointLsn).toBeGreaterThanOrEqual(target2);
    expect(await dataObjects(prefix)).toEqual(['0000000000000001-000000000000000a.fpb', '000000000000000b-000000000000000f.fpb']);
  });

  it('join returns the running flush\'s result (short of a later target); reject fails fast with FLUSH_IN_PROGRESS', async () => {
    const { sink, append } = await setup();
    await append(10);
    c.pauseRgw();
    const running = sink.forceFlush();
    await until(async () => sink.flushing, 'the flush to start');
    await append(5);
    const joined = sink.forceFlush({ mode: 'join' });
    const rejected = await settle(sink.forceFlush({ mode: 'reject' }));
    expect(rejected.ok).toBe(false);
    expect(isFlushpointError((rejected as { err: unknown }).err, 'FLUSH_IN_PROGRESS')).toBe(true);
    c.resumeRgw();
    const j = await joined;
    expect(j).toMatchObject({ targetLsn: 15, checkpointLsn: 10, flushesJoined: 1 });
    await running;
  });

  it('1,000 concurrent barrier calls during a held upload cause at most two flushes, counted in the bucket', async () => {
    const { sink, append, prefix } = await setup();
    await append(10);
    c.pauseRgw();
    const first = sink.forceFlush();
    await until(async () => sink.flushing, 'the flush to start');
    const target = await append(20);
    const calls = Array.from({ length: 1000 }, () => sink.forceFlush());
    c.resumeRgw();
    const results = await Promise.all([first, ...calls]);
    for (const r of results.slice(1)) expect(r.checkpointLsn).toBeGreaterThanOrEqual(target);
    await sink.settled(); // an inline flush's file is stored under its name just after it
    const objects = await dataObjects(prefix);
    expect(objects.length).toBeLessThanOrEqual(2);
    expect(objects).toEqual(['0000000000000001-000000000000000a.fpb', '000000000000000b-000000000000001e.fpb']);
    expect(sink.stats().flushes).toBe(2);
  });

  it('timeout and abort affect only their caller; the flush goes on and the others get its result', async () => {
    const { sink, append } = await setup();
    const target = await append(10);
    c.pauseRgw();
    const ac = new AbortController();
    const timed = settle(sink.forceFlush({ timeoutMs: 200 }));
    const aborted = settle(sink.forceFlush({ signal: ac.signal }));
    const patient = sink.forceFlush();
    ac.abort(new Error('operator gave up'));
    const t = await timed;
    expect(t.ok).toBe(false);
    expect(isFlushpointError((t as { err: unknown }).err, 'FLUSH_TIMEOUT')).toBe(true);
    expect(((t as { err: { reachedLsn?: number } }).err).reachedLsn).toBe(0);
    const a = await aborted;
    expect((a as { err: Error }).err.message).toBe('operator gave up');
    expect(sink.flushing).toBe(true);
    c.resumeRgw();
    expect((await patient).checkpointLsn).toBeGreaterThanOrEqual(target);
  });
});

describe('faults over S3', () => {
  it('radosgw paused mid-upload: the request times out, waiters with a timeout get FLUSH_TIMEOUT, the others BACKUP_FAILED; the retry completes once it runs again, and the bucket equals the WAL', async () => {
    const { wal, sink, append, walDir, prefix } = await setup({
      s3: { requestTimeoutMs: 800, attemptsCountMax: 1 },
      sink: { retryDelayMsMin: 50, retryDelayMsMax: 200, failuresCountMax: 1000 },
    });
    const target = await append(50);
    c.pauseRgw();
    const timed = settle(sink.forceFlush({ timeoutMs: 300 }));
    const patient = settle(sink.forceFlush());
    const t = await timed;
    expect(isFlushpointError((t as { err: unknown }).err, 'FLUSH_TIMEOUT')).toBe(true);
    const p = await patient;
    expect(p.ok).toBe(false);
    expect(isFlushpointError((p as { err: unknown }).err, 'BACKUP_FAILED')).toBe(true);
    expect(sink.checkpointLsn).toBe(0);
    c.resumeRgw();
    await until(async () => sink.checkpointLsn >= target, 'the retried flush to complete');
    expect(sink.stats().flushFailures).toBeGreaterThanOrEqual(1);
    await sink.close();
    await wal.close();
    const t3 = new S3Target(targetOptions(c, bucket, prefix));
    const v = await verifyBackup(t3.location, { fs: t3.readFs });
    expect(v).toMatchObject({ ok: true, checkpointLsn: target });
    const to = path.join(tmp, `${prefix}-restored`);
    await restoreBackup({ from: t3.location, to, fs: t3.readFs });
    expect(await walRecords(to)).toEqual(await walRecords(walDir));
    await t3.close();
  });

  it('radosgw stopped: BACKUP_FAILED to every waiter, the checkpoint unmoved (in the bucket too); retried to completion after a restart', async () => {
    const { sink, append, prefix } = await setup({
      s3: { requestTimeoutMs: 2000, connectionTimeoutMs: 1000, attemptsCountMax: 2 },
      sink: { retryDelayMsMin: 50, retryDelayMsMax: 300, failuresCountMax: 1000 },
    });
    const before = await append(5);
    await sink.forceFlush();
    const target = await append(20);
    await c.stopRgw();
    const waiters = await Promise.all(Array.from({ length: 5 }, () => settle(sink.forceFlush())));
    for (const w of waiters) {
      expect(w.ok).toBe(false);
      expect(isFlushpointError((w as { err: unknown }).err, 'BACKUP_FAILED')).toBe(true);
    }
    expect(sink.checkpointLsn).toBe(before);
    await c.startRgw();
    const t3 = new S3Target(targetOptions(c, bucket, prefix));
    const mid = await verifyBackup(t3.location, { fs: t3.readFs });
    expect(mid.checkpointLsn).toBe(before);
    await until(async () => sink.checkpointLsn >= target, 'the retried flush after the restart');
    const after = await verifyBackup(t3.location, { fs: t3.readFs });
    expect(after).toMatchObject({ ok: true, checkpointLsn: target });
    await t3.close();
  });

  it('a sink of another WAL on the prefix is refused (BACKUP_GAP); a second sink of the same history gets BACKUP_LOCKED at its first publish; the first goes on', async () => {
    const a = await setup({ prefix: 'shared' });
    await a.append(10);
    await a.sink.forceFlush();
    // Another database's WAL: its record at the checkpoint LSN 10 is not the backup's (adoption.ts checkSameWal).
    await expect(setup({ prefix: 'shared', preload: 20, preloadOther: true })).rejects.toMatchObject({ code: 'BACKUP_GAP', lsn: 10 });
    const b = await setup({ prefix: 'shared', preload: 20 }); // the same history, 20 records: it opens on A's checkpoint 10
    await a.append(5);
    await a.sink.forceFlush(); // A moves the checkpoint: B's view of it is stale now
    const r = await settle(b.sink.forceFlush());
    expect(r.ok).toBe(false);
    expect(isFlushpointError((r as { err: unknown }).err, 'BACKUP_LOCKED')).toBe(true);
    expect(b.sink.checkpointLsn).toBe(10);
    await a.append(5);
    expect((await a.sink.forceFlush()).checkpointLsn).toBe(20);
  });
});
