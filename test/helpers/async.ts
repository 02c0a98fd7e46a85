/** Small async tools for tests that hold operations open and watch promises settle. */
import { setImmediate as immediate } from 'node:timers/promises';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

/** A promise with its resolve and reject handed out (a gate for FaultFileSystem `hold`). */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets `count` turns of the event loop pass (background work on an in-memory file system finishes). */
export async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await immediate();
}

/** Waits (turn by turn) until `condition()` holds; fails naming `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await immediate();
  }
}

export type Outcome<T> = { state: 'pending' } | { state: 'resolved'; value: T } | { state: 'rejected'; reason: unknown };

/** Watches a promise: `outcome` tells at any moment whether it settled, and how. */
export interface Tracked<T> {
  readonly promise: Promise<void>;
  readonly outcome: Outcome<T>;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: { promise: Promise<void>; outcome: Outcome<T> } = { promise: Promise.resolve(), outcome: { state: 'pending' } };
  t.promise = promise.then(
    (value) => {
      t.outcome = { state: 'resolved', value };
    },
    (reason: unknown) => {
      t.outcome = { state: 'rejected', reason };
    },
  );
  return t;
}

/**
 * The outcome of `promise` if it settles within `patienceMs`, or 'hung': for tests of a hang, where the
 * old code never settles (a lost wake-up) and waiting for the test's own timeout would say less.
 */
export async function settledWithin<T>(promise: Promise<T>, patienceMs: number): Promise<Outcome<T> | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), patienceMs);
  });
  try {
    return await Promise.race([
      promise.then(
        (value): Outcome<T> => ({ state: 'resolved', value }),
        (reason: unknown): Outcome<T> => ({ state: 'rejected', reason }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
