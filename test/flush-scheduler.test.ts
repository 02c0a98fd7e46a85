import { describe, expect, it } from 'vitest';
import { FlushScheduler, checkWaitOptions, type FlushSchedulerOptions, type FlushSource } from '../wal/flush-scheduler.js';
import { FlushpointError } from '../core/errors.js';
import { seededRandom } from '../core/random.js';
import { ManualClock, settle } from './helpers/manual-clock.js';
import { seedList } from './helpers/seeds.js';

/** A flush source whose writes the test completes or fails by hand. */
class ManualSource implements FlushSource {
  lastLsn = 0;
  /** When set, a flush may freeze short of lastLsn (as the backup sink's retries do). */
  partial: (() => number) | null = null;
  durable = 0;
  inFlight: { target: number; resolve: () => void; reject: (e: Error) => void } | null = null;
  writes: number[] = [];
  freeze(): number {
    if (this.partial && this.lastLsn > this.durable) return Math.min(this.lastLsn, this.durable + 1 + this.partial());
    return this.lastLsn;
  }
  write(target: number): Promise<void> {
    if (this.inFlight) throw new Error('two writes in flight');
    this.writes.push(target);
    return new Promise<void>((resolve, reject) => {
      this.inFlight = { target, resolve, reject };
    });
  }
  complete(): void {
    const f = this.inFlight;
    if (!f) throw new Error('nothing in flight');
    this.inFlight = null;
    this.durable = f.target;
    f.resolve();
  }
  fail(err: Error): void {
    const f = this.inFlight;
    if (!f) throw new Error('nothing in flight');
    this.inFlight = null;
    f.reject(err);
  }
}

function makeScheduler(source: ManualSource, clock: ManualClock, sticky = true, more: Partial<FlushSchedulerOptions> = {}): FlushScheduler {
  return new FlushScheduler({
    source,
    durableLsn: 0,
    sticky,
    what: 'durable',
    clock,
    failureError: (cause) => new FlushpointError('WAL_FAILED', 'failed', { cause }),
    ...more,
  });
}

describe('FlushScheduler', () => {
  it('a listener (onFlushed) that throws: the flush it reports still releases its waiters, and the next flush still runs', async () => {
    // Before, onFlushed ran before the release: a throw left the completed flush's waiters waiting for good.
    const clock = new ManualClock();
    const src = new ManualSource();
    let throws = true;
    const s = makeScheduler(src, clock, true, {
      onFlushed: () => {
        if (throws) throw new Error('listener bug');
      },
    });
    // The throw surfaces as an uncaught exception from the next tick (as from any emitter that emits
    // from I/O), never an unhandled rejection: both caught here.
    const saved = process.listeners('unhandledRejection');
    const savedUncaught = process.listeners('uncaughtException');
    process.removeAllListeners('unhandledRejection');
    process.removeAllListeners('uncaughtException');
    const unhandled: unknown[] = [];
    const uncaught: unknown[] = [];
    process.on('unhandledRejection', (e) => void unhandled.push(e));
    process.on('uncaughtException', (e) => void uncaught.push(e));
    try {
      src.lastLsn = 3;
      const first = s.waitShared(3);
      clock.runDeferred();
      src.lastLsn = 5; // appended while the flush runs: rides the next one
      const second = s.waitShared(5);
      src.complete();
      expect(await first).toBe(3);
      await settle();
      throws = false;
      clock.runDeferred();
      expect(src.inFlight?.target).toBe(5);
      src.complete();
      expect(await second).toBe(5);
      await settle();
      expect(uncaught.map((e) => (e as Error).message)).toEqual(['listener bug']);
      expect(unhandled).toEqual([]);
    } finally {
      process.removeAllListeners('unhandledRejection');
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('unhandledRejection', l);
      for (const l of savedUncaught) process.on('uncaughtException', l);
    }
  });

  it('enforces waitersCountMax on every wait path: shared, keyed, next and join', async () => {
    // Regression (issue 8/7): only wait() counted; the shared path every plain waitDurable takes grew without bound.
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock, true, { waitersCountMax: 2 });
    src.lastLsn = 3;
    const held = [s.waitShared(1), s.waitShared(2)];
    expect(s.waitersCount).toBe(2);
    await expect(s.waitShared(3)).rejects.toThrow(/waitersCountMax 2/);
    await expect(s.wait(3)).rejects.toBeInstanceOf(RangeError);
    await expect(s.waitNext()).rejects.toBeInstanceOf(RangeError);
    await expect(s.join()).rejects.toBeInstanceOf(RangeError);
    expect(s.waitersCount, 'a refused waiter is not counted').toBe(2);
    clock.runDeferred();
    src.complete();
    expect(await Promise.all(held)).toEqual([3, 3]);
    // Once they leave, there is room again on every path.
    src.lastLsn = 4;
    const next = s.waitNext();
    const keyed = s.wait(4);
    clock.runDeferred();
    src.complete();
    expect(await Promise.all([next, keyed])).toEqual([4, 4]);
  });

  it('timeoutMs: Infinity arms no timer; finite values above 2^31 - 1 are refused by checkWaitOptions', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    src.lastLsn = 1;
    const forever = s.wait(1, { timeoutMs: Number.POSITIVE_INFINITY });
    const joined = s.join({ timeoutMs: Number.POSITIVE_INFINITY });
    clock.runDeferred();
    clock.advance(1e15);
    src.complete();
    expect(await forever).toBe(1);
    expect(await joined).toMatchObject({ toLsn: 1 });
    expect(() => checkWaitOptions({ timeoutMs: Number.POSITIVE_INFINITY })).not.toThrow();
    expect(() => checkWaitOptions({ timeoutMs: 2 ** 31 - 1 })).not.toThrow();
    expect(() => checkWaitOptions({ timeoutMs: 2 ** 31 })).toThrow(RangeError);
    expect(() => checkWaitOptions({ timeoutMs: Number.NaN })).toThrow(RangeError);
    expect(() => checkWaitOptions({ timeout: 5 } as never)).toThrow(/unknown option 'timeout'/);
  });

  it('an already-aborted signal rejects with its reason even when the target is already reached', async () => {
    const s = makeScheduler(new ManualSource(), new ManualClock());
    await expect(s.wait(0, { signal: AbortSignal.abort('why') })).rejects.toBe('why');
  });

  it('runs one flush at a time and gathers everything requested meanwhile into one trailing flush', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    src.lastLsn = 1;
    const w1 = s.wait(1);
    clock.runDeferred();
    expect(src.writes).toEqual([1]);
    const later: Promise<number>[] = [];
    for (let i = 2; i <= 100; i++) {
      src.lastLsn = i;
      later.push(s.wait(i));
    }
    clock.runDeferred();
    expect(src.writes).toEqual([1]); // still one in flight
    src.complete();
    expect(await w1).toBe(1);
    await settle();
    clock.runDeferred();
    expect(src.writes).toEqual([1, 100]);
    src.complete();
    expect(await Promise.all(later)).toEqual(later.map(() => 100));
    await settle();
    clock.runDeferred();
    expect(src.writes).toEqual([1, 100]); // nothing more to do: no third flush
    expect(s.flushesRun).toBe(2);
  });

  it('does not release a waiter before the flush covering it returns, and releases in LSN order', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    const order: number[] = [];
    src.lastLsn = 3;
    const ws = [3, 1, 2].map((lsn) => s.wait(lsn).then(() => order.push(lsn)));
    clock.runDeferred();
    await settle();
    expect(order).toEqual([]);
    expect(s.durableLsn).toBe(0);
    src.complete();
    await Promise.all(ws);
    expect(order).toEqual([1, 2, 3]);
  });

  it('times out one waiter with FLUSH_TIMEOUT carrying the reached LSN; the flush goes on for the rest', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    src.lastLsn = 5;
    const impatient = s.wait(5, { timeoutMs: 10 });
    const patient = s.wait(5);
    clock.runDeferred();
    clock.advance(10);
    const err = await impatient.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlushpointError);
    expect((err as FlushpointError).code).toBe('FLUSH_TIMEOUT');
    expect((err as FlushpointError).reachedLsn).toBe(0);
    src.complete();
    expect(await patient).toBe(5);
  });

  it('rejects an aborted waiter with the signal reason, alone', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    src.lastLsn = 2;
    const ac = new AbortController();
    const a = s.wait(2, { signal: ac.signal });
    const b = s.wait(2);
    clock.runDeferred();
    const reason = new Error('operator gave up');
    ac.abort(reason);
    await expect(a).rejects.toBe(reason);
    src.complete();
    expect(await b).toBe(2);
    await expect(s.wait(3, { signal: AbortSignal.abort('x') })).rejects.toBe('x');
  });

  it('delivers a sticky failure to every waiter, present and future, and never flushes again', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    src.lastLsn = 1;
    const a = s.wait(1);
    clock.runDeferred();
    src.lastLsn = 2;
    const b = s.wait(2);
    const next = s.waitNext();
    const cause = Object.assign(new Error('EIO'), { code: 'EIO' });
    src.fail(cause);
    for (const p of [a, b, next]) {
      const e = (await p.catch((x: unknown) => x)) as FlushpointError;
      expect(e.code).toBe('WAL_FAILED');
      expect(e.cause).toBe(cause);
    }
    await expect(s.wait(2)).rejects.toMatchObject({ code: 'WAL_FAILED' });
    s.request();
    clock.runDeferred();
    expect(src.writes).toEqual([1]);
  });

  it('non-sticky: a failed flush rejects its waiters, and a later flush can succeed', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock, false);
    src.lastLsn = 1;
    const a = s.wait(1);
    clock.runDeferred();
    src.fail(new Error('EIO'));
    await expect(a).rejects.toMatchObject({ code: 'WAL_FAILED' });
    const b = s.wait(1);
    clock.runDeferred();
    src.complete();
    expect(await b).toBe(1);
  });

  it('join() honours a timeout and an abort for that caller only; the flush and other joiners go on', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    src.lastLsn = 3;
    s.request();
    clock.runDeferred();
    const timed = s.join({ timeoutMs: 5 });
    const ac = new AbortController();
    const aborted = s.join({ signal: ac.signal });
    const patient = s.join();
    clock.advance(5);
    await expect(timed).rejects.toMatchObject({ code: 'FLUSH_TIMEOUT', reachedLsn: 0 });
    ac.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    src.complete();
    expect(await patient).toMatchObject({ fromLsn: 1, toLsn: 3 });
  });

  it('join() returns the running flush result, or runs one when idle', async () => {
    const clock = new ManualClock();
    const src = new ManualSource();
    const s = makeScheduler(src, clock);
    src.lastLsn = 4;
    s.request();
    clock.runDeferred();
    const j = s.join();
    src.lastLsn = 9;
    src.complete();
    expect(await j).toMatchObject({ fromLsn: 1, toLsn: 4 });
    const j2 = s.join();
    await settle();
    clock.runDeferred();
    src.complete();
    expect(await j2).toMatchObject({ fromLsn: 5, toLsn: 9 });
  });
});

/**
 * Deterministic simulation: random appends, waiters with timeouts and aborts, completions and failures,
 * driven by a seeded random source and a manual clock. Every failure prints its seed; replay one with
 * FLUSHPOINT_SEED=<n>. Three variants: the plain scheduler (flushes may freeze short of the last LSN,
 * as the backup sink's do); pipelined ('always'), every append calling request(lsn) as Wal.append does,
 * so flushes start inside request() and inside a completion; and pipelined with an onFlushed listener
 * (the WAL's 'durable' event) that appends and waits too. The last two came from the review of the
 * pipelining change: a listener's append started a flush inside the completion of the one before, and
 * the scheduler hung.
 */
const SIMULATION_VARIANTS = [
  { name: 'plain', pipeline: 'off', listenerAppends: false },
  { name: "pipelined ('always'), request(lsn) on every append", pipeline: 'always', listenerAppends: false },
  { name: "pipelined ('always'), and an onFlushed listener that appends", pipeline: 'always', listenerAppends: true },
] as const;

for (const variant of SIMULATION_VARIANTS) describe(`FlushScheduler simulation: ${variant.name}`, () => {
  const seeds = seedList(200);

  async function simulate(seed: number): Promise<void> {
    const rnd = seededRandom(seed);
    const clock = new ManualClock();
    const src = new ManualSource();
    const sticky = rnd.int(2) === 0;
    let onFlushed = (): void => {};
    const s = makeScheduler(src, clock, sticky, { pipeline: variant.pipeline, onFlushed: () => onFlushed() });
    // The WAL always freezes everything it has: partial flushes only in the plain variant.
    const partialFlushes = variant.pipeline === 'off' && rnd.int(3) === 0;
    if (partialFlushes) src.partial = () => rnd.int(8);
    interface W { shared?: boolean; immediate?: boolean; target: number; outcome: 'pending' | 'resolved' | 'timeout' | 'aborted' | 'failed'; value?: number; ac?: AbortController; order?: number }
    const waiters: W[] = [];
    let resolutions = 0;
    let failedAt = -1;
    const append = (): void => {
      src.lastLsn += 1;
      if (variant.pipeline !== 'off') s.request(src.lastLsn);
    };
    if (variant.listenerAppends) {
      onFlushed = () => {
        if (rnd.int(3) !== 0) return;
        append();
        if (rnd.int(2) !== 0) return;
        const w: W = { target: src.lastLsn, outcome: 'pending', shared: true, immediate: false };
        waiters.push(w);
        s.waitShared(w.target).then(
          (v) => {
            w.outcome = 'resolved';
            w.value = v;
            w.order = resolutions++;
          },
          () => {
            w.outcome = 'failed';
          },
        );
      };
    }
    for (let step = 0; step < 300; step++) {
      const action = rnd.int(10);
      if (action <= 3) {
        const k = 1 + rnd.int(5);
        for (let i = 0; i < k; i++) append();
        const n = rnd.int(4);
        for (let i = 0; i < n; i++) {
          const w: W = { target: 1 + rnd.int(src.lastLsn), outcome: 'pending' };
          w.immediate = w.target <= s.durableLsn;
          const opts: { timeoutMs?: number; signal?: AbortSignal } = {};
          if (rnd.int(5) === 0) opts.timeoutMs = 1 + rnd.int(20);
          if (rnd.int(5) === 0) {
            w.ac = new AbortController();
            opts.signal = w.ac.signal;
          }
          waiters.push(w);
          const shared = opts.timeoutMs === undefined && opts.signal === undefined && rnd.int(2) === 0;
          w.shared = shared;
          (shared ? s.waitShared(w.target) : s.wait(w.target, opts)).then(
            (v) => {
              w.outcome = 'resolved';
              w.value = v;
              w.order = resolutions++;
            },
            (e: unknown) => {
              w.outcome = e instanceof FlushpointError && e.code === 'FLUSH_TIMEOUT' ? 'timeout' : e instanceof FlushpointError ? 'failed' : 'aborted';
            },
          );
        }
      } else if (action === 4) {
        clock.runDeferred();
      } else if (action <= 6) {
        if (src.inFlight) {
          const target = src.inFlight.target;
          if (rnd.int(30) === 0) {
            src.fail(new Error('injected'));
            failedAt = target;
          } else src.complete();
        }
      } else if (action === 7) {
        clock.advance(rnd.int(10));
      } else if (action === 8) {
        const pending = waiters.filter((w) => w.outcome === 'pending' && w.ac);
        const w = pending[rnd.int(pending.length)];
        w?.ac?.abort(new Error('abort'));
      } else {
        await settle();
      }
      await settle();
      // Invariants after every step (plain checks: this loop runs ~10^5 times).
      for (const w of waiters) {
        if (w.outcome === 'resolved' && ((w.value as number) < w.target || (w.value as number) > s.durableLsn)) {
          throw new Error(`waiter for ${w.target} resolved with ${w.value}, durable ${s.durableLsn}`);
        }
        // A shared waiter rides the first flush that covers its whole group: with flushes that freeze
        // short of the last LSN it may wait one flush longer (never forever: checked at the end).
        if (w.outcome === 'pending' && s.failure === null && w.target <= s.durableLsn && !(w.shared && partialFlushes)) {
          throw new Error(`waiter for ${w.target} still pending at durable ${s.durableLsn}`);
        }
        if (sticky && s.failure && w.outcome === 'pending') throw new Error(`waiter for ${w.target} pending after a sticky failure`);
      }
    }
    // Drain: keep completing until nothing is in flight or deferred.
    for (let i = 0; i < 100 && (src.inFlight || clock.deferredCount > 0); i++) {
      clock.runDeferred();
      if (src.inFlight) src.complete();
      await settle();
    }
    clock.advance(1000);
    await settle();
    for (const w of waiters) expect(w.outcome, `waiter for ${w.target} settled`).not.toBe('pending');
    // Released in LSN order: a waiter with a smaller target never resolves after one with a larger target
    // that was released by an earlier flush.
    // (Shared waiters of one flush resolve together, through one promise: the order is checked among the
    // others, which are released one by one.)
    const resolved = waiters.filter((w) => w.outcome === 'resolved' && !w.immediate && !w.shared).sort((a, b) => (a.order as number) - (b.order as number));
    for (let i = 1; i < resolved.length; i++) {
      const prev = resolved[i - 1] as W;
      const cur = resolved[i] as W;
      if ((cur.value as number) === (prev.value as number)) expect(cur.target).toBeGreaterThanOrEqual(prev.target);
      else expect(cur.value as number).toBeGreaterThan(prev.value as number);
    }
    if (failedAt > 0 && sticky) expect(s.durableLsn).toBeLessThan(failedAt);
  }

  it(`holds its invariants for ${seeds.length} seeds`, async () => {
    for (const seed of seeds) {
      try {
        await simulate(seed);
      } catch (err) {
        throw new Error(`simulation failed with seed ${seed} (replay: FLUSHPOINT_SEED=${seed}): ${(err as Error).message}`, { cause: err });
      }
    }
  });
});
