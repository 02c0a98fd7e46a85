import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IoWorker, IoWorkerPool, type IoWorkerOptions } from '../fs/io-worker.js';
import { settledWithin } from './helpers/async.js';
import { NodeFileSystem } from '../fs/node-file-system.js';
import { Wal } from '../wal/index.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-ioworker-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sharedBytes(text: string): Uint8Array {
  const b = new Uint8Array(new SharedArrayBuffer(text.length));
  b.set(Buffer.from(text));
  return b;
}

describe('commit worker', () => {
  it('writes shared and unshared buffers in order at the position, then syncs', async () => {
    const file = path.join(dir, 'a');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    try {
      await w.commit(fd, file, [sharedBytes('hello '), Buffer.from('plain '), sharedBytes('world')], 3, 'fdatasync');
      await w.commit(fd, file, [sharedBytes('!')], 20, 'fsync');
      const got = fs.readFileSync(file);
      expect(got.subarray(3, 20).toString()).toBe('hello plain world');
      expect(got.subarray(20).toString()).toBe('!');
      expect(got.subarray(0, 3)).toEqual(Buffer.alloc(3));
    } finally {
      fs.closeSync(fd);
      await w.terminate();
    }
  });

  it('many buffers, many shared buffers (past its registry), and a queue of concurrent commits', async () => {
    const file = path.join(dir, 'b');
    const fd = fs.openSync(file, 'w+');
    const pool = new IoWorkerPool(1);
    try {
      const parts = Array.from({ length: 300 }, (_, i) => sharedBytes(String.fromCharCode(65 + (i % 26))));
      await pool.commit(fd, file, parts, 0, 'fdatasync'); // 300 > the iovec limit: copied
      // 100 distinct shared buffers, concurrently: more than the worker remembers at once.
      await Promise.all(Array.from({ length: 100 }, (_, i) => pool.commit(fd, file, [sharedBytes(String(i % 10))], 300 + i, 'fdatasync')));
      const got = fs.readFileSync(file).toString();
      expect(got.slice(0, 300)).toBe(parts.map((p) => Buffer.from(p).toString()).join(''));
      expect(got.slice(300)).toBe(Array.from({ length: 100 }, (_, i) => String(i % 10)).join(''));
    } finally {
      fs.closeSync(fd);
      await pool.terminate();
    }
  });

  it('a lost Atomics.waitAsync wake-up does not hang the commit: the wake check answers it, once', async () => {
    // Seen on Node 20 (bench, 64 writers): the worker answered (DONE_SEQ = REQ_SEQ) and the main thread
    // slept in epoll forever. Simulated here by a waitAsync whose promise never settles, for the commits
    // chosen below; before the wake check, those commits (and every one queued behind) never settled.
    const file = path.join(dir, 'lost-wakeup');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    const real = Atomics.waitAsync;
    let calls = 0;
    const lose = new Set([1, 3]);
    (Atomics as { waitAsync: unknown }).waitAsync = (...args: Parameters<typeof Atomics.waitAsync>) => {
      calls++;
      const result = real(...args);
      if (!lose.has(calls)) return result;
      // A wake-up that never comes; async: true like a real pending wait.
      return { async: true, value: new Promise<'ok'>(() => {}) };
    };
    try {
      await w.ready;
      const settled = Promise.all([
        w.commit(fd, file, [sharedBytes('aa')], 0, 'fdatasync'),
        w.commit(fd, file, [sharedBytes('bb')], 2, 'fdatasync'),
        w.commit(fd, file, [sharedBytes('cc')], 4, 'fdatasync'),
      ]);
      expect(await settledWithin(settled, 5_000)).toMatchObject({ state: 'resolved' });
      expect(fs.readFileSync(file).toString()).toBe('aabbcc');
      expect(w.lostWakeupsCount).toBe(lose.size);
      // A late wake-up for an answer already handled changes nothing: the next commit is its own.
      await w.commit(fd, file, [sharedBytes('dd')], 6, 'fdatasync');
      expect(fs.readFileSync(file).toString()).toBe('aabbccdd');
    } finally {
      (Atomics as { waitAsync: unknown }).waitAsync = real;
      fs.closeSync(fd);
      await w.terminate();
    }
  });

  it('sequence numbers wrap in their int32 words: commits before, across and after 2^31 all settle', async () => {
    // Before the fix, #seq grew past 2^31 - 1 while the worker stored it as -2^31: the answer never
    // matched, and that commit and every one behind it hung (about 1-25 days of uptime at 1-30k commits/s).
    const file = path.join(dir, 'wrap');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker({ firstSeq: 2 ** 31 - 3 });
    try {
      const all = Promise.all(Array.from({ length: 8 }, (_, i) => w.commit(fd, file, [sharedBytes(String(i))], i, 'fdatasync')));
      expect(await settledWithin(all, 5_000)).toMatchObject({ state: 'resolved' });
      expect(fs.readFileSync(file).toString()).toBe('01234567');
    } finally {
      fs.closeSync(fd);
      await w.terminate();
    }
  });

  it('terminate() settles the commit in flight only once the thread has stopped: its writev has returned by then', async () => {
    const file = path.join(dir, 'terminate-in-flight');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    try {
      await w.ready;
      // 128 MiB in one writev: tens of milliseconds inside the call, where terminate() cannot stop it;
      // polled ('poll', as the WAL's default 'auto' does while busy): a poll used to see the worker dead at once.
      const big = new Uint8Array(new SharedArrayBuffer(128 << 20)).fill(3);
      let sizeAtSettle = -1;
      const settled = w.commit(fd, file, [big], 0, 'fdatasync', 'poll').then(
        () => 'resolved',
        (err: Error) => err.message,
      ).finally(() => {
        sizeAtSettle = fs.fstatSync(fd).size;
      });
      // The thread is inside its writev once the file has grown (the call fills pages one by one).
      const deadline = Date.now() + 10_000;
      while (fs.fstatSync(fd).size === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      expect(fs.fstatSync(fd).size).toBeGreaterThan(0);
      const terminated = w.terminate();
      await expect(w.commit(fd, file, [sharedBytes('x')], 0, 'fdatasync')).rejects.toThrow(/^flushpoint commit worker terminated/);
      await terminated;
      const outcome = await settled;
      expect(['resolved', 'flushpoint commit worker terminated']).toContain(outcome);
      // Settled only after the thread left its writev: the file holds every byte of it by then (the
      // descriptor could otherwise be closed, and reused, while the call still writes through it).
      expect(sizeAtSettle).toBe(big.byteLength);
      await expect(w.commit(fd, file, [sharedBytes('y')], 0, 'fdatasync')).rejects.toThrow(/^flushpoint commit worker terminated/);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('terminate() with a commit in flight whose wake-up is lost: the commit still settles', async () => {
    const file = path.join(dir, 'terminate-lost');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    const real = Atomics.waitAsync;
    try {
      await w.ready;
      (Atomics as { waitAsync: unknown }).waitAsync = (...args: Parameters<typeof Atomics.waitAsync>) => {
        const result = real(...args);
        if (!result.async) return result;
        return { async: true, value: new Promise<'ok'>(() => {}) }; // every wake-up lost
      };
      const big = new Uint8Array(new SharedArrayBuffer(16 << 20)).fill(2);
      const outcome = settledWithin(w.commit(fd, file, [big], 0, 'fdatasync'), 5_000);
      await w.terminate();
      const got = await outcome;
      expect(got).toMatchObject({ state: 'rejected' });
      expect(((got as { reason: Error }).reason).message).toMatch(/^flushpoint commit worker terminated/);
    } finally {
      (Atomics as { waitAsync: unknown }).waitAsync = real;
      fs.closeSync(fd);
    }
  });

  /** Runs `body` with a ready worker and a new file, counting Atomics.waitAsync calls meanwhile; then no poll may be left. */
  async function withCountedWaits(name: string, body: (w: IoWorker, fd: number, file: string, waits: () => number) => Promise<void>, options: IoWorkerOptions = {}): Promise<void> {
    const file = path.join(dir, name);
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker(options);
    const real = Atomics.waitAsync;
    let waits = 0;
    try {
      await w.ready;
      (Atomics as { waitAsync: unknown }).waitAsync = (...args: Parameters<typeof Atomics.waitAsync>) => {
        waits++;
        return real(...args);
      };
      await body(w, fd, file, () => waits);
      await new Promise((r) => setImmediate(r));
      expect(process.getActiveResourcesInfo().filter((k) => k === 'Immediate'), 'no poll left behind').toEqual([]);
    } finally {
      (Atomics as { waitAsync: unknown }).waitAsync = real;
      fs.closeSync(fd);
      await w.terminate();
    }
  }

  it("wait 'poll': commits settle with no Atomics.waitAsync at all, timers keep firing meanwhile, and the polling ends with them", () =>
    withCountedWaits('poll', async (w, fd, file, waits) => {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const big = new Uint8Array(new SharedArrayBuffer(8 << 20)).fill(5);
      for (let i = 0; i < 4; i++) await w.commit(fd, file, [big], i * big.byteLength, 'fdatasync', 'poll');
      await Promise.all(Array.from({ length: 8 }, (_, i) => w.commit(fd, file, [sharedBytes(String(i))], 4 * big.byteLength + i, 'fdatasync', 'poll')));
      clearInterval(timer);
      expect(waits(), 'no waitAsync in poll mode').toBe(0);
      expect(ticks, 'the loop served its timers during 32 MiB of commits').toBeGreaterThan(2);
      expect(fs.readFileSync(file).subarray(4 * big.byteLength).toString()).toBe('01234567');
    }));

  it("wait 'auto': commits sent back to back are polled and keep the worker awake for the next; one after an idle gap sleeps; 'sleep' never polls nor spins", () =>
    withCountedWaits('auto', async (w, fd, file, waits) => {
      // Commits overwrite allocated blocks (no journal commit in their fdatasync): quick, as a WAL's are.
      fs.writeSync(fd, Buffer.alloc(64 * 1024));
      fs.fsyncSync(fd);
      // The first commit follows no answer at all: it sleeps. The 15 queued behind it are sent the
      // moment the one before is answered: polled, and each asks the worker to look for the next.
      await Promise.all(Array.from({ length: 16 }, (_, i) => w.commit(fd, file, [sharedBytes(String.fromCharCode(97 + i))], i, 'fdatasync', 'auto')));
      expect(fs.readFileSync(file).subarray(0, 16).toString()).toBe('abcdefghijklmnop');
      // On a quiet machine: 1 wait, 15 polled. Under load the main thread can be preempted for more than
      // COMMIT_POLL_IDLE_MS_MAX between an answer and the next send, and that commit sleeps (one run with a
      // disk writer and a CPU hog beside it: 13 polled, 3 waits): every commit is either polled or waited
      // for, once, and most back-to-back ones are polled.
      expect(w.pollsCutCount).toBe(0);
      expect(waits() - w.earlyWakeupsCount).toBe(16 - w.polledCount);
      expect(w.polledCount).toBeGreaterThanOrEqual(10);
      expect(w.polledCount).toBeLessThanOrEqual(15);
      // Each polled one asked the worker to stay awake after answering it, and the worker found the next
      // request awake: each time on a quiet machine; under CPU contention a thread preempted past its
      // wait sleeps instead (with a 5 ms wait, 12 of 14 with two CPU hogs running, 2 of 14 with a disk
      // writer beside them: hence 30 ms here), never more than 14.
      expect(w.spinAskedCount).toBe(w.polledCount);
      expect(w.pickedAwakeCount).toBeGreaterThanOrEqual(w.polledCount / 2);
      expect(w.pickedAwakeCount).toBeLessThanOrEqual(14);
      // After an idle gap longer than COMMIT_POLL_IDLE_MS_MAX (and than the worker's wait) the next
      // commit sleeps again, asks no spin.
      // (A wait again after an early wake-up, another commit's late notify, is not a commit's own.)
      const counts = (): number[] => [waits() - w.earlyWakeupsCount, w.polledCount, w.spinAskedCount, w.pickedAwakeCount];
      const before = counts();
      await new Promise((r) => setTimeout(r, 60));
      await w.commit(fd, file, [sharedBytes('q')], 16, 'fdatasync', 'auto');
      expect(counts()).toEqual([(before[0] as number) + 1, ...before.slice(1)]);
      // 'sleep' keeps the old way whatever the gap: the worker is never asked to stay awake.
      await Promise.all(Array.from({ length: 4 }, (_, i) => w.commit(fd, file, [sharedBytes('r')], 17 + i, 'fdatasync', 'sleep')));
      expect(counts()).toEqual([(before[0] as number) + 5, ...before.slice(1)]);
      // (The bound on slow commits is lifted and the worker's wait is 30 ms, so the counts do not depend
      // on this disk's sync times or this machine's load that moment; the next tests keep the defaults.)
    }, { pollAverageMsMax: Number.POSITIVE_INFINITY, pollMsMax: Number.POSITIVE_INFINITY, spinUs: 30_000 }));

  it("wait 'auto': a commit that takes longer than COMMIT_POLL_MS_MAX is polled no longer than that, and the next is not polled at all (the loop sleeps through slow syncs)", () =>
    withCountedWaits('auto-slow', async (w, fd, file, waits) => {
      await w.commit(fd, file, [sharedBytes('warm')], 0, 'fdatasync', 'auto');
      // One small commit, then 4 of 32 MiB (tens of ms each here), all queued back to back.
      const big = new Uint8Array(new SharedArrayBuffer(32 << 20)).fill(7);
      const elu0 = performance.eventLoopUtilization();
      await Promise.all([
        w.commit(fd, file, [sharedBytes('s')], 4, 'fdatasync', 'auto'),
        ...Array.from({ length: 4 }, (_, i) => w.commit(fd, file, [big], 8 + i * big.byteLength, 'fdatasync', 'auto')),
      ]);
      const elu = performance.eventLoopUtilization(elu0);
      // The first big commit may be polled (if the small one was quick), for at most COMMIT_POLL_MS_MAX;
      // once the commits' moving average is past COMMIT_POLL_MS_MAX the rest sleep. Without the bound
      // all four were polled to the end.
      expect(w.polledCount).toBeLessThanOrEqual(3); // the small one and at most two big ones
      expect(w.pollsCutCount).toBeLessThanOrEqual(2);
      expect(waits()).toBeGreaterThanOrEqual(3 + w.pollsCutCount);
      expect(elu.utilization, `event-loop utilization over ${elu.idle.toFixed(0)} ms idle, ${elu.active.toFixed(0)} ms active`).toBeLessThan(0.5);
      expect(fs.readFileSync(file).subarray(8 + 3 * big.byteLength, 8 + 3 * big.byteLength + 4)).toEqual(Buffer.from([7, 7, 7, 7]));
    }));

  it("wait 'auto': a poll that reaches its bound sleeps for the rest of its commit, resolves once, only after the worker's answer, woken without the wake check", () =>
    withCountedWaits('auto-cut', async (w, fd, file, waits) => {
      fs.writeSync(fd, Buffer.alloc(64 * 1024));
      fs.fsyncSync(fd);
      // Made first: filling it takes longer than COMMIT_POLL_IDLE_MS_MAX, an idle gap if done between commits.
      const big = new Uint8Array(new SharedArrayBuffer(64 << 20)).fill(9);
      const at = 1 << 20;
      for (let i = 0; i < 8; i++) await w.commit(fd, file, [sharedBytes('a')], i, 'fdatasync', 'auto');
      // A quick commit, a 64 MiB one (tens of ms here: its copy alone takes over 5 ms) polled for 1 ms
      // and then slept for, and one more behind it, all queued back to back.
      const lastByteAtResolve: number[] = [];
      const before = { waits: waits(), cut: w.pollsCutCount, awake: w.pickedAwakeCount };
      await Promise.all([
        w.commit(fd, file, [sharedBytes('b')], 8, 'fdatasync', 'auto'),
        w.commit(fd, file, [big], at, 'fdatasync', 'auto').then(() => {
          const b = Buffer.alloc(1);
          fs.readSync(fd, b, 0, 1, at + big.byteLength - 1);
          lastByteAtResolve.push(b[0] as number);
        }),
        w.commit(fd, file, [sharedBytes('c')], 9, 'fdatasync', 'auto'),
      ]);
      // Resolved once, with its last byte written (a cut that resolved the commit would read 0 here).
      expect(lastByteAtResolve).toEqual([9]);
      // Its poll was cut (so may the quick ones' be on a loaded machine, where a 1-byte commit can take
      // over 1 ms).
      expect(w.pollsCutCount - before.cut, 'polls cut').toBeGreaterThanOrEqual(1);
      expect(w.pollsCutCount - before.cut, 'polls cut').toBeLessThanOrEqual(3);
      // The cut commit waited with Atomics.waitAsync (so may 'b' or 'c', after an idle gap on a loaded machine).
      expect(waits() - before.waits).toBeGreaterThanOrEqual(1);
      expect(waits() - before.waits).toBeLessThanOrEqual(3);
      expect(w.lostWakeupsCount, 'woken by its waitAsync, not rescued by the wake check').toBe(0);
      // Each polled commit here asks the worker to stay awake 50 ms after it (spinUs below): 'b' and the
      // big one were found awake (after the last 'a', after 'b'); 'c' was not, since the cut told the
      // worker to sleep after the big one. A worker that ignored the cut would find all three.
      expect(w.pickedAwakeCount - before.awake, 'requests found awake').toBeLessThanOrEqual(2);
      expect(fs.readFileSync(file).subarray(8, 10).toString()).toBe('bc');
    }, { pollAverageMsMax: Number.POSITIVE_INFINITY, pollMsMax: 1, spinUs: 50_000 }));

  it('a worker asked to stay awake answers requests that come during its wait and after it, and then sleeps (no CPU spent while idle)', async () => {
    const file = path.join(dir, 'spin');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    try {
      await w.ready;
      let at = 0;
      const next = (): Promise<void> => w.commit(fd, file, [sharedBytes('x')], at++, 'fdatasync', 'poll');
      // Back to back (within the wait), then after gaps of 0.05 to 3 ms (around and past its end).
      for (let i = 0; i < 50; i++) await next();
      for (const gapMs of [0.05, 0.1, 0.2, 0.5, 1, 3]) {
        for (let i = 0; i < 5; i++) {
          const until = performance.now() + gapMs;
          while (performance.now() < until);
          await next();
        }
      }
      // Back to back again, so the last answer asks the worker to stay awake for one more.
      const asked = w.spinAskedCount;
      for (let i = 0; i < 5; i++) await next();
      expect(w.spinAskedCount).toBeGreaterThan(asked);
      expect(fs.readFileSync(file).toString()).toBe('x'.repeat(85));
      // Idle now: the worker's wait ends within COMMIT_WORKER_SPIN_US, so the process spends next to
      // no CPU over 200 ms (a worker that kept looking would spend all of it).
      await new Promise((r) => setTimeout(r, 5));
      const before = process.cpuUsage();
      await new Promise((r) => setTimeout(r, 200));
      const spent = process.cpuUsage(before);
      expect((spent.user + spent.system) / 1000, 'ms of CPU while idle').toBeLessThan(60);
    } finally {
      fs.closeSync(fd);
      await w.terminate();
    }
  });

  it("wait 'poll': terminate() with a commit in flight rejects it and stops the polling", async () => {
    const file = path.join(dir, 'poll-terminate');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    try {
      await w.ready;
      const big = new Uint8Array(new SharedArrayBuffer(16 << 20)).fill(2);
      const outcome = settledWithin(w.commit(fd, file, [big], 0, 'fdatasync', 'poll'), 5_000);
      await w.terminate();
      const got = await outcome;
      expect(got).toMatchObject({ state: 'rejected' });
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(process.getActiveResourcesInfo().filter((k) => k === 'Immediate'), 'no poll left behind').toEqual([]);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('the pool drops a dead worker: commits after it died go to a new worker, not rejected forever', async () => {
    // The default NodeFileSystem's pool lives as long as the process: before the fix, once its worker
    // had died while idle, every later commit (a WAL reopened after the failure) went to it and failed.
    const file = path.join(dir, 'dead-worker');
    const fd = fs.openSync(file, 'w+');
    const created: IoWorker[] = [];
    const pool = new IoWorkerPool(1, {}, (o) => {
      const w = new IoWorker(o);
      created.push(w);
      return w;
    });
    try {
      await pool.commit(fd, file, [sharedBytes('a')], 0, 'fdatasync');
      await (created[0] as IoWorker).terminate(); // the worker dies while idle
      await pool.commit(fd, file, [sharedBytes('b')], 1, 'fdatasync');
      expect(created.length).toBe(2);
      expect(fs.readFileSync(file).toString()).toBe('ab');
    } finally {
      fs.closeSync(fd);
      await pool.terminate();
    }
  });

  it('a worker started for the pool\'s growth that cannot start (EMFILE) fails no commit: they go to the live worker (EMFILE review)', { timeout: 30_000 }, async () => {
    // Before: the commit that made the pool grow went to the new worker, and its start failure
    // (ECOMMITWORKER) failed the commit, and so the WAL for good, with the first worker healthy.
    const file = path.join(dir, 'grow-fails');
    const fd = fs.openSync(file, 'w+');
    const created: IoWorker[] = [];
    const pool = new IoWorkerPool(2, {}, (o) => {
      // The second cannot start, as under a descriptor limit (asynchronously, like EMFILE).
      const w = new IoWorker(created.length === 0 ? o : { ...o, execArgv: ['--require=/nonexistent/flushpoint-preload.cjs'] });
      created.push(w);
      return w;
    });
    try {
      await pool.commit(fd, file, [sharedBytes('a')], 0, 'fdatasync'); // the first worker runs
      // Two at once: the second finds the first busy and makes the pool grow.
      await Promise.all([pool.commit(fd, file, [sharedBytes('b')], 1, 'fdatasync'), pool.commit(fd, file, [sharedBytes('c')], 2, 'fdatasync')]);
      expect(created.length).toBe(2);
      await expect(created[1]?.ready).rejects.toMatchObject({ code: 'ECOMMITWORKER' });
      for (let i = 0; i < 8; i++) await Promise.all([pool.commit(fd, file, [sharedBytes('d')], 3 + 2 * i, 'fdatasync'), pool.commit(fd, file, [sharedBytes('e')], 4 + 2 * i, 'fdatasync')]);
      expect(fs.readFileSync(file).toString()).toBe('abc' + 'de'.repeat(8));
      expect(created.length).toBeGreaterThanOrEqual(3); // it tried again once the failed one was dropped
    } finally {
      fs.closeSync(fd);
      await pool.terminate();
    }
  });

  it('reports the system call error with its code and the path, and keeps working after it', async () => {
    const file = path.join(dir, 'c');
    fs.writeFileSync(file, 'x');
    const readOnly = fs.openSync(file, 'r');
    const w = new IoWorker();
    try {
      const err = (await w.commit(readOnly, file, [sharedBytes('nope')], 0, 'fdatasync').catch((e: unknown) => e)) as NodeJS.ErrnoException;
      expect(err.code).toBe('EBADF');
      expect(err.path).toBe(file);
      const rw = fs.openSync(file, 'r+');
      await w.commit(rw, file, [sharedBytes('ok')], 0, 'fdatasync');
      fs.closeSync(rw);
      expect(fs.readFileSync(file).toString()).toBe('ok');
    } finally {
      fs.closeSync(readOnly);
      await w.terminate();
    }
  });
});

describe('commit worker: one commit over many distinct shared buffers (issue 8 item 1)', () => {
  // The worker used to forget every registered buffer once it held 64, while one request could name up
  // to 256: a commit over 64..256 distinct buffers re-registered and resent forever (a livelock).
  for (const buffersCount of [1, 63, 64, 65, 256, 1000]) {
    it(`${buffersCount} distinct shared buffers in one commit complete, in order`, { timeout: 20_000 }, async () => {
      const file = path.join(dir, `many-${buffersCount}`);
      const fd = fs.openSync(file, 'w+');
      const w = new IoWorker();
      try {
        const parts = Array.from({ length: buffersCount }, (_, i) => sharedBytes(String.fromCharCode(65 + (i % 26)) + String.fromCharCode(97 + (i % 23))));
        await w.commit(fd, file, parts, 0, 'fdatasync');
        // And again, the same buffers plus as many new ones: the registry must make room without looping.
        const more = Array.from({ length: buffersCount }, (_, i) => sharedBytes(String.fromCharCode(48 + (i % 10))));
        await w.commit(fd, file, [...more, ...parts].slice(0, Math.max(buffersCount, 2)), buffersCount * 2, 'fdatasync');
        const got = fs.readFileSync(file).toString();
        expect(got.slice(0, buffersCount * 2)).toBe(parts.map((p) => Buffer.from(p).toString()).join(''));
        const second = [...more, ...parts].slice(0, Math.max(buffersCount, 2));
        expect(got.slice(buffersCount * 2)).toBe(second.map((p) => Buffer.from(p).toString()).join(''));
      } finally {
        fs.closeSync(fd);
        await w.terminate();
      }
    });
  }
});

describe('commit worker registry past its bound', () => {
  it('commits naming 256 buffers each, over more distinct buffers than the registry holds, all complete', { timeout: 20_000 }, async () => {
    const file = path.join(dir, 'registry');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    try {
      const all = Array.from({ length: 5 * 256 }, (_, i) => sharedBytes(String.fromCharCode(65 + (i % 26))));
      let expected = '';
      let at = 0;
      // Windows overlapping the previous one by half: some ids are reused, older ones must be evicted.
      for (let start = 0; start + 256 <= all.length; start += 128) {
        const parts = all.slice(start, start + 256);
        await w.commit(fd, file, parts, at, 'fdatasync');
        expected += parts.map((p) => Buffer.from(p).toString()).join('');
        at += 256;
      }
      expect(fs.readFileSync(file).toString()).toBe(expected);
    } finally {
      fs.closeSync(fd);
      await w.terminate();
    }
  });
});

describe('a WAL commit over many staging chunks completes (issue 8 item 1)', () => {
  it('the reproduction: default options, one record (synced), then 70 appends of 600 KiB in one tick, then sync()', { timeout: 30_000 }, async () => {
    const fsys = new NodeFileSystem();
    const wal = await Wal.open({ dir: path.join(dir, 'wal-repro'), fs: fsys });
    try {
      wal.append(new Uint8Array([1]));
      await wal.sync(); // the segment header is now written: the next batch is all shared memory
      const payload = new Uint8Array(600 * 1024).fill(7);
      for (let i = 0; i < 70; i++) wal.append(payload);
      expect(await wal.sync()).toBe(71);
      expect(wal.durableLsn).toBe(71);
    } finally {
      await wal.close();
      await fsys.dispose();
    }
  });

  for (const buffersCount of [1, 63, 64, 65, 256, 1000]) {
    it(`one batch over ${buffersCount} staging chunks (stagingChunkBytes 4 KiB) commits and reads back`, { timeout: 30_000 }, async () => {
      const fsys = new NodeFileSystem();
      const wal = await Wal.open({ dir: path.join(dir, `wal-chunks-${buffersCount}`), fs: fsys, stagingChunkBytes: 4096, segmentSizeBytes: 64 * 1024 * 1024 });
      try {
        wal.append(new Uint8Array([0]));
        await wal.sync(); // the segment header is written: the next batch is shared chunks only
        // A 3 KiB payload takes a record of ~3 KiB: one per 4 KiB chunk, so one chunk per record.
        for (let i = 1; i <= buffersCount; i++) wal.append(new Uint8Array(3 * 1024).fill(i % 251));
        expect(await wal.sync()).toBe(buffersCount + 1);
        let n = 0;
        for await (const r of wal.read()) {
          expect(r.payload[0]).toBe(n % 251);
          n++;
        }
        expect(n).toBe(buffersCount + 1);
      } finally {
        await wal.close();
        await fsys.dispose();
      }
    });
  }
});
