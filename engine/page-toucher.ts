/**
 * A thread that takes the page faults of fresh shared memory before the event loop uses it: it writes a
 * zero into one byte of each 4 KiB page of the new (all-zero) SharedArrayBuffer it is handed, and answers. The engine's value slabs are touched this way ahead of their first value
 * (value-slabs.ts, docs/decisions.md "Value slabs").
 *
 * One worker for the whole process, started at the first touch and unref'd (it never keeps the process
 * alive). Where a worker cannot start, touchShared() resolves at once and touches nothing: the event loop
 * then takes the faults itself, as it did before slabs.
 */
import { Worker } from 'node:worker_threads';

const PAGE_BYTES = 4096;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ id, sab }) => {
  const bytes = new Uint8Array(sab);
  // A plain store: Atomics.or(bytes, i, 0) here measured 13% slower puts (engine-turns, 4 KiB x 64).
  for (let i = 0; i < bytes.length; i += ${PAGE_BYTES}) bytes[i] = 0;
  parentPort.postMessage(id);
});
`;

let worker: Worker | null = null;
let broken = false;
let nextId = 1;
const waiting = new Map<number, () => void>();

function start(): Worker | null {
  if (worker !== null || broken) return worker;
  try {
    // No inherited execArgv (a --cpu-prof or a loader of the parent's), as the commit worker (fs/io-worker.ts).
    const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], name: 'flushpoint-page-toucher' });
    w.on('message', (id: number) => {
      const done = waiting.get(id);
      waiting.delete(id);
      done?.();
    });
    const stop = (): void => {
      // The touches in flight end untouched (the slabs are still good) and no worker starts again.
      broken = true;
      worker = null;
      for (const done of waiting.values()) done();
      waiting.clear();
    };
    w.on('error', stop);
    w.on('exit', stop);
    // After the listeners: a 'message' listener added after unref() refs the worker's port again, and the
    // process never exited on its own (test/value-slabs.test.ts, 'a process ... exits').
    w.unref();
    worker = w;
  } catch {
    broken = true;
  }
  return worker;
}

/**
 * Touches every page of `sab`, which must be new (all zeros: a zero is written into each page), on the
 * toucher thread; resolves when done (or at once, touching nothing, where no worker runs). The caller
 * must not use the memory until then.
 */
export function touchShared(sab: SharedArrayBuffer): Promise<void> {
  const w = start();
  if (w === null) return Promise.resolve();
  const id = nextId++;
  return new Promise<void>((resolve) => {
    waiting.set(id, resolve);
    w.postMessage({ id, sab });
  });
}
