/** Time and deferral, injectable so the flush scheduler can run under a deterministic simulation. */
export interface Clock {
  nowMs(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Runs fn after the current macrotask and its microtasks (setImmediate). */
  defer(fn: () => void): void;
}

export const realClock: Clock = {
  nowMs: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  defer: (fn) => {
    setImmediate(fn);
  },
};
