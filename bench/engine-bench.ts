/**
 * The engine's benchmark section, runnable on its own: `node dist/bench/engine-bench.js [--quick] [--dir D]`.
 *
 *   durable puts   closed loop (bench/closed-loop.ts), 1 and 64 writers, 128 B and 4 KiB values: the
 *                  engine beside lmdb (overlappingSync: false), classic-level ({ sync: true }) and
 *                  better-sqlite3 (WAL, synchronous=FULL, one row per transaction and batched), same run.
 *   gets, scans    100k keys: engine vs classic-level (one awaited get at a time; a full iterator scan).
 *   checkpoint     1M keys: checkpoint time, reopen time (checkpoint load + WAL replay) beside inserting
 *                  the same keys into the in-memory index with no I/O; memory per key.
 * Every figure is printed beside its baseline with the ratio.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Engine } from '../engine/index.js';
import { Wal } from '../wal/index.js';
import { emptyTree } from '../engine/ordered-index.js';
import { runClosedLoop } from './closed-loop.js';
import { loadPeers, type LoadedPeer } from './peer-runner.js';
import type { PeerStore } from './peers/peer.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const dirArg = args.indexOf('--dir');
const baseDir = dirArg >= 0 ? (args[dirArg + 1] as string) : tmpdir();
const WARMUP_MS = quick ? 300 : 1000;
const WINDOW_MS = quick ? 1000 : 3000;
const READ_KEYS = quick ? 20_000 : 100_000;
const BIG_KEYS = quick ? 200_000 : 1_000_000;

function scratch(name: string): string {
  return mkdtempSync(path.join(baseDir, `flushpoint-engine-bench-${name}-`));
}

function key(n: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  k.writeUInt32BE(n >>> 0, 4);
  return k;
}

async function openEngineStore(dir: string, payload: Buffer): Promise<PeerStore & { db: Engine<Buffer, Buffer> }> {
  const db = new Engine<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', checkpointEveryBytes: 256 * 1024 * 1024 });
  await db.open();
  let next = 0;
  return { db, write: () => db.put(key(next++), payload), close: () => db.close() };
}

/** Baseline: the WAL alone (append + waitDurable of the same payload), what the engine is built on. */
async function openWalStore(dir: string, payload: Buffer): Promise<PeerStore> {
  const wal = await Wal.open({ dir });
  return {
    write: () => wal.waitDurable(wal.append(payload)),
    close: () => wal.close(),
  };
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);
}

async function measureStore(open: (dir: string, payload: Buffer) => Promise<PeerStore>, name: string, sizeBytes: number, writers: number): Promise<number> {
  const dir = scratch(name);
  const store = await open(dir, Buffer.alloc(sizeBytes, 0x5a));
  try {
    const r = await runClosedLoop({ writersCount: writers, warmupMs: WARMUP_MS, windowMs: WINDOW_MS, write: () => store.write() });
    return r.opsPerSec;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function durablePuts(): Promise<void> {
  const peers: LoadedPeer[] = await loadPeers();
  console.log('## durable puts (acknowledged writes/s, closed loop)');
  for (const sizeBytes of [128, 4096]) {
    for (const writers of [1, 64]) {
      const engine = await measureStore(openEngineStore, 'engine', sizeBytes, writers);
      const wal = await measureStore(openWalStore, 'wal', sizeBytes, writers);
      const rows: Array<[string, number]> = [];
      for (const p of peers) {
        if (!p.open) continue;
        rows.push([p.peer.id, await measureStore(p.open, p.peer.id, sizeBytes, writers)]);
      }
      const best = rows.reduce((b, r) => (r[1] > b[1] ? r : b), ['none', 0] as [string, number]);
      console.log(`${sizeBytes} B x ${writers} writers: engine ${fmt(engine)}/s (WAL alone ${fmt(wal)}/s, ${(engine / wal).toFixed(2)}x) | ${rows.map(([id, v]) => `${id} ${fmt(v)}/s`).join(' | ')} | ratio to best peer (${best[0]}): ${(engine / best[1]).toFixed(2)}x`);
    }
  }
}

async function fillEngine(db: Engine<Buffer, Buffer>, count: number, valueBytes: number): Promise<void> {
  const value = Buffer.alloc(valueBytes, 0x61);
  const batchSize = 1000;
  for (let i = 0; i < count; i += batchSize) {
    const ops = [];
    for (let j = i; j < Math.min(count, i + batchSize); j++) ops.push({ type: 'put' as const, key: key(j), value });
    await db.batch(ops);
  }
}

async function readsAndScans(): Promise<void> {
  console.log(`## gets and scans (${READ_KEYS.toLocaleString('en-US')} keys, 100 B values)`);
  const eDir = scratch('reads');
  const cDir = scratch('reads-classic');
  const db = new Engine<Buffer, Buffer>(eDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await fillEngine(db, READ_KEYS, 100);
  // A dev dependency: imported here, so the rest of the section runs without it.
  const { ClassicLevel } = await import('classic-level');
  const cl = new ClassicLevel<Buffer, Buffer>(cDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await cl.open();
  const value = Buffer.alloc(100, 0x61);
  for (let i = 0; i < READ_KEYS; i += 1000) {
    const b = cl.batch();
    for (let j = i; j < Math.min(READ_KEYS, i + 1000); j++) b.put(key(j), value);
    await b.write();
  }
  const gets = async (get: (k: Buffer) => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < WINDOW_MS) {
      for (let i = 0; i < 1000; i++) await get(key((n++ * 7919) % READ_KEYS));
    }
    return (n / (performance.now() - t0)) * 1000;
  };
  const scan = async (all: () => Promise<unknown[]>): Promise<number> => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < WINDOW_MS) n += (await all()).length;
    return (n / (performance.now() - t0)) * 1000;
  };
  const eg = await gets((k) => db.get(k));
  const cg = await gets((k) => cl.get(k));
  console.log(`gets: engine ${fmt(eg)}/s | classic-level ${fmt(cg)}/s | ratio ${(eg / cg).toFixed(2)}x`);
  const es = await scan(() => db.iterator().all());
  const cs = await scan(() => cl.iterator().all());
  console.log(`scan: engine ${fmt(es)} entries/s | classic-level ${fmt(cs)} entries/s | ratio ${(es / cs).toFixed(2)}x`);
  await db.close();
  await cl.close();
  rmSync(eDir, { recursive: true, force: true });
  rmSync(cDir, { recursive: true, force: true });
}

function memoryBytes(): number {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function checkpointAndReopen(): Promise<void> {
  const count = BIG_KEYS;
  console.log(`## checkpoint and reopen (${count.toLocaleString('en-US')} keys, 8 B keys, 16 B values, written in batches of 1,000)`);
  // Baseline: the same keys into the in-memory index, no I/O.
  const value = Buffer.alloc(16, 0x61);
  const t0 = performance.now();
  const tree = emptyTree();
  for (let i = 0; i < count; i++) tree.set(key(i).toString('latin1'), Buffer.from(value), true);
  const indexRate = (count / (performance.now() - t0)) * 1000;
  tree.clear();

  const dir = scratch('big');
  const mem0 = memoryBytes();
  const db = new Engine<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', checkpointEveryBytes: 2 ** 40 });
  await fillEngine(db, count, 16);
  const mem1 = memoryBytes();
  const ck = await db.checkpoint();
  await db.close();
  let t = performance.now();
  const again = new Engine<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await again.open();
  const reopenMs = performance.now() - t;
  const rec = again.stats().recovery;
  await again.close();
  // And from the WAL alone (no checkpoint): replay of the 1,000-key batches.
  const walOnlyDir = scratch('big-wal');
  const w = new Engine<Buffer, Buffer>(walOnlyDir, { keyEncoding: 'buffer', valueEncoding: 'buffer', checkpointEveryBytes: 2 ** 40 });
  await fillEngine(w, count, 16);
  await w.close();
  t = performance.now();
  const w2 = new Engine<Buffer, Buffer>(walOnlyDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await w2.open();
  const replayMs = performance.now() - t;
  await w2.close();
  const reopenRate = (count / reopenMs) * 1000;
  const replayRate = (count / replayMs) * 1000;
  console.log(`checkpoint: ${ck.durationMs.toFixed(0)} ms, ${(ck.bytes / 2 ** 20).toFixed(1)} MiB`);
  console.log(`reopen from checkpoint: ${reopenMs.toFixed(0)} ms (${fmt(reopenRate)} keys/s, ${rec.recordsReplayed} records replayed) | in-memory index inserts ${fmt(indexRate)} keys/s | ratio ${(reopenRate / indexRate).toFixed(2)}x`);
  console.log(`reopen from WAL only: ${replayMs.toFixed(0)} ms (${fmt(replayRate)} keys/s) | ratio ${(replayRate / indexRate).toFixed(2)}x`);
  console.log(`memory per key (heap + array buffers, 8 B key, 16 B value): ${((mem1 - mem0) / count).toFixed(0)} B${globalThis.gc ? '' : ' (run with --expose-gc for a steadier figure)'}`);
  rmSync(dir, { recursive: true, force: true });
  rmSync(walOnlyDir, { recursive: true, force: true });
}

await durablePuts();
await readsAndScans();
await checkpointAndReopen();
