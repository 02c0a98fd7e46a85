/**
 * Model-based, with simulated power loss. Each seed runs a random sequence of put / del / batch /
 * clear (ranges, limits, reverse) / iterate / checkpoint / close+reopen, some writes concurrent and
 * some { sync: false }, against a plain sorted-Map model kept per LSN. At a random file-system call
 * (a random operation kind, its nth occurrence) the disk is taken as a power loss would leave it
 * (MemoryFileSystem.crash(), only synced state, or that plus a random part of the rest), together with
 * the two bounds at that instant: the highest LSN of an acknowledged sync:true write, and the last LSN
 * issued. An engine opened on that disk must hold exactly the model's state at one LSN L with
 * acked <= L <= issued: every acknowledged write there with its value, batches and clears atomic.
 * While running, quiescent reads (get, iterator, reverse/limited ranges) must equal the model too.
 *
 * FLUSHPOINT_SEEDS=<n> runs more seeds (npm run test:campaign); FLUSHPOINT_SEED=<n> replays one.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { FaultFileSystem, MemoryFileSystem, type FsOp } from '../fs/index.js';
import { seededRandom, type Random } from '../core/random.js';
import { replayHint, replaying, seedList } from './helpers/seeds.js';

const TEST_FILE = 'test/engine-model.test.ts';
const TEST_NAME = 'recovers exactly the model state at one LSN between acknowledged and issued';
const LOCATION = '/db';
const SEEDS_DEFAULT = 2000;
const STEPS_MAX = 30;
const KEYS = ['a', 'b', 'c', 'd', 'e', 'k\u00e9', 'k\u00e9z', 'z', 'zz', '\u4e2d'];
const CRASH_OPS: readonly FsOp[] = ['writev', 'datasync', 'datasync', 'rename', 'syncDir', 'unlink', 'open', 'truncate'];

type ModelOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string } | { type: 'clear'; range: ModelRange };
interface ModelRange {
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  limit?: number;
  reverse?: boolean;
}

/** Byte order of the utf8 keys, as the engine orders them. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function inRange(r: ModelRange, key: string): boolean {
  if (r.gt !== undefined && compareKeys(key, r.gt) <= 0) return false;
  if (r.gte !== undefined && compareKeys(key, r.gte) < 0) return false;
  if (r.lt !== undefined && compareKeys(key, r.lt) >= 0) return false;
  if (r.lte !== undefined && compareKeys(key, r.lte) > 0) return false;
  return true;
}

function rangeKeys(state: Map<string, string>, r: ModelRange): string[] {
  const keys = [...state.keys()].filter((k) => inRange(r, k)).sort(compareKeys);
  if (r.reverse) keys.reverse();
  return r.limit === undefined || r.limit < 0 ? keys : keys.slice(0, r.limit);
}

/** The model: the ops of every LSN, and the state at any LSN. */
class Model {
  readonly records = new Map<number, ModelOp[]>();
  stateAt(lsn: number): Map<string, string> {
    const state = new Map<string, string>();
    for (let l = 1; l <= lsn; l++) {
      for (const op of this.records.get(l) ?? []) {
        if (op.type === 'put') state.set(op.key, op.value);
        else if (op.type === 'del') state.delete(op.key);
        else for (const k of rangeKeys(state, op.range)) state.delete(k);
      }
    }
    return state;
  }
  sortedAt(lsn: number): Array<[string, string]> {
    return [...this.stateAt(lsn)].sort((x, y) => compareKeys(x[0], y[0]));
  }
}

function pick<T>(rng: Random, list: readonly T[]): T {
  return list[rng.int(list.length)] as T;
}

/** A value; `slab`: it may be large enough for a value slab (engine/value-slabs.ts), for single puts only (a batch of them would not fit a small segment). */
function randomValue(rng: Random, slab = false): string {
  const len = slab && rng.next() < 0.5 ? 1024 : pick(rng, [0, 1, 5, 40, 300]);
  return `${rng.int(1000)}:`.padEnd(len, String.fromCharCode(97 + rng.int(26)));
}

/** A random range; `limitMin` 1 for clear (abstract-level skips a clear with limit 0 without a write). */
function randomRange(rng: Random, limitMin = 0): ModelRange {
  const r: ModelRange = {};
  if (rng.next() < 0.5) r[rng.next() < 0.5 ? 'gt' : 'gte'] = pick(rng, KEYS);
  if (rng.next() < 0.5) r[rng.next() < 0.5 ? 'lt' : 'lte'] = pick(rng, KEYS);
  if (rng.next() < 0.3) r.limit = limitMin + rng.int(4);
  if (rng.next() < 0.3) r.reverse = true;
  return r;
}

interface CrashImage {
  image: MemoryFileSystem;
  ackedLsn: number;
  issuedLsn: number;
}

interface Tally {
  crashes: number;
  crashAtEnd: number;
  recoveredAboveAcked: number;
  checkpointsLoaded: number;
  writes: number;
}

async function runSeed(seed: number, tally: Tally): Promise<void> {
  const rng = seededRandom(seed);
  const mem = new MemoryFileSystem();
  const fault = new FaultFileSystem(mem);
  const model = new Model();
  let ackedLsn = 0;
  let issuedLsn = 0;
  let crash: CrashImage | null = null;
  const keepUnsynced = rng.next() < 0.5 ? 'none' : 'random';
  const crashSeed = rng.int(2 ** 31);
  const takeImage = (): void => {
    crash ??= { image: mem.crash({ keepUnsynced, seed: crashSeed }), ackedLsn, issuedLsn };
  };
  // A thenable hold: the FaultFileSystem awaits it right before the chosen call runs.
  const hold = { then: (resolve: (v: unknown) => void) => (takeImage(), resolve(undefined)) } as unknown as Promise<unknown>;
  fault.inject({ op: pick(rng, CRASH_OPS), nth: 1 + rng.int(pick(rng, [3, 10, 30])), hold });

  const options = { fs: fault, wal: { segmentSizeBytes: pick(rng, [4096, 8192]) }, checkpointEveryBytes: pick(rng, [4096, 16384, 1 << 30]), checkpointStatePercent: pick(rng, [0, 100]), valueSlabBytes: pick(rng, [4096, 1 << 20]) };
  let db = new Engine(LOCATION, options);
  const steps = 5 + rng.int(STEPS_MAX);
  for (let step = 0; step < steps && crash === null; step++) {
    const roll = rng.next();
    if (roll < 0.08) {
      await db.close();
      db = new Engine(LOCATION, options);
      await db.open();
      continue;
    }
    if (roll < 0.14) {
      await db.open();
      const r = await db.checkpoint();
      expect(r.lsn).toBe(db.visibleLsn);
      continue;
    }
    if (roll < 0.22) {
      await db.open();
      const r = randomRange(rng);
      const expected = model.sortedAt(db.visibleLsn);
      const want = rangeKeys(new Map(expected), r).map((k) => [k, new Map(expected).get(k)]);
      expect(await db.iterator(r).all()).toEqual(want);
      continue;
    }
    // A group of 1-4 concurrent writes.
    await db.open();
    const group = 1 + rng.int(4);
    const writes: Array<Promise<void>> = [];
    for (let g = 0; g < group; g++) {
      const sync = rng.next() < 0.8;
      const kind = rng.next();
      let ops: ModelOp[];
      let p: Promise<void>;
      if (kind < 0.45) {
        const op = { type: 'put' as const, key: pick(rng, KEYS), value: randomValue(rng, true) };
        ops = [op];
        // Half as bytes: a sync put of bytes takes the held path (its index form read back from its record).
        p = rng.next() < 0.5 ? db.put(op.key, op.value, { sync }) : db.put(Buffer.from(op.key) as never, Buffer.from(op.value) as never, { sync, keyEncoding: 'buffer', valueEncoding: 'buffer' } as never);
      } else if (kind < 0.65) {
        const op = { type: 'del' as const, key: pick(rng, KEYS) };
        ops = [op];
        p = db.del(op.key, { sync });
      } else if (kind < 0.92) {
        const batch: Array<{ type: 'put'; key: string; value: string } | { type: 'del'; key: string }> = Array.from({ length: 1 + rng.int(6) }, () =>
          rng.next() < 0.7 ? { type: 'put' as const, key: pick(rng, KEYS), value: randomValue(rng) } : { type: 'del' as const, key: pick(rng, KEYS) },
        );
        ops = batch;
        if (rng.next() < 0.5) p = db.batch(batch, { sync } as never);
        else {
          const chained = db.batch();
          for (const op of batch) {
            if (op.type === 'put') chained.put(op.key, op.value);
            else chained.del(op.key);
          }
          p = chained.write({ sync } as never);
        }
      } else {
        const range = randomRange(rng, 1);
        ops = [{ type: 'clear', range }];
        p = db.clear({ ...range, sync } as never);
      }
      const lsn = db.wal!.lastLsn;
      expect(lsn).toBe(issuedLsn + 1);
      issuedLsn = lsn;
      model.records.set(lsn, ops);
      tally.writes++;
      writes.push(
        p.then(() => {
          if (sync) ackedLsn = Math.max(ackedLsn, lsn);
        }),
      );
    }
    await Promise.all(writes);
    expect(db.visibleLsn).toBe(issuedLsn);
    if (rng.next() < 0.3) expect(await db.iterator().all()).toEqual(model.sortedAt(issuedLsn));
    const probe = pick(rng, KEYS);
    expect(await db.get(probe)).toBe(model.stateAt(issuedLsn).get(probe));
  }
  if (crash === null) tally.crashAtEnd++;
  takeImage();
  fault.clearFaults();
  await db.close();

  const c = crash as unknown as CrashImage;
  tally.crashes++;
  const recovered = new Engine(LOCATION, { fs: c.image, wal: options.wal });
  await recovered.open();
  const lsn = recovered.visibleLsn;
  expect(lsn, `recovered LSN ${lsn} below the acknowledged ${c.ackedLsn}`).toBeGreaterThanOrEqual(c.ackedLsn);
  expect(lsn, `recovered LSN ${lsn} beyond the issued ${c.issuedLsn}`).toBeLessThanOrEqual(c.issuedLsn);
  expect(await recovered.iterator().all()).toEqual(model.sortedAt(lsn));
  if (lsn > c.ackedLsn) tally.recoveredAboveAcked++;
  if (recovered.stats().recovery.checkpointLsn > 0) tally.checkpointsLoaded++;
  // The recovered engine takes writes, and they survive a clean reopen.
  await recovered.put('after', 'crash');
  await recovered.close();
  const again = new Engine(LOCATION, { fs: c.image });
  expect(await again.get('after')).toBe('crash');
  await again.close();
}

describe('engine model with power loss', () => {
  it(TEST_NAME, async () => {
    const tally: Tally = { crashes: 0, crashAtEnd: 0, recoveredAboveAcked: 0, checkpointsLoaded: 0, writes: 0 };
    const seeds = seedList(SEEDS_DEFAULT);
    for (const seed of seeds) {
      try {
        await runSeed(seed, tally);
      } catch (err) {
        console.error(`seed ${seed} failed; ${replayHint(seed, TEST_FILE, TEST_NAME)}`);
        throw err;
      }
    }
    console.log(`engine model: ${seeds.length} seeds, ${tally.writes} writes, ${tally.crashes} crash images (${tally.crashAtEnd} at the end), ` +
      `${tally.recoveredAboveAcked} recovered beyond the acknowledged LSN, ${tally.checkpointsLoaded} from a checkpoint`);
    expect(tally.crashes).toBe(seeds.length);
    if (!replaying() && seeds.length >= 500) {
      // The cut points land in the middle of runs, not only at their end, and recovery uses checkpoints.
      expect(tally.crashAtEnd).toBeLessThan(seeds.length * 0.6);
      expect(tally.checkpointsLoaded).toBeGreaterThan(seeds.length * 0.05);
      expect(tally.recoveredAboveAcked).toBeGreaterThan(0);
    }
  }, 600_000);
});
