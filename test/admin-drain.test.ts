/**
 * Drainer over a real Wal + BackupSink, and installShutdownHandlers: concurrent drains share one run,
 * a drain that meets a held backup flush waits for it and chains one more, a timeout carries the LSNs
 * reached, a failing backup is never a success, and no write acknowledged before a drain is left out.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyBackup } from '../backup/index.js';
import { isFlushpointError } from '../core/errors.js';
import { Drainer, DrainTimeoutError } from '../engine/admin/drain.js';
import { installShutdownHandlers, type Drainable } from '../engine/admin/shutdown.js';
import type { DrainResult } from '../engine/admin/target.js';
import { nodeFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { deferred, until } from './helpers/async.js';
import { appendSome, openRig, tempDir, type AdminRig } from './admin-fixtures.js';

const rigs: AdminRig[] = [];
async function rig(): Promise<AdminRig> {
  const r = await openRig();
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});

describe('Drainer', () => {
  it('concurrent drains share one run and one result, with the checkpoint at or past the durable LSN', async () => {
    const r = await rig();
    const last = appendSome(r.wal, 40);
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const drains = Array.from({ length: 5 }, () => r.drainer.drain({ timeoutMs: 60_000 }));
    await until(() => r.sink.flushing, 'the drain to reach its backup flush');
    held.resolve();
    const results = await Promise.all(drains);
    expect(r.drainer.stats().runs).toBe(1);
    for (const d of results) {
      expect(d.walDurableLsn).toBe(last);
      expect(d.backupCheckpointLsn).toBe(results[0]?.backupCheckpointLsn);
      expect(d.backupCheckpointLsn).toBeGreaterThanOrEqual(d.walDurableLsn);
    }
    expect(r.drainer.stats().calls.ok).toBe(5);
  });

  it('waits for a backup flush held in its datasync, then chains one more that covers the rest (no error)', async () => {
    const r = await rig();
    appendSome(r.wal, 10);
    await r.wal.sync();
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const running = r.sink.forceFlush({ mode: 'barrier' });
    await until(() => r.sink.flushing, 'a held flush');
    const last = appendSome(r.wal, 10);
    const flushesBefore = r.sink.stats().flushes;
    const drain = r.drainer.drain({ timeoutMs: 60_000 });
    let settled = false;
    void drain.finally(() => (settled = true));
    await r.wal.sync();
    expect(settled).toBe(false); // the held flush covers only LSN 10
    held.resolve();
    const d = await drain;
    await running;
    expect(d.walDurableLsn).toBe(last);
    expect(d.backupCheckpointLsn).toBe(last);
    expect(r.sink.stats().flushes - flushesBefore).toBe(2); // the held one, and one more
  });

  it('a timeout rejects that caller with FLUSH_TIMEOUT and the LSNs reached; the run goes on and the next drain joins it', async () => {
    const r = await rig();
    const last = appendSome(r.wal, 10);
    await r.wal.sync(); // the WAL part is done before the clock starts: only the held backup flush can time out
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const err = await r.drainer.drain({ timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DrainTimeoutError);
    expect(err).toMatchObject({ code: 'FLUSH_TIMEOUT', walDurableLsn: last, backupCheckpointLsn: 0, reachedLsn: 0, lsn: last });
    expect(r.drainer.stats().running).toBe(true);
    const next = r.drainer.drain({ timeoutMs: 60_000 });
    held.resolve();
    expect((await next).backupCheckpointLsn).toBe(last);
    expect(r.drainer.stats().runs).toBe(1);
    expect(r.drainer.stats().calls).toMatchObject({ ok: 1, timeout: 1 });
  });

  it('a drain after a timed-out one and more writes does not join the old run: its answer covers the new writes', async () => {
    const r = await rig();
    const first = appendSome(r.wal, 10);
    await r.wal.sync();
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    await expect(r.drainer.drain({ timeoutMs: 50 })).rejects.toBeInstanceOf(DrainTimeoutError);
    const last = appendSome(r.wal, 10); // resume() let these in; they are acknowledged once durable
    await r.wal.sync();
    expect(last).toBeGreaterThan(first);
    const next = r.drainer.drain({ timeoutMs: 60_000 });
    held.resolve();
    r.bfs.clearFaults();
    const d = await next;
    expect(d.walDurableLsn).toBe(last);
    expect(d.backupCheckpointLsn).toBeGreaterThanOrEqual(last);
    expect(r.sink.checkpointLsn).toBeGreaterThanOrEqual(last);
    expect(r.drainer.stats().runs).toBe(2);
  });

  it('a failing backup rejects every drain of the run with BACKUP_FAILED, never a success', async () => {
    const r = await rig();
    appendSome(r.wal, 10);
    r.bfs.inject({ op: 'datasync', error: 'EIO' });
    const outcomes = await Promise.allSettled([r.drainer.drain(), r.drainer.drain(), r.drainer.drain()]);
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect(isFlushpointError((o as PromiseRejectedResult).reason, 'BACKUP_FAILED')).toBe(true);
    }
    expect(r.drainer.stats().calls.failed).toBe(3);
    expect(r.sink.checkpointLsn).toBe(0);
  });

  it('an abort rejects with the signal reason and leaves the run going', async () => {
    const r = await rig();
    appendSome(r.wal, 3);
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const ac = new AbortController();
    const drain = r.drainer.drain({ signal: ac.signal });
    await until(() => r.sink.flushing, 'the flush');
    const reason = new Error('operator gave up');
    ac.abort(reason);
    await expect(drain).rejects.toBe(reason);
    held.resolve();
    expect((await r.drainer.drain()).backupCheckpointLsn).toBe(3);
    expect(r.drainer.stats().calls).toMatchObject({ aborted: 1, ok: 1 });
  });

  it('refuses wrong options with TypeError / RangeError', async () => {
    const r = await rig();
    await expect(r.drainer.drain({ timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(r.drainer.drain({ timeoutMs: 2 ** 31 })).rejects.toBeInstanceOf(RangeError);
    await expect(r.drainer.drain({ timeout: 5 } as never)).rejects.toBeInstanceOf(TypeError);
    expect(r.drainer.stats().runs).toBe(0);
  });

  it('without a backup sink it ends once the WAL is durable (backupCheckpointLsn null)', async () => {
    const dir = await tempDir();
    const wal = await Wal.open({ dir: path.join(dir, 'wal'), fs: nodeFileSystem });
    try {
      const last = appendSome(wal, 7);
      const d = await new Drainer({ wal, sink: null }).drain();
      expect(d).toMatchObject({ walDurableLsn: last, backupCheckpointLsn: null });
      expect(wal.durableLsn).toBe(last);
    } finally {
      await wal.close();
    }
  });

  it('a drain racing writes leaves no write acknowledged before it out of the backup', async () => {
    const r = await rig();
    const acknowledged: number[] = [];
    let stop = false;
    const writers = Array.from({ length: 16 }, async () => {
      while (!stop) {
        const lsn = r.wal.append(new Uint8Array(64).fill(7));
        await r.wal.waitDurable(lsn);
        acknowledged.push(lsn);
      }
    });
    await until(() => acknowledged.length >= 200, '200 acknowledged writes', 30_000);
    // As the engine does: stop accepting (here: the writers stop appending), then drain.
    stop = true;
    const ackedBefore = [...acknowledged];
    const d = await r.drainer.drain({ timeoutMs: 60_000 });
    await Promise.all(writers);
    expect(d.backupCheckpointLsn).toBeGreaterThanOrEqual(d.walDurableLsn);
    expect(Math.max(...ackedBefore)).toBeLessThanOrEqual(d.backupCheckpointLsn as number);
    expect(Math.max(...acknowledged)).toBeLessThanOrEqual(d.walDurableLsn);
    const v = await verifyBackup(path.join(r.dir, 'backup'));
    expect(v.ok).toBe(true);
    expect(v.checkpointLsn).toBe(d.backupCheckpointLsn);
  });
});

describe('installShutdownHandlers', () => {
  function fakeDb(drain: () => Promise<DrainResult>): Drainable & { log: string[] } {
    const log: string[] = [];
    return {
      log,
      drain: async (o) => {
        log.push(`drain ${o.timeoutMs}`);
        return await drain();
      },
      close: async () => {
        log.push('close');
      },
    };
  }

  it('drains, closes and exits 0 on SIGTERM; exits 1 when the drain fails; 130 on a second signal', async () => {
    const ok = fakeDb(async () => ({ walDurableLsn: 5, backupCheckpointLsn: 5, waitedMs: 1 }));
    const exits: number[] = [];
    const uninstall = installShutdownHandlers(ok, { timeoutMs: 1234, signals: ['SIGTERM'], exit: (c) => exits.push(c) });
    process.emit('SIGTERM');
    await until(() => exits.length === 1, 'the exit');
    uninstall();
    expect(ok.log).toEqual(['drain 1234', 'close']);
    expect(exits).toEqual([0]);

    const sigintListeners = process.listenerCount('SIGINT');
    const hold = deferred<DrainResult>();
    const failing = fakeDb(() => hold.promise);
    const exits2: number[] = [];
    const uninstall2 = installShutdownHandlers(failing, { timeoutMs: 10, signals: ['SIGINT'], exit: (c) => exits2.push(c) });
    process.emit('SIGINT');
    process.emit('SIGINT'); // the operator insists
    expect(exits2).toEqual([130]);
    hold.reject(new DrainTimeoutError(10, 9, 9, 3));
    await until(() => exits2.length === 2, 'the exit after the failed drain');
    uninstall2();
    expect(exits2).toEqual([130, 1]);
    expect(failing.log).toEqual(['drain 10', 'close']); // closed even so: close flushes what it can
    expect(process.listenerCount('SIGINT')).toBe(sigintListeners);
  });

  it('a close that never returns (a hung backup target) exits 1 after closeTimeoutMs, not never', async () => {
    const hung: Drainable & { log: string[] } = {
      log: [],
      drain: async () => ({ walDurableLsn: 5, backupCheckpointLsn: 5, waitedMs: 1 }),
      close: () => {
        hung.log.push('close');
        return new Promise<void>(() => {}); // as a sink whose final flush waits on a target call that hangs
      },
    };
    const exits: number[] = [];
    const started = performance.now();
    const uninstall = installShutdownHandlers(hung, { timeoutMs: 60_000, closeTimeoutMs: 200, signals: ['SIGTERM'], exit: (c) => exits.push(c) });
    process.emit('SIGTERM');
    await until(() => exits.length === 1, 'the exit after the close deadline', 5_000);
    uninstall();
    expect(exits).toEqual([1]);
    expect(hung.log).toEqual(['close']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(() => installShutdownHandlers(hung, { timeoutMs: 1, closeTimeoutMs: -1 })).toThrow(RangeError);
  });

  it('by default the close gets at least SHUTDOWN_CLOSE_TIMEOUT_MS_DEFAULT, whatever the drain had (timeoutMs 0 made it lose at once)', async () => {
    const slow: Drainable = {
      drain: async () => ({ walDurableLsn: 5, backupCheckpointLsn: 5, waitedMs: 1 }),
      close: () => new Promise<void>((resolve) => setTimeout(resolve, 100)), // a checkpoint finishing, say
    };
    const exits: number[] = [];
    const uninstall = installShutdownHandlers(slow, { timeoutMs: 0, signals: ['SIGTERM'], exit: (c) => exits.push(c) });
    process.emit('SIGTERM');
    await until(() => exits.length === 1, 'the exit', 5_000);
    uninstall();
    expect(exits).toEqual([0]);
  });
});
