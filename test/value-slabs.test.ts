/**
 * The engine's value slabs (engine/value-slabs.ts): owned copies, slabs touched ahead off the event loop,
 * and the relocation that keeps a few live values from holding whole slabs.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fsNode from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { Engine } from '../engine/index.js';
import { emptyTree } from '../engine/ordered-index.js';
import { externalMemoryAdjuster, touchPages, pageTouch } from '../fs/page-cache.js';
import { ValueSlabs, type Slab, type TouchPages } from '../engine/value-slabs.js';
import { SLAB_SCAN_BYTES_MIN, VALUE_SLAB_BYTES, VALUE_SLAB_BYTES_INITIAL, VALUE_SLAB_VALUE_BYTES_MAX, VALUE_SLAB_VALUE_BYTES_MIN } from '../engine/limits.js';
import { MemoryFileSystem } from '../fs/index.js';
import { seededRandom } from '../core/random.js';

const KIB = 1024;

function bytes(n: number, fill: number): Buffer {
  return Buffer.alloc(n, fill);
}

/** A touch that settles when the test says so. */
function manualTouch(): { touch: TouchPages; calls: Uint8Array[]; settle: () => Promise<void> } {
  const calls: Uint8Array[] = [];
  const resolvers: Array<() => void> = [];
  const touch: TouchPages = (bytes) => {
    calls.push(bytes);
    return new Promise<void>((resolve) => resolvers.push(resolve));
  };
  const settle = async (): Promise<void> => {
    for (const r of resolvers.splice(0)) r();
    await new Promise((r) => setImmediate(r));
  };
  return { touch, calls, settle };
}

/** The keys where `db` and `model` differ (a deep toEqual of Buffers byte by byte took seconds). */
async function differences(db: Engine<string, Buffer>, model: Map<string, Buffer>): Promise<string[]> {
  const out: string[] = [];
  let count = 0;
  for await (const [k, v] of db.iterator()) {
    count++;
    if (!model.get(k)?.equals(v)) out.push(k);
  }
  if (count !== model.size) out.push(`${count} keys, the model has ${model.size}`);
  return out;
}

/** Runs `script` (an ES module on the built package) in a child, with a fresh directory as argv[1]. */
function runChild(script: string, timeoutMs: number): SpawnSyncReturns<string> {
  const dir = fsNode.mkdtempSync(path.join(os.tmpdir(), 'fp-slabs-'));
  try {
    return spawnSync(process.execPath, ['--input-type=module', '-e', script, path.join(dir, 'db')], { cwd: process.cwd(), encoding: 'utf8', timeout: timeoutMs });
  } finally {
    fsNode.rmSync(dir, { recursive: true, force: true });
  }
}

/** The values the engine's index holds (the tree an explicit snapshot holds: reads return copies). */
async function indexValues(db: Engine<string, Buffer>): Promise<Buffer[]> {
  const snap = db.snapshot() as unknown as Record<symbol, unknown> & { close(): Promise<void> };
  const tree = Object.getOwnPropertySymbols(snap).map((k) => snap[k]).find((t) => t && typeof (t as { entries?: unknown }).entries === 'function') as { entries(): Iterable<[string, Buffer]> };
  const values = [...tree.entries()].map(([, v]) => v);
  await snap.close();
  return values;
}

/** The distinct memory `values` keep alive, in bytes. */
function heldBytesOf(values: readonly Buffer[]): number {
  const seen = new Set<ArrayBufferLike>();
  let total = 0;
  for (const v of values) {
    if (seen.has(v.buffer)) continue;
    seen.add(v.buffer);
    total += v.buffer.byteLength;
  }
  return total;
}

describe('value slabs', () => {
  it('copies: equal bytes, independent of the caller, side by side in one slab', () => {
    const slabs = new ValueSlabs(null, 8 * KIB);
    const src = bytes(2 * KIB, 7);
    const a = slabs.copy('a', src);
    const b = slabs.copy('b', bytes(3 * KIB, 9));
    src.fill(1);
    expect(a.equals(bytes(2 * KIB, 7))).toBe(true);
    expect(b.equals(bytes(3 * KIB, 9))).toBe(true);
    expect(slabs.slabOf(a)).toBeDefined();
    expect(slabs.slabOf(a)).toBe(slabs.slabOf(b));
    // The third does not fit the rest of the slab: it starts the next one.
    const c = slabs.copy('c', bytes(4 * KIB, 3));
    expect(slabs.slabOf(c)).not.toBe(slabs.slabOf(a));
    expect(slabs.stats().slabs).toBe(2);
  });

  it('keeps small and large values in Buffers of their own', () => {
    const slabs = new ValueSlabs(null);
    const small = slabs.copy('s', bytes(VALUE_SLAB_VALUE_BYTES_MIN - 1, 1));
    const large = slabs.copy('l', bytes(VALUE_SLAB_VALUE_BYTES_MAX + 1, 2));
    expect(slabs.slabOf(small)).toBeUndefined();
    expect(slabs.slabOf(large)).toBeUndefined();
    expect(large.equals(bytes(VALUE_SLAB_VALUE_BYTES_MAX + 1, 2))).toBe(true);
    expect(slabs.stats().slabs).toBe(0);
    expect(slabs.slabOf(slabs.copy('m', bytes(VALUE_SLAB_VALUE_BYTES_MIN, 3)))).toBeDefined();
  });

  it('fills slabs touched ahead, and an untouched one only when none is ready', async () => {
    const { touch, calls, settle } = manualTouch();
    const slabs = new ValueSlabs(touch, 4 * KIB, 2);
    slabs.copy('a', bytes(4 * KIB, 1)); // nothing is ready yet: the first slab is filled untouched
    expect(slabs.stats().slabsUntouched).toBe(1);
    expect(calls.length).toBe(2); // two slabs are being touched ahead
    slabs.copy('b', bytes(4 * KIB, 2)); // still being touched: another untouched one, no third touch
    expect(slabs.stats().slabsUntouched).toBe(2);
    expect(calls.length).toBe(2);
    await settle();
    const c = slabs.copy('c', bytes(4 * KIB, 3));
    expect(slabs.stats().slabsUntouched).toBe(2);
    expect(slabs.slabOf(c)?.bytes).toBe(calls[0]); // the first touched slab, in order
    expect(calls.length).toBe(3); // and the one it took is replaced
    slabs.close();
    await settle();
    slabs.copy('d', bytes(4 * KIB, 4)); // closed: the ready ones were dropped, nothing more is touched
    expect(calls.length).toBe(3);
  });

  it('a process that wrote slab-sized values, with a touch still in flight, exits on its own', () => {
    // The built package, as the crash tests' children use it (npm test builds first).
    const script = `
      import { Engine } from 'flushpoint';
      import { touchPages } from '${pathToFileURL(path.resolve('dist/fs/page-cache.js')).href}';
      const db = new Engine(process.argv[1], { valueEncoding: 'buffer' });
      // Past the growing slabs (64 KiB to 512 KiB): full-size slabs are touched ahead.
      for (let i = 0; i < 300; i++) await db.put('k' + i, Buffer.alloc(4096, 1));
      if (db.stats().valueSlabs.slabs < 6) throw new Error('no full-size slab was made: ' + JSON.stringify(db.stats().valueSlabs));
      await db.close();
      await touchPages(Buffer.alloc(1 << 20));
      void touchPages(Buffer.alloc(1 << 20));
      console.log('done');
    `;
    const r = runChild(script, 20_000);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('done');
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.status).toBe(0);
  });

  it('overwriting a small state for 256 MiB keeps the process small: freed slabs are freed', () => {
    // 16 writers overwrite 256 keys with 4 KiB values (1 MiB live) on the real disk, with automatic
    // checkpoints. When the slabs were touched by a worker thread, its heap held every slab it was
    // handed until its own GC, which hardly ever ran: the process grew by about what was written.
    const script = `
      import { Engine } from 'flushpoint';
      const db = new Engine(process.argv[1], { valueEncoding: 'buffer', checkpointEveryBytes: 8 << 20 });
      await db.open();
      const rss0 = process.memoryUsage().rss;
      let written = 0, maxRss = 0;
      const TOTAL = 256 << 20;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (written < TOTAL) {
          written += 4096;
          await db.put('k' + Math.floor(Math.random() * 256), Buffer.alloc(4096, written & 0xff));
          if ((written & ((16 << 20) - 1)) === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
        }
      }));
      const s = db.stats().valueSlabs;
      await db.close();
      console.log(JSON.stringify({ growthMiB: Math.round((maxRss - rss0) / 1048576), ...s }));
    `;
    const r = runChild(script, 120_000);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim()) as { growthMiB: number; slabs: number; valuesRelocated: number };
    expect(out.slabs).toBeGreaterThan(200); // ~256 MiB went through slabs
    expect(out.valuesRelocated).toBeGreaterThan(0);
    expect(out.growthMiB).toBeLessThan(128);
  }, 150_000);

  it.runIf(pageTouch())('touchPages maps the pages on the pool (the addon) and leaves the bytes as they were', async () => {
    const fresh = Buffer.from(new ArrayBuffer(256 * KIB));
    await touchPages(fresh);
    expect(fresh.every((b) => b === 0)).toBe(true);
    const view = Buffer.alloc(64 * KIB, 0).subarray(100, 100 + 32 * KIB); // a view, at an offset
    await touchPages(view);
    expect(view.every((b) => b === 0)).toBe(true);
    await expect(touchPages(3 as never)).rejects.toThrow(/Uint8Array/);
    await expect(touchPages(new Uint16Array(4) as never)).rejects.toThrow(/Uint8Array/);
  });

  it('an engine that holds little pays little: slabs grow from 64 KiB, and are touched ahead only at full size', async () => {
    const { touch, calls } = manualTouch();
    const slabs = new ValueSlabs(touch);
    const sizes: number[] = [];
    let last: unknown = null;
    for (let i = 0; i < 512; i++) {
      const slab = slabs.slabOf(slabs.copy(`k${i}`, bytes(4 * KIB, 1)));
      if (slab !== last) {
        sizes.push(slab!.bytes.byteLength);
        last = slab;
        if (slab!.bytes.byteLength < VALUE_SLAB_BYTES) expect(calls.length).toBe(0);
      }
    }
    expect(sizes.slice(0, 5)).toEqual([VALUE_SLAB_BYTES_INITIAL, 2 * VALUE_SLAB_BYTES_INITIAL, 4 * VALUE_SLAB_BYTES_INITIAL, 8 * VALUE_SLAB_BYTES_INITIAL, VALUE_SLAB_BYTES]);
    expect(calls.length).toBe(2); // from the first full-size slab on
    expect(calls.every((b) => b.byteLength === VALUE_SLAB_BYTES)).toBe(true);
  });

  it('utf8 strings of slab size go into slabs as their utf8 bytes', () => {
    const slabs = new ValueSlabs(null, 64 * KIB);
    const text = 'é'.repeat(700); // 1,400 utf8 bytes from 700 chars
    const v = slabs.copyString('t', text);
    expect(slabs.slabOf(v)).toBeDefined();
    expect(v.toString('utf8')).toBe(text);
    expect(slabs.slabOf(slabs.copyString('s', 'x'.repeat(1000)))).toBeUndefined(); // 1,000 bytes: below
    expect(slabs.slabOf(slabs.copyString('a', 'x'.repeat(VALUE_SLAB_VALUE_BYTES_MIN)))).toBeDefined();
  });

  it('a key whose value is not in the state yet (its write pending) stays listed, and a later relocation moves it', () => {
    const slabs = new ValueSlabs(null, 8 * KIB);
    const tree = emptyTree();
    const pending = slabs.copy('p', bytes(KIB, 5)); // copied, not applied yet
    const slab = slabs.slabOf(pending)!;
    for (let i = 0; i < 7; i++) slabs.copy(`d${i}`, bytes(KIB, i)); // dead ones, never in the state
    slabs.copy('next', bytes(KIB, 9)); // the slab is full: this one starts the next
    expect(slabs.relocate(slab, [tree], (key) => key === 'p')).toBe(0);
    expect(slab.keys).toEqual(['p']); // the dead ones are dropped, the pending one stays
    tree.set('p', pending); // the write becomes visible
    expect(slabs.relocate(slab, [tree], () => false)).toBe(1);
    expect(slab.keys).toEqual([]);
    expect(slabs.slabOf(tree.get('p')!)).not.toBe(slab);
    expect(tree.get('p')!.equals(bytes(KIB, 5))).toBe(true);
  });

  it('the slab being filled when a scan began is not judged on the part filled then', () => {
    const slabs = new ValueSlabs(null, 8 * KIB);
    const tree = emptyTree();
    tree.set('a', slabs.copy('a', bytes(KIB, 1))); // a slab 1/8 used, the one being filled
    const scan = slabs.scan();
    for (const [, v] of tree.entries()) scan.visit(v);
    for (let i = 0; i < 8; i++) tree.set(`b${i}`, slabs.copy(`b${i}`, bytes(KIB, 2))); // fills it, starts the next
    expect(scan.sparse()).toEqual([]);
  });

  it('relocates the live values of a sparse slab, in every map that holds them, and leaves snapshots alone', () => {
    const slabs = new ValueSlabs(null, 8 * KIB);
    let tree = emptyTree();
    for (let i = 0; i < 8; i++) tree.set(`k${i}`, slabs.copy(`k${i}`, bytes(KIB, i)));
    const first = slabs.slabOf(tree.get('k0') as Buffer);
    // Overwrite all but k3 (new values go to the next slab): the first slab is 1/8 live.
    for (let i = 0; i < 8; i++) if (i !== 3) tree.set(`k${i}`, slabs.copy(`k${i}`, bytes(KIB, 100 + i)));
    const scan = slabs.scan();
    for (const [, v] of tree.entries()) scan.visit(v);
    const sparse = scan.sparse();
    expect(sparse).toEqual([first]);
    const snapshot = tree.clone();
    const next = tree.clone();
    const old = tree.get('k3') as Buffer;
    tree = tree.clone(); // the visible tree and a next state share k3's value
    const moved = slabs.relocate(sparse[0]!, [tree, next]);
    expect(moved).toBe(1);
    const now = tree.get('k3') as Buffer;
    expect(now).not.toBe(old);
    expect(slabs.slabOf(now)).not.toBe(first);
    expect(now.equals(bytes(KIB, 3))).toBe(true);
    expect(next.get('k3')).toBe(now); // one copy for both
    expect(snapshot.get('k3')).toBe(old); // a snapshot keeps what it had
    expect(first?.keys).not.toContain('k3'); // moved: no longer listed
    expect(slabs.stats().valuesRelocated).toBe(1);
    // A second scan finds the first slab in no map of the state: nothing to do.
    const again = slabs.scan();
    for (const [, v] of tree.entries()) again.visit(v);
    expect(again.sparse()).toEqual([]);
  });

  it('a checkpoint relocates values that keep otherwise dead slabs alive (engine)', async () => {
    const fs = new MemoryFileSystem();
    const db = new Engine<string, Buffer>('/db', { fs, valueEncoding: 'buffer', valueSlabBytes: 16 * KIB, checkpointEveryBytes: 1 << 30 } as never);
    await db.open();
    // 64 keys of 4 KiB: 16 slabs of 4 values. Then all keys but every 4th are overwritten with small values.
    const keys = Array.from({ length: 64 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    for (const k of keys) await db.put(k, bytes(4 * KIB, k.charCodeAt(3)));
    for (let i = 0; i < keys.length; i++) if (i % 4 !== 0) await db.put(keys[i]!, Buffer.from('x'));
    const heldBytes = async (): Promise<number> => heldBytesOf(await indexValues(db));
    // Before: each of the 16 live 4 KiB values holds a 16 KiB slab of its own.
    expect(await heldBytes()).toBeGreaterThanOrEqual(16 * 16 * KIB);
    await db.checkpoint();
    // After: the 16 live values fill 4 slabs (plus the small values' pool).
    expect(await heldBytes()).toBeLessThanOrEqual(5 * 16 * KIB + 16 * KIB);
    for (let i = 0; i < keys.length; i++) {
      const v = await db.get(keys[i]!);
      expect(v?.equals(i % 4 === 0 ? bytes(4 * KIB, keys[i]!.charCodeAt(3)) : Buffer.from('x'))).toBe(true);
    }
    await db.close();
    const reopened = new Engine<string, Buffer>('/db', { fs, valueEncoding: 'buffer' } as never);
    await reopened.open();
    expect((await reopened.get(keys[4]!))?.equals(bytes(4 * KIB, keys[4]!.charCodeAt(3)))).toBe(true);
    await reopened.close();
  });

  it('deletes that leave a few live values in every slab free the slabs without a checkpoint', async () => {
    // Deletes write little WAL, so no automatic checkpoint comes: the scan starts once more values were
    // dropped than the index holds keys (SLAB_SCAN_DROPPED_MIN at least).
    const fs = new MemoryFileSystem();
    const db = new Engine<string, Buffer>('/db', { fs, valueEncoding: 'buffer', valueSlabBytes: 16 * KIB, checkpointEveryBytes: 1 << 30, wal: { segmentSizeBytes: 1 << 20 } } as never);
    await db.open();
    const keys = Array.from({ length: 8192 }, (_, i) => `k${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 64) await db.batch(keys.slice(i, i + 64).map((key) => ({ type: 'put' as const, key, value: bytes(KIB, 7) })));
    const slabMemory = async (): Promise<number> => heldBytesOf(await indexValues(db));
    expect(await slabMemory()).toBeGreaterThanOrEqual(8192 * KIB);
    // Keep every 8th: 1 MiB live, one value in each 8 KiB of slab.
    for (let i = 0; i < keys.length; i += 64) await db.batch(keys.slice(i, i + 64).filter((_, j) => j % 8 !== 0).map((key) => ({ type: 'del' as const, key })));
    // Scans ran at 4,096, 6,144 and 7,168 deletes (each time more drops than keys left): let the last end.
    const until = Date.now() + 5000;
    let last = -1;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      const moved = db.stats().valueSlabs.valuesRelocated;
      if (moved > 0 && moved === last) break;
      last = moved;
    }
    expect(db.stats().valueSlabs.valuesRelocated).toBeGreaterThan(512);
    expect(db.stats().checkpointsWritten).toBe(0);
    // About twice the live values, plus what SLAB_SCAN_DROPPED_MIN unscanned drops may hold, plus two slabs (8 MiB before).
    expect(await slabMemory()).toBeLessThanOrEqual(2 * 1024 * KIB + 1024 * KIB + 2 * 16 * KIB);
    let wrong = 0;
    for (let i = 0; i < keys.length; i++) if (!((await db.get(keys[i]!))?.equals(bytes(KIB, 7)) ?? false) !== (i % 8 !== 0)) wrong++;
    expect(wrong).toBe(0);
    await db.close();
  });

  it('a value given as a typed array other than Uint8Array is stored as its bytes, in memory and in the WAL', async () => {
    const fs = new MemoryFileSystem();
    const u16 = { name: 'u16', format: 'view' as const, encode: (n: number) => new Uint16Array(1024).fill(n), decode: (v: Uint8Array) => v };
    const db = new Engine('/db', { fs });
    await db.open();
    const expected = Buffer.from(new Uint16Array(1024).fill(0x0707).buffer);
    await db.put('a', 0x0707 as never, { valueEncoding: u16 as never, sync: false });
    await db.put('b', 0x0707 as never, { valueEncoding: u16 as never });
    await db.batch([{ type: 'put', key: 'c', value: 0x0707 as never }], { valueEncoding: u16 as never });
    for (const k of ['a', 'b', 'c']) expect((await db.get(k, { valueEncoding: 'buffer' })) as unknown as Buffer).toEqual(expected);
    await db.close();
    await db.open();
    for (const k of ['a', 'b', 'c']) expect((await db.get(k, { valueEncoding: 'buffer' })) as unknown as Buffer).toEqual(expected);
    await db.close();
  });

  it('a batch still pending when a checkpoint relocates does not pin its slab for good', async () => {
    // From the first review: a logger hook issues a batch right before the relocation, so its values are
    // in a slab but in no state yet; that slab's list must keep their keys for a later relocation.
    const fs = new MemoryFileSystem();
    let hook: (() => void) | null = null;
    const logger = {
      info: (_o: object, msg?: string) => {
        if (msg === 'engine checkpoint' && hook) {
          const h = hook;
          hook = null;
          h();
        }
      },
      warn: () => {},
      error: () => {},
    };
    const db = new Engine<string, Buffer>('/db', { fs, logger, valueEncoding: 'buffer', valueSlabBytes: 16 * KIB, checkpointEveryBytes: 1 << 30 } as never);
    await db.open();
    const v = (n: number): Buffer => Buffer.alloc(4 * KIB, n & 0xff);
    const small = Buffer.from('s');
    for (let r = 0; r < 20; r++) {
      await db.put('tmp', v(r));
      let batch: Promise<void> | null = null;
      hook = () => {
        batch = db.batch([
          { type: 'put', key: `keep${r}`, value: v(100 + r) },
          { type: 'put', key: 'x1', value: v(1) },
          { type: 'put', key: 'x2', value: v(2) },
          { type: 'put', key: 'pad', value: v(3) },
        ]);
      };
      await db.checkpoint();
      await batch;
      await db.batch(['x1', 'x2', 'pad', 'tmp'].map((key) => ({ type: 'put' as const, key, value: small })));
      await db.checkpoint();
      await db.checkpoint();
    }
    const inSlabs = (await indexValues(db)).filter((value) => value.byteLength >= VALUE_SLAB_VALUE_BYTES_MIN);
    const liveBytes = inSlabs.reduce((sum, value) => sum + value.byteLength, 0);
    const slabBytes = heldBytesOf(inSlabs);
    expect(liveBytes).toBe(20 * 4 * KIB);
    expect(slabBytes).toBeLessThanOrEqual(2 * liveBytes + 2 * 16 * KIB);
    await db.close();
  });

  it('random puts, dels and checkpoints on small slabs: every read equals a plain map, relocations included', async () => {
    let relocations = 0;
    const logger = { info: (o: object, msg?: string) => void (msg === 'engine value slabs relocated' && (relocations += (o as { values: number }).values)), warn: () => {}, error: () => {} };
    for (let seed = 1; seed <= 12; seed++) {
      const rng = seededRandom(seed);
      const fs = new MemoryFileSystem();
      const db = new Engine<string, Buffer>('/db', { fs, logger, valueEncoding: 'buffer', valueSlabBytes: 8 * KIB, checkpointEveryBytes: 1 << 30, wal: { segmentSizeBytes: 256 * KIB } } as never);
      await db.open();
      const model = new Map<string, Buffer>();
      for (let i = 0; i < 400; i++) {
        const key = `k${rng.int(40)}`;
        const r = rng.next();
        if (r < 0.75) {
          const value = Buffer.alloc(1024 + rng.int(2048), rng.int(256));
          value[0] = i & 0xff;
          model.set(key, Buffer.from(value));
          await (rng.next() < 0.5 ? db.put(key, value) : db.batch([{ type: 'put', key, value }]));
          value.fill(0); // the caller's buffer is its own again
        } else if (r < 0.95) {
          model.delete(key);
          await db.del(key);
        } else {
          await db.checkpoint();
          expect(await differences(db, model)).toEqual([]);
        }
      }
      await db.close();
      const reopened = new Engine<string, Buffer>('/db', { fs, valueEncoding: 'buffer' } as never);
      await reopened.open();
      expect(await differences(reopened, model)).toEqual([]);
      await reopened.close();
    }
    expect(relocations).toBeGreaterThan(50);
  });

  describe('in shared memory, V8 told of a slab once the index dropped it', () => {
    /** Slabs of 8 KiB that report to a tally instead of V8. */
    function shared(): { slabs: ValueSlabs; reports: number[]; total: () => number } {
      const reports: number[] = [];
      const slabs = new ValueSlabs(null, 8 * KIB, undefined, (delta) => reports.push(delta));
      return { slabs, reports, total: () => reports.reduce((a, b) => a + b, 0) };
    }

    /**
     * Scans `tree` and relocates its sparse slabs as the engine does; then releases, `pendingKeys` being
     * the keys of puts not visible yet and `pendingSlabs` the slabs their values are in.
     */
    function scanAndRelease(slabs: ValueSlabs, tree: ReturnType<typeof emptyTree>, pendingKeys: string[] = [], pendingSlabs: Slab[] = []): Slab[] {
      const scan = slabs.scan();
      for (const [, v] of tree.entries()) scan.visit(v);
      const sparse = scan.sparse();
      for (const slab of sparse) slabs.relocate(slab, [tree], (key) => pendingKeys.includes(key));
      scan.released(new Set(pendingSlabs));
      return sparse;
    }

    it('slabs are SharedArrayBuffers; without the tally they are plain Buffers', () => {
      const { slabs } = shared();
      expect(slabs.copy('a', bytes(KIB, 1)).buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(new ValueSlabs(null, 8 * KIB).copy('a', bytes(KIB, 1)).buffer).toBeInstanceOf(ArrayBuffer);
    });

    it('reports each slab once: overwritten, relocated, never while half live, a pending put or filled after the scan began', () => {
      const { slabs, reports, total } = shared();
      const tree = emptyTree();
      const put = (k: string, fill: number): void => void tree.set(k, slabs.copy(k, bytes(KIB, fill)));
      for (let i = 0; i < 16; i++) put(`a${i}`, i); // slabs A and B, full
      const slabB = slabs.slabOf(tree.get('a8')!)!;
      for (let i = 0; i < 8; i++) put(`a${i}`, 50 + i); // A has nothing live; C full
      put('a8', 60); // B 7/8 live
      scanAndRelease(slabs, tree);
      expect(reports).toEqual([8 * KIB]); // A only
      expect(slabs.stats().slabsReleased).toBe(1);
      // B: all but a9 overwritten (B 1/8 live), a9 relocated; but a put of 'a10' is pending with its value in B.
      for (let i = 10; i < 16; i++) put(`a${i}`, 70 + i);
      tree.set('a8', slabs.copy('a8', bytes(KIB, 61)));
      tree.delete('a10'); // 'a10': as if its write is not in the state yet
      const sparse = scanAndRelease(slabs, tree, ['a10'], [slabB]);
      expect(sparse).toContain(slabB);
      expect(slabs.slabOf(tree.get('a9')!)).not.toBe(slabB); // relocated
      expect(reports).toEqual([8 * KIB]); // B holds a pending put's value: not yet
      scanAndRelease(slabs, tree); // no longer pending (its value went elsewhere, say)
      expect(reports).toEqual([8 * KIB, 8 * KIB]);
      // A slab closed after the scan began is not judged by that scan, even with nothing of it in the state.
      const scan = slabs.scan();
      for (const [, v] of tree.entries()) scan.visit(v);
      for (let i = 0; i < 24; i++) slabs.copy(`x${i}`, bytes(KIB, 1)); // never in the tree
      scan.released(new Set());
      expect(reports.length).toBe(2);
      // close() reports every slab not reported yet, once.
      const made = slabs.stats().slabs;
      slabs.close();
      expect(reports.length).toBe(made);
      expect(total()).toBe(made * 8 * KIB);
      slabs.close();
      expect(reports.length).toBe(made);
    });

    it('a slab with nothing live is reported although a put of one of its keys is pending: that value is elsewhere', () => {
      // Found by review: with the check by key, hot keys with puts always in flight kept dead slabs from V8.
      const { slabs, reports } = shared();
      const tree = emptyTree();
      for (let i = 0; i < 8; i++) tree.set(`h${i}`, slabs.copy(`h${i}`, bytes(KIB, i))); // slab A, full
      for (let i = 0; i < 8; i++) tree.set(`h${i}`, slabs.copy(`h${i}`, bytes(KIB, 10 + i))); // slab B: A has nothing live
      const pendingValue = slabs.copy('h0', bytes(KIB, 99)); // a put of h0 on its way, its value in slab C
      scanAndRelease(slabs, tree, ['h0'], [slabs.slabOf(pendingValue)!]);
      expect(reports).toEqual([8 * KIB]);
    });

    it('a scan is due once the slabs closed since the last one reach SLAB_SCAN_BYTES_MIN, or a quarter of what it kept', () => {
      const slabs = new ValueSlabs(null, 8 * KIB, undefined, () => {}, 32 * KIB);
      const tree = emptyTree();
      let n = 0;
      const fillSlabs = (count: number): void => {
        for (let i = 0; i < count * 8; i++, n++) tree.set(`k${n}`, slabs.copy(`k${n}`, bytes(KIB, n & 0xff)));
      };
      fillSlabs(4); // the 4th is still being filled: 3 closed
      expect(slabs.scanDue()).toBe(false);
      fillSlabs(1);
      expect(slabs.scanDue()).toBe(true); // 4 closed: 32 KiB
      scanAndRelease(slabs, tree); // everything live: kept 32 KiB, the next is due at 64 KiB closed
      expect(slabs.scanDue()).toBe(false);
      fillSlabs(3);
      expect(slabs.scanDue()).toBe(false);
      fillSlabs(1);
      expect(slabs.scanDue()).toBe(true);
      fillSlabs(12);
      scanAndRelease(slabs, tree); // kept 160 KiB (20 slabs): the next is due at 5 more (a quarter, over the minimum)
      fillSlabs(4);
      expect(slabs.scanDue()).toBe(false);
      fillSlabs(1);
      expect(slabs.scanDue()).toBe(true);
      for (let i = 0; i < n; i++) tree.delete(`k${i}`); // all dropped: the scan tells V8 of every closed slab
      scanAndRelease(slabs, tree);
      expect(slabs.scanDue()).toBe(false);
      fillSlabs(4);
      expect(slabs.scanDue()).toBe(true); // back to the minimum
      // A scan of many keys: the next is due only after 64 B per key (here 1,024 keys: 64 KiB, 8 slabs).
      const many = slabs.scan();
      many.released(new Set(), 1024);
      fillSlabs(7);
      expect(slabs.scanDue()).toBe(false);
      fillSlabs(1);
      expect(slabs.scanDue()).toBe(true);
      expect(new ValueSlabs(null, 8 * KIB, undefined, null, 32 * KIB).scanDue()).toBe(false);
    });

    it('with checkpoints off, hot overwrites over a state of many small keys leave little dead slab memory', () => {
      // Found by review: scans came only after as many drops as keys (here ~30,000 x 16 KiB), V8 learning
      // of no dead slab meanwhile: 564 MiB of array buffers. A scan is now due every SLAB_SCAN_BYTES_MIN.
      const script = `
        import { Engine } from 'flushpoint';
        // commitWait 'sleep', the setting this test was written under.
        const db = new Engine(process.argv[1], { valueEncoding: 'buffer', checkpointEveryBytes: Number.MAX_SAFE_INTEGER, wal: { commitWait: 'sleep' } });
        await db.open();
        let peak = 0;
        const put = async (n, keyOf, size) => {
          let i = 0;
          const v = Buffer.alloc(size, 7);
          await Promise.all(Array.from({ length: 64 }, async () => {
            while (i < n) {
              const k = keyOf(i++);
              await db.put(k, v);
              if ((i & 255) === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers);
            }
          }));
        };
        await put(30000, (i) => 'cold' + i, 200);
        await put(16000, (i) => 'hot' + (i % 8), 16384);
        const s = db.stats().valueSlabs;
        await db.close();
        console.log(JSON.stringify({ peakMiB: Math.round(peak / 1048576), ...s }));
      `;
      const r = runChild(script, 120_000);
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout.trim()) as { peakMiB: number; slabs: number; slabsReleased: number };
      const said = r.stdout.trim();
      expect(out.slabs, said).toBeGreaterThan(200); // 250 MiB went through slabs
      // The bound a user sees. Without scanDue, when the review found it, V8 learnt of no dead slab and
      // the array buffers peaked at 564 MiB; on today's code, at 111-281 MiB (4 of 5 runs under this
      // bound), since V8 collects more dead slabs on its own: the next test, with no V8 timing in it,
      // is the one that fails on that bug now. How many dead slabs a scan finds alive and releases (1-230
      // here) or V8 collects first, unreleased, depends on when V8 collects, not on the code under
      // test (2 released, peak 76 MiB, with a disk writer and a CPU hog beside it).
      expect(out.peakMiB, said).toBeLessThan(256);
    }, 150_000);

    it.runIf(externalMemoryAdjuster() !== null)('with checkpoints off, the engine scans its slabs once SLAB_SCAN_BYTES_MIN of closed ones are alive, though far fewer values were dropped than it holds keys', async () => {
      // The case above without V8's timing in it: a value of every slab but the first is held here, so
      // no other slab is collected before a scan, and the closed bytes grow with the puts. Scans that
      // came only after as many drops as keys (the bug) would not start at all: ~2,550 drops against
      // 4,104 keys.
      const db = new Engine<string, Buffer>('/db', { fs: new MemoryFileSystem(), valueEncoding: 'buffer', checkpointEveryBytes: Number.MAX_SAFE_INTEGER });
      await db.open();
      await db.batch(Array.from({ length: 4096 }, (_, i) => ({ type: 'put' as const, key: `cold${i}`, value: Buffer.alloc(100, 1) })));
      const value = Buffer.alloc(16 * KIB, 7);
      const held: Buffer[] = [];
      const puts = (SLAB_SCAN_BYTES_MIN + 8 * VALUE_SLAB_BYTES) / value.byteLength;
      for (let i = 0; i < puts; i += 8) {
        await Promise.all(Array.from({ length: 8 }, (_, k) => db.put(`hot${k}`, value)));
        // The 8 latest values, after every 8 puts: every slab that holds 8 values or more (all but the
        // first, of 64 KiB: slabs grow from VALUE_SLAB_BYTES_INITIAL) keeps one held. V8 may collect that
        // one before a scan: ~40 MiB of slabs close, against SLAB_SCAN_BYTES_MIN (32 MiB).
        held.push(...(await indexValues(db)).filter((v) => v.byteLength === value.byteLength));
      }
      expect(held.every((v) => v.buffer instanceof SharedArrayBuffer)).toBe(true);
      await vi.waitFor(() => expect(db.stats().valueSlabs.scans).toBeGreaterThanOrEqual(1), { timeout: 5_000 });
      expect(db.stats().valueSlabs.slabsReleased).toBeGreaterThan(0); // the held slabs the index dropped
      await db.close();
      held.length = 0;
    });

    it('a closed slab collected before any scan found it dropped no longer counts toward the next scan', () => {
      // Found while reviewing: such slabs stayed in the closed bytes for good, so scans came later and later.
      const script = `
        import { ValueSlabs } from ${JSON.stringify(pathToFileURL(path.resolve('dist/engine/value-slabs.js')).href)};
        const slabs = new ValueSlabs(null, 8192, undefined, () => {}, 32768);
        for (let i = 0; i < 25; i++) slabs.copy('k' + i, Buffer.alloc(1024, i)); // 3 slabs closed, none of their values kept
        const before = slabs.scanDue();
        for (let i = 0; i < 50; i++) {
          globalThis.gc();
          await new Promise((r) => setTimeout(r, 10));
        }
        for (let i = 25; i < 33; i++) slabs.copy('k' + i, Buffer.alloc(1024, i)); // a 4th closed: 32 KiB if the 3 still counted
        console.log(JSON.stringify({ before, after: slabs.scanDue() }));
      `;
      const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8', timeout: 20_000 });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout.trim())).toEqual({ before: false, after: false });
    });

    it('a reported slab is taken back from the tally once it is collected', () => {
      // A child with --expose-gc: the slabs' FinalizationRegistry runs after a collection.
      const script = `
        import { ValueSlabs } from ${JSON.stringify(pathToFileURL(path.resolve('dist/engine/value-slabs.js')).href)};
        let total = 0;
        let slabs = new ValueSlabs(null, 8192, undefined, (d) => { total += d; });
        for (let i = 0; i < 64; i++) slabs.copy('k' + i, Buffer.alloc(1024, i));
        slabs.close();
        const reported = total;
        slabs = null;
        for (let i = 0; i < 50 && total !== 0; i++) {
          globalThis.gc();
          await new Promise((r) => setTimeout(r, 10));
        }
        console.log(JSON.stringify({ reported, after: total }));
      `;
      const dir = fsNode.mkdtempSync(path.join(os.tmpdir(), 'fp-slabs-'));
      try {
        const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8', timeout: 20_000 });
        expect(r.stderr).toBe('');
        expect(JSON.parse(r.stdout.trim())).toEqual({ reported: 8 * 8192, after: 0 });
      } finally {
        fsNode.rmSync(dir, { recursive: true, force: true });
      }
    });

    it.runIf(externalMemoryAdjuster() !== null)('an engine with the addon puts its values in shared slabs and releases them at close', async () => {
      const db = new Engine<string, Buffer>('/db', { fs: new MemoryFileSystem(), valueEncoding: 'buffer', valueSlabBytes: 8 * KIB } as never);
      await db.open();
      for (let i = 0; i < 40; i++) await db.put(`k${i % 8}`, bytes(KIB, i));
      await db.checkpoint();
      const values = await indexValues(db);
      expect(values.every((v) => v.buffer instanceof SharedArrayBuffer)).toBe(true);
      const before = db.stats().valueSlabs;
      expect(before.slabsReleased).toBeGreaterThan(0); // overwritten slabs, after the checkpoint's scan
      expect(before.slabsReleased).toBeLessThan(before.slabs); // the live ones are not
      await db.close();
      const after = db.stats().valueSlabs;
      expect(after.slabsReleased).toBe(after.slabs); // close told V8 of every one
    });
  });
});
