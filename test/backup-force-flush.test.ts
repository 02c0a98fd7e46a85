/**
 * forceFlush while a flush is held in its datasync by the fault-injecting layer: barrier chains exactly
 * one more flush when the running one froze below its target, join returns the running flush, reject
 * fails fast; 1,000 concurrent barrier calls cost at most two flushes; timeouts and aborts affect only
 * their caller; a failed flush reaches every waiter.
 */
import { describe, expect, it } from 'vitest';
import { FlushpointError } from '../core/errors.js';
import { BackupSink } from '../backup/index.js';
import { appendDurable, until } from './helpers/backup-fixtures.js';
import { BACKUP_DATA_SYNC, holdFlushAtDatasync, scopedGate, sinkFixture } from './helpers/held-flush.js';

describe('BackupSink.forceFlush', () => {
  it('waitersCountMax bounds the forceFlush callers waiting at once (one more is a RangeError; the others go on)', async () => {
    await using fixture = await sinkFixture({ waitersCountMax: 3 });
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 3);
    await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush());
    const more = [sink.forceFlush({ mode: 'join' }), sink.forceFlush()];
    await expect(sink.forceFlush()).rejects.toThrow(RangeError);
    held.release();
    for (const r of await Promise.all([held.started, ...more])) expect(r.checkpointLsn).toBe(3);
  });

  it('forceFlushTimeoutMs: Infinity is accepted and means no timeout, as a per-call timeoutMs: Infinity does', async () => {
    await using fixture = await sinkFixture({ forceFlushTimeoutMs: Infinity });
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 3);
    await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush());
    let settled = false;
    void held.started.finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20)); // a clamped 1 ms timer would have fired by now
    expect(settled).toBe(false);
    held.release();
    expect((await held.started).checkpointLsn).toBe(3);
  });

  it('barrier chains one more flush when the running one does not cover its target; join returns the running one; reject fails fast', async () => {
    await using fixture = await sinkFixture(); // closes the sink and the WAL however the test ends
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 10);
    await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush()); // released at the latest on exit
    const first = held.started;
    await appendDurable(wal, 10); // 11..20 arrive while the flush (frozen at 10) is held
    const barrier = sink.forceFlush({ mode: 'barrier' });
    const join = sink.forceFlush({ mode: 'join' });
    const rejected = await sink.forceFlush({ mode: 'reject' }).catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(FlushpointError);
    expect((rejected as FlushpointError).code).toBe('FLUSH_IN_PROGRESS');
    expect(sink.checkpointLsn).toBe(0);
    held.release();
    const [r1, rb, rj] = await Promise.all([first, barrier, join]);
    expect(r1).toMatchObject({ targetLsn: 10, flushesJoined: 0, flushesRun: 1 });
    expect(r1.checkpointLsn).toBeGreaterThanOrEqual(10);
    expect(rj.flushesJoined).toBe(1);
    expect(rj.checkpointLsn).toBeGreaterThanOrEqual(10); // the running flush's result
    expect(rb).toMatchObject({ targetLsn: 20, flushesJoined: 1, flushesRun: 1 });
    expect(rb.checkpointLsn).toBeGreaterThanOrEqual(20);
    expect(sink.stats().flushes).toBe(2);
    // reject when idle runs a flush like barrier
    await appendDurable(wal, 1);
    const idle = await sink.forceFlush({ mode: 'reject' });
    expect(idle.checkpointLsn).toBe(21);
    await sink.close();
    await wal.close();
  });

  it('barrier joins the running flush without another when that flush covers its target', async () => {
    await using fixture = await sinkFixture(); // closes the sink and the WAL however the test ends
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 5);
    await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush()); // released at the latest on exit
    const a = held.started;
    const b = sink.forceFlush(); // nothing appended since: the running flush covers it
    held.release();
    const rb = await b;
    await a;
    expect(rb).toMatchObject({ targetLsn: 5, checkpointLsn: 5, flushesJoined: 1, flushesRun: 0 });
    expect(sink.stats().flushes).toBe(1);
    await sink.close();
    await wal.close();
  });

  it('1,000 concurrent barrier calls during a running flush, with appends meanwhile: at most two flushes, each call covered', async () => {
    await using fixture = await sinkFixture(); // closes the sink and the WAL however the test ends
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 10);
    await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush()); // released at the latest on exit
    const running = held.started;
    bfs.resetCounts();
    const calls: Array<Promise<{ targetLsn: number; checkpointLsn: number }>> = [];
    for (let i = 0; i < 1000; i++) {
      if (i % 10 === 0) wal.append(new Uint8Array([i & 255])); // appends keep arriving (not yet durable)
      calls.push(sink.forceFlush());
    }
    held.release();
    const results = await Promise.all(calls);
    await running;
    for (const r of results) expect(r.checkpointLsn).toBeGreaterThanOrEqual(r.targetLsn);
    expect(results[results.length - 1]?.targetLsn).toBe(110);
    // Flushes counted through the fs layer: each publishes one CHECKPOINT (rename of CHECKPOINT.tmp).
    // The held one finishes (1) and exactly one more covers all 1,000 callers.
    const checkpointsPublished = bfs.counts.rename / 2; // one data file rename + one checkpoint rename per flush
    expect(checkpointsPublished).toBeLessThanOrEqual(2);
    expect(sink.stats().flushes).toBe(2);
    await sink.close();
    await wal.close();
  });

  it('the trailing flush covers callers whose records the WAL has not made durable yet when it starts', async () => {
    await using fixture = await sinkFixture(); // closes the sink and the WAL however the test ends
    const { wal, sink, bfs, wfs } = fixture;
    await appendDurable(wal, 10);
    await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush()); // released at the latest on exit
    const running = held.started;
    await using walGate = scopedGate(); // opens at the latest on exit
    wfs.inject({ op: 'datasync', hold: walGate.promise });
    const calls: Array<Promise<{ targetLsn: number; checkpointLsn: number }>> = [];
    for (let i = 0; i < 100; i++) {
      wal.append(new Uint8Array([i]));
      calls.push(sink.forceFlush());
    }
    held.release();
    await running;
    await new Promise((r) => setTimeout(r, 20)); // the trailing flush starts while the WAL is still held
    expect(wal.durableLsn).toBeLessThan(110);
    walGate.open();
    const results = await Promise.all(calls);
    for (const r of results) expect(r.checkpointLsn).toBeGreaterThanOrEqual(r.targetLsn);
    expect(sink.checkpointLsn).toBe(110);
    expect(sink.stats().flushes).toBe(2);
    await sink.close();
    await wal.close();
  });

  it('a timeout or an abort affects only that caller; the flush completes and a later call sees it', async () => {
    await using fixture = await sinkFixture(); // closes the sink and the WAL however the test ends
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 3);
    await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush()); // released at the latest on exit
    const patient = held.started;
    const timed = sink.forceFlush({ timeoutMs: 20 });
    const ac = new AbortController();
    const aborted = sink.forceFlush({ signal: ac.signal });
    const joinTimed = sink.forceFlush({ mode: 'join', timeoutMs: 20 });
    const e = (await timed.catch((x: unknown) => x)) as FlushpointError;
    expect(e.code).toBe('FLUSH_TIMEOUT');
    expect(e.reachedLsn).toBe(0); // the checkpoint reached when it gave up
    expect((await joinTimed.catch((x: unknown) => x)) as FlushpointError).toMatchObject({ code: 'FLUSH_TIMEOUT', reachedLsn: 0 });
    const reason = new Error('operator cancelled');
    ac.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    expect(sink.flushing).toBe(true);
    held.release();
    expect((await patient).checkpointLsn).toBe(3);
    const later = await sink.forceFlush();
    expect(later).toMatchObject({ checkpointLsn: 3, flushesRun: 0 });
    await sink.close();
    await wal.close();
  });

  it('EIO on the backup datasync: every waiter gets BACKUP_FAILED, the checkpoint does not move, and a retry completes once the fault clears', async () => {
    await using fixture = await sinkFixture({ retryDelayMsMin: 5, retryDelayMsMax: 20 }); // closes the sink and the WAL however the test ends
    const { wal, sink, bfs, bmem } = fixture;
    await appendDurable(wal, 20);
    bfs.inject({ ...BACKUP_DATA_SYNC, error: 'EIO', times: 3 });
    const waiters = Array.from({ length: 5 }, () => sink.forceFlush().catch((x: unknown) => x));
    const errors = (await Promise.all(waiters)) as FlushpointError[];
    for (const err of errors) {
      expect(err).toBeInstanceOf(FlushpointError);
      expect(err.code).toBe('BACKUP_FAILED');
      expect((err.cause as NodeJS.ErrnoException).code).toBe('EIO');
    }
    expect(sink.checkpointLsn).toBe(0);
    await expect(bmem.stat('/backup/CHECKPOINT')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(sink.stats().lastError).toMatch(/EIO/);
    // The automatic retries hit the remaining two faults, then one succeeds, with the same frozen range.
    await until(() => sink.checkpointLsn === 20, 'retry to complete the backup');
    expect(sink.stats().flushFailures).toBe(3);
    const files = (await bmem.readdir('/backup')).filter((n) => n.endsWith('.fpb'));
    expect(files).toEqual(['0000000000000001-0000000000000014.fpb']);
    await sink.close();
    await wal.close();
  });

  it('pauses after failuresCountMax consecutive failures, keeps the WAL held, and resume() recovers', async () => {
    await using fixture = await sinkFixture({ retryDelayMsMin: 1, retryDelayMsMax: 2, failuresCountMax: 3 }); // closes the sink and the WAL however the test ends
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 5);
    bfs.inject({ ...BACKUP_DATA_SYNC, error: 'ENOSPC', times: Infinity });
    await expect(sink.forceFlush()).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
    await until(() => sink.paused, 'the sink to pause');
    const s = sink.stats();
    expect(s.consecutiveFailures).toBe(3);
    expect(s.lastError).toMatch(/ENOSPC/);
    expect(wal.stats().holds['backup:/backup']).toBe(1);
    await wal.truncateBefore(1000);
    expect(wal.firstLsn).toBe(1); // held: nothing the backup needs was deleted
    bfs.clearFaults();
    sink.resume();
    await until(() => sink.checkpointLsn === 5, 'resume to flush');
    await sink.close();
    await wal.close();
  });

  it('rejects bad arguments and use after close', async () => {
    await using fixture = await sinkFixture(); // closes the sink and the WAL however the test ends
    const { wal, sink } = fixture;
    await expect(sink.forceFlush({ mode: 'sometimes' as never })).rejects.toBeInstanceOf(RangeError);
    await expect(sink.forceFlush({ timeoutMs: -5 })).rejects.toBeInstanceOf(RangeError);
    // A string is a TypeError that names its type (it was a RangeError saying 'got 10').
    await expect(sink.forceFlush({ timeoutMs: '10' as never })).rejects.toThrow(new TypeError('timeoutMs must be a number, got string "10"'));
    await expect(wal.sync({ timeoutMs: '10' as never })).rejects.toBeInstanceOf(TypeError);
    await expect(sink.forceFlush({ signal: {} as never })).rejects.toBeInstanceOf(TypeError);
    // A second sink of this WAL on the same directory, in this process: BACKUP_LOCKED, as from another
    // process (it was a RangeError about hold names, whose advice led to BACKUP_LOCKED anyway).
    await expect(BackupSink.open({ wal, dir: '/backup', fs: fixture.bfs })).rejects.toMatchObject({ code: 'BACKUP_LOCKED' });
    await sink.close();
    const events: string[] = [];
    sink.on('forceFlush', (e) => events.push(`${e.mode} ${e.outcome}`));
    await expect(sink.forceFlush()).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
    expect(events).toEqual(['barrier failed']); // counted as every call past its argument checks is
    await wal.close();
  });
});
