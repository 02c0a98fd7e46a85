/**
 * commitWait (wal/options.ts, fs/io-worker.ts): how the event loop waits for a commit on the commit
 * worker. 'poll' checks for the answer once per event-loop turn instead of sleeping until a wake-up; the
 * same durability, the loop keeps serving its other events. On the real disk: 'poll' is what the
 * commit worker is for, and the in-memory file system has no worker.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryFileSystem, NodeFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-commit-wait-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('commitWait', () => {
  it("takes 'auto' (the default), 'sleep' or 'poll'; anything else is a RangeError naming the option", async () => {
    const fs = new MemoryFileSystem();
    for (const bad of ['spin', '', 1, 'Poll']) {
      await expect(Wal.open({ dir: '/w', fs, commitWait: bad as never })).rejects.toThrow(/commitWait must be 'auto', 'sleep' or 'poll'/);
    }
    const wal = await Wal.open({ dir: '/w', fs, commitWait: 'poll' }); // no worker here: ignored
    expect(await wal.appendDurable(new Uint8Array([1]))).toBe(1);
    await wal.close();
  });

  it("the default, 'auto', on the real disk: a busy log's commits are polled, each sleep accounted for (an idle gap or a poll cut at its bound); commitWait 'sleep' waits for each", async () => {
    const real = Atomics.waitAsync;
    let waits = 0;
    (Atomics as { waitAsync: unknown }).waitAsync = (...args: Parameters<typeof Atomics.waitAsync>) => {
      waits++;
      return real(...args);
    };
    try {
      const run = async (name: string, options: { commitWait?: 'sleep' }): Promise<{ waits: number; commits: number; polled: number; cut: number; early: number }> => {
        // 'auto' stops polling while this disk's syncs average over COMMIT_POLL_MS_MAX (a loaded
        // machine, a slow disk): that bound is lifted here. How long each sync takes still decides
        // how many polls reach their own bound and sleep (cut): those are counted, not assumed.
        const fs = new NodeFileSystem({ commitPollAverageMsMax: Number.POSITIVE_INFINITY });
        const wal = await Wal.open({ dir: path.join(dir, name), fs, ...options });
        await wal.appendDurable(Buffer.from('warm')); // the worker started and answered once
        const pool = fs.ioWorker();
        const before = { polled: pool.polledCount, cut: pool.pollsCutCount, early: pool.earlyWakeupsCount };
        waits = 0;
        await Promise.all(
          Array.from({ length: 16 }, async (_, w) => {
            for (let i = 0; i < 60; i++) await wal.appendDurable(Buffer.from(`w${w}-i${i}`));
          }),
        );
        const commits = wal.stats().syncLatency.count - 1;
        const got = { waits, commits, polled: pool.polledCount - before.polled, cut: pool.pollsCutCount - before.cut, early: pool.earlyWakeupsCount - before.early };
        expect(wal.durableLsn).toBe(1 + 16 * 60);
        await wal.close();
        await fs.dispose(); // its commit workers
        return got;
      };
      const auto = await run('auto', {});
      const seen = JSON.stringify(auto);
      expect(auto.commits).toBeGreaterThanOrEqual(60);
      // A commit is polled when it is sent within COMMIT_POLL_IDLE_MS_MAX of the previous answer: the
      // loop's own work in between, whatever the disk. Most are; a slow turn on a loaded machine is not.
      expect(auto.polled, seen).toBeGreaterThanOrEqual(Math.floor(auto.commits / 2));
      // Every Atomics.waitAsync is a commit not polled, a poll cut (its sync outlasted COMMIT_POLL_MS_MAX),
      // or a wait again after an early wake-up (the previous answer's notify came late: a worker
      // descheduled between its store and its notify).
      expect(auto.waits, seen).toBe(auto.commits - auto.polled + auto.cut + auto.early);
      const sleep = await run('sleep', { commitWait: 'sleep' });
      expect(sleep.polled).toBe(0);
      expect(sleep.waits).toBeGreaterThanOrEqual(sleep.commits);
    } finally {
      (Atomics as { waitAsync: unknown }).waitAsync = real;
    }
  });

  it('NodeFileSystem refuses a commitPollAverageMsMax that is not a number of ms >= 0', () => {
    for (const bad of [-1, Number.NaN, '1', null]) {
      expect(() => new NodeFileSystem({ commitPollAverageMsMax: bad as never })).toThrow(/^commitPollAverageMsMax must be a number of ms >= 0/);
    }
    expect(() => new NodeFileSystem({ commitPollAverageMsMax: Number.POSITIVE_INFINITY })).not.toThrow();
    expect(() => new NodeFileSystem({ commitPollAverageMsMax: 0 })).not.toThrow();
  });

  it("'poll' on the real disk: 64 writers' records are durable and read back after a reopen, and a 1 ms timer kept firing meanwhile", async () => {
    const walDir = path.join(dir, 'poll');
    const wal = await Wal.open({ dir: walDir, commitWait: 'poll' });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    const payload = (w: number, i: number): Uint8Array => Buffer.from(`w${w}-i${i}`);
    await Promise.all(
      Array.from({ length: 64 }, async (_, w) => {
        for (let i = 0; i < 50; i++) await wal.appendDurable(payload(w, i));
      }),
    );
    const elapsedMs = performance.now() - started;
    clearInterval(timer);
    expect(wal.durableLsn).toBe(64 * 50);
    // Timers run between the checks: at least one tick per 20 ms of commits (a loop that never yielded would show none).
    expect(ticks, `${ticks} ticks in ${elapsedMs.toFixed(0)} ms`).toBeGreaterThanOrEqual(Math.floor(elapsedMs / 20));
    await wal.close();
    const again = await Wal.open({ dir: walDir });
    const seen = new Set<string>();
    for await (const { payload: p } of again.read()) seen.add(Buffer.from(p).toString());
    expect(seen.size).toBe(64 * 50);
    for (let w = 0; w < 64; w++) for (let i = 0; i < 50; i++) expect(seen.has(`w${w}-i${i}`)).toBe(true);
    await again.close();
  });
});
