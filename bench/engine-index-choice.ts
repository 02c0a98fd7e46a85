/**
 * The measurement behind the engine's index choice (docs/decisions.md, "Engine"): sorted-btree (copy-on-
 * write B+ tree, snapshot = clone()) against functional-red-black-tree (persistent, snapshot = keep the
 * root), with the engine's key form (latin1 strings). Run: node --expose-gc dist/bench/engine-index-choice.js
 */
import { createRequire } from 'node:module';
import { emptyTree } from '../engine/ordered-index.js';

interface RbTree {
  insert(k: string, v: Buffer): RbTree;
  get(k: string): Buffer | undefined;
  find(k: string): { update(v: Buffer): RbTree };
  forEach(f: () => void): void;
}

const require = createRequire(import.meta.url);
const KEYS_COUNT = 1_000_000;
const SNAPSHOT_WRITES = 200_000;

function heapBytes(): number {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

function perSec(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

const keys: string[] = [];
for (let i = 0; i < KEYS_COUNT; i++) keys.push(Buffer.from(`key${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}`).toString('latin1'));
const value = Buffer.alloc(16);
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

for (const name of ['sorted-btree', 'functional-red-black-tree'] as const) {
  const heap0 = heapBytes();
  let t0 = performance.now();
  let insertsMs: number;
  let get: (k: string) => Buffer | undefined;
  let snapshotWrite: (k: string) => void;
  let scan: () => number;
  if (name === 'sorted-btree') {
    const tree = emptyTree();
    for (const k of keys) tree.set(k, value, true);
    insertsMs = performance.now() - t0;
    get = (k) => tree.get(k);
    let snap = tree;
    snapshotWrite = (k) => {
      snap = tree.clone();
      tree.set(k, value, true);
    };
    scan = () => {
      let n = 0;
      for (const _ of snap.entries()) n++;
      return n;
    };
  } else {
    const create = require('functional-red-black-tree') as (cmp: typeof compare) => RbTree;
    let tree = create(compare);
    for (const k of keys) tree = tree.insert(k, value);
    insertsMs = performance.now() - t0;
    get = (k) => tree.get(k);
    snapshotWrite = (k) => {
      tree = tree.find(k).update(value);
    };
    scan = () => {
      let n = 0;
      tree.forEach(() => {
        n++;
      });
      return n;
    };
  }
  const heapPerKey = Math.round((heapBytes() - heap0) / KEYS_COUNT);
  t0 = performance.now();
  for (let i = 0; i < KEYS_COUNT; i++) get(keys[(i * 7919) % KEYS_COUNT] as string);
  const getsMs = performance.now() - t0;
  t0 = performance.now();
  for (let i = 0; i < SNAPSHOT_WRITES; i++) snapshotWrite(keys[(i * 31) % KEYS_COUNT] as string);
  const snapshotWritesMs = performance.now() - t0;
  t0 = performance.now();
  const scanned = scan();
  const scanMs = performance.now() - t0;
  console.log(
    `${name}: inserts ${perSec(KEYS_COUNT, insertsMs)}/s, gets ${perSec(KEYS_COUNT, getsMs)}/s, writes with a snapshot before each ${perSec(SNAPSHOT_WRITES, snapshotWritesMs)}/s, ` +
      `scan ${perSec(scanned, scanMs)} keys/s, heap ${heapPerKey} B/key (keys excluded)`,
  );
}
