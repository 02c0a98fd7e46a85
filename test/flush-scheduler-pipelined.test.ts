/**
 * The scheduler's randomized simulation (as in test/flush-scheduler.test.ts), pipelined ('always'): every
 * append calls request(lsn) as Wal.append does, so flushes start inside request() and at a completion;
 * in the second half, the onFlushed listener (the WAL's 'durable' event) appends and waits too. Checks
 * after every step: no waiter resolved below its target or above the durable LSN, none left pending
 * once its target is durable, none pending after a sticky failure; at the end every waiter settled, in
 * LSN order. Written by the review of the pipelining change (docs/decisions.md); a listener that
 * appended started a flush inside the completion of the one before and hung the scheduler.
 */
import { describe, expect, it } from 'vitest';
import { FlushScheduler, type FlushSource } from '../wal/flush-scheduler.js';
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

for (const reentrant of [false, true]) describe(`FlushScheduler simulation, pipeline 'always', request(lsn) on every append${reentrant ? ', onFlushed appends' : ''}`, () => {
  const seeds = seedList(200);

  async function simulate(seed: number): Promise<void> {
    const rnd = seededRandom(seed);
    const clock = new ManualClock();
    const src = new ManualSource();
    const sticky = rnd.int(2) === 0;
    const partialFlushes = false; // the WAL always freezes everything
    // eslint-disable-next-line prefer-const
    let onFlushed: () => void = () => {};
    const s = new FlushScheduler({
      source: src,
      durableLsn: 0,
      sticky,
      what: 'durable',
      clock,
      pipeline: 'always',
      onFlushed: () => onFlushed(),
      failureError: (cause) => new FlushpointError('WAL_FAILED', 'failed', { cause }),
    });
    interface W { shared?: boolean; immediate?: boolean; target: number; outcome: 'pending' | 'resolved' | 'timeout' | 'aborted' | 'failed'; value?: number; ac?: AbortController; order?: number }
    const waiters: W[] = [];
    let resolutions = 0;
    let failedAt = -1;
    const addWaiter = (target: number, shared: boolean): void => {
      const w: W = { target, outcome: 'pending', shared, immediate: target <= s.durableLsn };
      waiters.push(w);
      (shared ? s.waitShared(target) : s.wait(target)).then(
        (v) => { w.outcome = 'resolved'; w.value = v; w.order = resolutions++; },
        (e: unknown) => { w.outcome = e instanceof FlushpointError ? 'failed' : 'aborted'; },
      );
    };
    if (reentrant) {
      onFlushed = () => {
        if (rnd.int(3) !== 0) return;
        src.lastLsn += 1;
        s.request(src.lastLsn); // a 'durable' listener appending, as Wal.append does
        if (rnd.int(2) === 0) addWaiter(src.lastLsn, true);
      };
    }
    for (let step = 0; step < 300; step++) {
      const action = rnd.int(10);
      if (action <= 3) {
        const k = 1 + rnd.int(5);
        for (let i = 0; i < k; i++) s.request(++src.lastLsn); // as Wal.append does, per record
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
