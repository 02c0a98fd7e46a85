import type { Clock } from '../../core/clock.js';

/** A clock for deterministic simulation: time moves only when the test says so. */
export class ManualClock implements Clock {
  #now = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #deferred: Array<() => void> = [];
  #nextId = 1;

  nowMs(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }

  get deferredCount(): number {
    return this.#deferred.length;
  }

  /** Runs every deferred task (and any they defer). */
  runDeferred(): number {
    let ran = 0;
    while (this.#deferred.length > 0) {
      const fns = this.#deferred;
      this.#deferred = [];
      for (const fn of fns) {
        fn();
        ran++;
      }
    }
    return ran;
  }

  /** Moves time forward, firing due timers in time order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= until && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = until;
  }
}

/** Lets every pending promise callback run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
