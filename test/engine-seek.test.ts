/**
 * seek() on a ranged iterator: a target outside the range ends the iterator (abstract-level's README:
 * "the iterator will reach its natural end"; classic-level does so). abstract-level's shared suite checks
 * this on the dense keys 0-9 only, where the key after an out-of-range target is itself out of range;
 * with sparse keys the engine used to go on and return the first key in range after the target.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { Cursor, emptyTree, inBounds, type Bounds } from '../engine/ordered-index.js';
import { seededRandom } from '../core/random.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function engineWith(keys: string[]): Promise<Engine<string, string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-seek-'));
  dirs.push(dir);
  const db = new Engine<string, string>(path.join(dir, 'db'));
  await db.open();
  await db.batch(keys.map((key) => ({ type: 'put' as const, key, value: `v${key}` })));
  return db;
}

describe('seek() outside the iterator range', () => {
  it('ends the iterator, forward and reverse, with sparse keys (as classic-level)', async () => {
    const db = await engineWith(['3', '6', '7']);
    const cases: Array<[{ gt?: string; gte?: string }, string]> = [
      [{ gt: '5' }, '4'],
      [{ gt: '5' }, '5'],
      [{ gte: '5' }, '4'],
    ];
    for (const [range, target] of cases) {
      const it = db.iterator(range);
      it.seek(target);
      expect(await it.next(), `${JSON.stringify(range)} seek ${target}`).toBeUndefined();
      await it.close();
      const keys = db.keys(range);
      keys.seek(target);
      expect(await keys.next()).toBeUndefined();
      await keys.close();
    }
    // In range, seek still positions the iterator.
    const it = db.iterator({ gt: '5' });
    it.seek('6');
    expect(await it.next()).toEqual(['6', 'v6']);
    await it.close();
    await db.close();

    const rev = await engineWith(['3', '8']);
    const r = rev.iterator({ lt: '5', reverse: true });
    r.seek('6');
    expect(await r.next()).toBeUndefined();
    await r.close();
    const r2 = rev.iterator({ lt: '5', reverse: true });
    r2.seek('4');
    expect(await r2.next()).toEqual(['3', 'v3']);
    await r2.close();
    await rev.close();
  });

  it('the cursor agrees with the documented rule for random trees, ranges, directions and seeks', () => {
    const random = seededRandom(20261205);
    const int = (n: number): number => random.int(n);
    const key = (): string => String.fromCharCode(97 + int(12));
    let checked = 0;
    let outOfRange = 0;
    for (let round = 0; round < 3000; round++) {
      const tree = emptyTree();
      for (let i = int(8); i > 0; i--) tree.set(key(), Buffer.alloc(0), true);
      const bounds: Bounds = {
        low: int(3) === 0 ? undefined : key(),
        lowInclusive: int(2) === 0,
        high: int(3) === 0 ? undefined : key(),
        highInclusive: int(2) === 0,
      };
      const reverse = int(2) === 0;
      const cursor = new Cursor(tree, bounds, reverse);
      if (int(2) === 0) cursor.next();
      const target = key();
      cursor.seek(target);
      const got: string[] = [];
      for (let e = cursor.next(); e !== undefined; e = cursor.next()) got.push(e[0]);
      // The rule: nothing when the target is outside the range; else the keys in range from the target on.
      const sorted = [...tree.keys()].filter((k) => inBounds(bounds, k));
      if (reverse) sorted.reverse();
      const want = !inBounds(bounds, target) ? [] : sorted.filter((k) => (reverse ? k <= target : k >= target));
      if (!inBounds(bounds, target)) outOfRange++;
      expect(got, `round ${round}`).toEqual(want);
      checked++;
    }
    expect(checked).toBe(3000);
    expect(outOfRange).toBeGreaterThan(300);
  });
});
