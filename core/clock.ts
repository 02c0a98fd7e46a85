/** Time and deferral, injectable so the flush scheduler can run under a deterministic simulation. */
export interface Clock {
  nowMs(): number;
  /**
   * Runs fn after ms. The real clock's timer does not keep the process alive (a sink's interval must not
   * hold an idle process), unless `keepAlive`: a wait somebody awaits that nothing else keeps alive (an
   * open waiting for a lock, a batch gathering for commitDelayMs), where an unreferenced timer let the
   * process exit with the promise still pending.
   */
  setTimeout(fn: () => void, ms: number, keepAlive?: boolean): unknown;
  clearTimeout(handle: unknown): void;
  /** Runs fn after the current macrotask and its microtasks (setImmediate). */
  defer(fn: () => void): void;
}

export const realClock: Clock = {
  nowMs: () => performance.now(),
  setTimeout: (fn, ms, keepAlive = false) => {
    const t = setTimeout(fn, ms);
    if (!keepAlive) t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  defer: (fn) => {
    setImmediate(fn);
  },
};
