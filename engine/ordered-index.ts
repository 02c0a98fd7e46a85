/**
 * The in-memory index: key (latin1 string, so native string order is byte order) -> value (Buffer), in a
 * copy-on-write B+ tree (sorted-btree). A snapshot is clone(): O(1), it marks the root shared and later
 * writes copy the nodes on their path, so implicit snapshots on every iterator are cheap. The choice and
 * its measurement are in docs/decisions.md ("engine index").
 */
import sortedBtree from 'sorted-btree';
import type { KeyRange, Op } from './record.js';

type BTreeClass = typeof sortedBtree.default;
// Node's ESM loader hands a CommonJS module's exports object as the default import; bundlers (vitest)
// may hand its `default` export itself.
const BTree: BTreeClass = (sortedBtree as unknown as { default?: BTreeClass }).default ?? (sortedBtree as unknown as BTreeClass);
export type Tree = InstanceType<typeof BTree<string, Buffer>>;

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function emptyTree(): Tree {
  return new BTree<string, Buffer>(undefined, compareKeys);
}

/** Bounds of a range, in the form both iterators and clear use. */
export interface Bounds {
  low: string | undefined;
  lowInclusive: boolean;
  high: string | undefined;
  highInclusive: boolean;
}

export function inBounds(b: Bounds, key: string): boolean {
  if (b.low !== undefined && (b.lowInclusive ? key < b.low : key <= b.low)) return false;
  if (b.high !== undefined && (b.highInclusive ? key > b.high : key >= b.high)) return false;
  return true;
}

/** A cursor over `tree` within `bounds`, ascending or descending, that can be re-positioned (seek). */
export class Cursor {
  readonly #tree: Tree;
  readonly #bounds: Bounds;
  readonly #reverse: boolean;
  #it: IterableIterator<[string, Buffer]>;
  #done = false;

  constructor(tree: Tree, bounds: Bounds, reverse: boolean) {
    this.#tree = tree;
    this.#bounds = bounds;
    this.#reverse = reverse;
    this.#it = this.#start(reverse ? bounds.high : bounds.low, reverse ? bounds.highInclusive : bounds.lowInclusive);
  }

  #start(from: string | undefined, inclusive: boolean): IterableIterator<[string, Buffer]> {
    if (this.#reverse) return this.#tree.entriesReversed(from, undefined, from !== undefined && !inclusive);
    const it = this.#tree.entries(from);
    if (from === undefined || inclusive) return it;
    // entries() starts at the first key >= from: skip it when it equals an exclusive bound.
    const first = it.next();
    if (first.done) return it;
    if (first.value[0] !== from) return prepend(first.value, it);
    return it;
  }

  /** The next entry in range, or undefined at the end. */
  next(): [string, Buffer] | undefined {
    if (this.#done) return undefined;
    const r = this.#it.next();
    if (r.done || !inBounds(this.#bounds, r.value[0])) {
      this.#done = true;
      return undefined;
    }
    return r.value;
  }

  /**
   * Moves to the first key at or after `target` (at or before it when reverse). A target outside the
   * range ends the cursor, as abstract-level documents ("the iterator will reach its natural end") and
   * classic-level does: before, the cursor went on from the target and returned the first key in range
   * it met, so the answer depended on whether a key outside the range lay in between.
   */
  seek(target: string): void {
    this.#done = !inBounds(this.#bounds, target);
    if (!this.#done) this.#it = this.#start(target, true);
  }
}

function prepend<T>(head: T, rest: IterableIterator<T>): IterableIterator<T> {
  let first = true;
  return {
    next(): IteratorResult<T> {
      if (first) {
        first = false;
        return { value: head, done: false };
      }
      return rest.next();
    },
    [Symbol.iterator]() {
      return this;
    },
  };
}

/** Keys `range` covers in `tree`, in its direction, up to its limit. */
export function keysInRange(tree: Tree, range: KeyRange): string[] {
  const cursor = new Cursor(tree, range, range.reverse);
  const keys: string[] = [];
  const limit = range.limit < 0 ? Number.POSITIVE_INFINITY : range.limit;
  while (keys.length < limit) {
    const e = cursor.next();
    if (e === undefined) break;
    keys.push(e[0]);
  }
  return keys;
}

/**
 * Applies the ops of one record to `tree`, in order; returns the tree (a new one after a full clear).
 * `dropped.count` grows by each value the ops replaced or removed.
 */
export function applyOps(tree: Tree, ops: readonly Op[], dropped?: { count: number }): Tree {
  for (const op of ops) {
    if (op.type === 'put') {
      if (!tree.set(op.key, op.value, true) && dropped) dropped.count++;
    } else if (op.type === 'del') {
      if (tree.delete(op.key) && dropped) dropped.count++;
    } else {
      const r = op.range;
      if (r.low === undefined && r.high === undefined && r.limit < 0) {
        if (dropped) dropped.count += tree.size;
        tree = emptyTree();
        continue;
      }
      for (const key of keysInRange(tree, r)) if (tree.delete(key) && dropped) dropped.count++;
    }
  }
  return tree;
}


