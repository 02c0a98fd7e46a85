/**
 * Section 7, the engine (issue 10): Engine on the WAL, measured in the same run as the peers of section 4.
 *
 *   durable puts   closed loop (bench/closed-loop.ts): the engine's put() under a fresh key, measured by
 *                  store-comparison.ts between the WAL alone (append + waitDurable of the same payload,
 *                  what the engine is built on) and the peers at the same size and writer count.
 *   gets, scans    engine vs classic-level on the same keys (one awaited get at a time; full iterator scans).
 *   checkpoint     checkpoint time, reopen time (checkpoint load + WAL replay) beside inserting the same
 *                  keys into the in-memory index with no I/O, reopen from the WAL alone, memory per key.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Engine } from '../engine/index.js';
import { emptyTree } from '../engine/ordered-index.js';
import { runClosedLoop } from './closed-loop.js';
import { ratioOf } from './format.js';
import type { PeerStore } from './peers/peer.js';
import { classicLevelPeer } from './peers/classic-level.js';
import { skipReason } from './peer-runner.js';
import type { BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';
import type { SyncMode } from '../wal/index.js';
import type { CommitWait } from '../fs/file-system.js';

export interface EnginePutMeasurement {
  recordSizeBytes: number;
  writersCount: number;
  opsPerSec: number;
  /** Baseline: the WAL alone (append + waitDurable) at the same size and writers: section 3's row, measured right before. */
  walAloneOpsPerSec: number;
  ratioToWalAlone: number;
  /**
   * Ceiling: one writevSync of `writersCount` records + one fdatasyncSync on a preallocated file (the raw
   * ceiling paired with the WAL row, same run): with that many closed-loop writers no store commits
   * more records per sync, so no store on this disk goes faster. NaN when not measured.
   */
  rawCeilingOpsPerSec: number;
  /**
   * The same row with the WAL's syncMode 'inline' (opt-in: each commit blocks the event loop, as
   * better-sqlite3's synchronous driver does), beside the WAL alone in that mode (section 3's inline
   * row); measured where section 3 has an inline row. Reported, not judged: the default row is.
   */
  inline?: EnginePutTwin;
  /** The same row with the WAL's commitWait 'sleep' (opt-in: the least CPU), beside section 3's sleep row. Reported, not judged. */
  sleep?: EnginePutTwin;
}

/** An engine row measured again with an opt-in WAL mode, beside section 3's row in that mode. */
export interface EnginePutTwin {
  opsPerSec: number;
  walAloneOpsPerSec: number;
  ratioToWalAlone: number;
  rawCeilingOpsPerSec: number;
}

/** The engine's WAL modes a put row runs in (the WAL's defaults unless set). */
export interface EngineWalMode {
  syncMode?: SyncMode;
  commitWait?: CommitWait;
}

export interface EngineReadsResult {
  keysCount: number;
  valueSizeBytes: number;
  getsPerSec: number;
  /** Baseline: classic-level on the same keys, same run. */
  classicLevelGetsPerSec: number;
  getsRatio: number;
  scanEntriesPerSec: number;
  classicLevelScanEntriesPerSec: number;
  scanRatio: number;
}

export interface EngineCheckpointResult {
  keysCount: number;
  checkpointMs: number;
  checkpointBytes: number;
  /** Reopen = open of a location with a checkpoint of every key and nothing after it in the WAL. */
  reopenMs: number;
  reopenKeysPerSec: number;
  /** Baseline: the same keys into the in-memory index with no I/O, measured just before. */
  indexInsertKeysPerSec: number;
  reopenRatio: number;
  /** Open of a location with no checkpoint: replay of the whole WAL (batches of 1,000 keys). */
  walReplayMs: number;
  walReplayKeysPerSec: number;
  walReplayRatio: number;
  /** (heap + array buffers after the fill - before) / keys; NaN when gc() could not be exposed. */
  memoryBytesPerKey: number;
}

/** Gets and scans need classic-level (a dev dependency): without it they are not measured, with the reason. */
export type EngineReads = ({ status: 'ok' } & EngineReadsResult) | { status: 'not-measured'; reason: string };

export interface EngineSection {
  puts: EnginePutMeasurement[];
  reads: EngineReads;
  checkpoint: EngineCheckpointResult;
}

const fillBatchKeysCount = 1000;
const readValueSizeBytes = 100;
const checkpointValueSizeBytes = 16;

function key(n: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  k.writeUInt32BE(n >>> 0, 4);
  return k;
}

function openEngine(dir: string, checkpointEveryBytes?: number, walMode: EngineWalMode = {}): Engine<Buffer, Buffer> {
  return new Engine<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', wal: walMode, ...(checkpointEveryBytes === undefined ? {} : { checkpointEveryBytes }) });
}

async function openEngineStore(dir: string, payload: Buffer, walMode: EngineWalMode): Promise<PeerStore> {
  const db = openEngine(dir, 256 * 1024 * 1024, walMode);
  await db.open();
  let next = 0;
  return { write: () => db.put(key(next++), payload), close: () => db.close() };
}

export function engineStepsCount(): number {
  return 2;
}

/**
 * One durable-put row of the engine, run by store-comparison.ts right after the WAL row at the same
 * record size and writer count (its baseline) and right before the peers, so all three see the same disk.
 */
export async function measureEnginePutRow(dir: string, payload: Buffer, writersCount: number, profile: BenchProfile, progress: Progress, walMode: EngineWalMode = {}): Promise<number> {
  fs.mkdirSync(dir, { recursive: true });
  const store = await openEngineStore(dir, payload, walMode);
  try {
    const r = await runClosedLoop({ writersCount, warmupMs: profile.warmupMs, windowMs: profile.windowMs, write: () => store.write(), onTick: (f) => progress.advance(f) });
    return r.opsPerSec;
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface BatchWriter {
  batch(ops: Array<{ type: 'put'; key: Buffer; value: Buffer }>): Promise<void>;
}

async function fill(db: BatchWriter, count: number, value: Buffer): Promise<void> {
  for (let i = 0; i < count; i += fillBatchKeysCount) {
    const ops: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];
    for (let j = i; j < Math.min(count, i + fillBatchKeysCount); j++) ops.push({ type: 'put', key: key(j), value });
    await db.batch(ops);
  }
}

async function ratePerSec(windowMs: number, round: () => Promise<number>): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < windowMs) n += await round();
  return (n / (performance.now() - t0)) * 1000;
}

async function measureReads(dir: string, profile: BenchProfile): Promise<EngineReads> {
  const keysCount = profile.engineReadKeysCount;
  const value = Buffer.alloc(readValueSizeBytes, 0x61);
  // A dev dependency: imported here, so the rest of the section runs without it.
  let ClassicLevel: typeof import('classic-level').ClassicLevel;
  try {
    ({ ClassicLevel } = await import('classic-level'));
  } catch (err) {
    return { status: 'not-measured', reason: `classic-level: ${skipReason(classicLevelPeer, err)}` };
  }
  const db = openEngine(path.join(dir, 'reads-engine'));
  const cl = new ClassicLevel<Buffer, Buffer>(path.join(dir, 'reads-classic-level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  try {
    await fill(db, keysCount, value);
    await fill(cl, keysCount, value);
    const gets = (get: (k: Buffer) => Promise<unknown>) => {
      let n = 0;
      return ratePerSec(profile.windowMs, async () => {
        for (let i = 0; i < 1000; i++) await get(key((n++ * 7919) % keysCount));
        return 1000;
      });
    };
    const scan = (all: () => Promise<unknown[]>) => ratePerSec(profile.windowMs, async () => (await all()).length);
    const getsPerSec = await gets((k) => db.get(k));
    const classicLevelGetsPerSec = await gets((k) => cl.get(k));
    const scanEntriesPerSec = await scan(() => db.iterator().all());
    const classicLevelScanEntriesPerSec = await scan(() => cl.iterator().all());
    return {
      status: 'ok',
      keysCount,
      valueSizeBytes: readValueSizeBytes,
      getsPerSec,
      classicLevelGetsPerSec,
      getsRatio: ratioOf(getsPerSec, classicLevelGetsPerSec),
      scanEntriesPerSec,
      classicLevelScanEntriesPerSec,
      scanRatio: ratioOf(scanEntriesPerSec, classicLevelScanEntriesPerSec),
    };
  } finally {
    await db.close();
    await cl.close();
  }
}

/** gc() without `node --expose-gc` (npx flushpoint bench runs without it): V8 exposes it to a fresh context once the flag is set. */
function exposedGc(): (() => void) | undefined {
  if (globalThis.gc) return globalThis.gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

function memoryBytes(gc: (() => void) | undefined): number {
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function timeOpen(dir: string): Promise<number> {
  const t0 = performance.now();
  const db = openEngine(dir);
  await db.open();
  const ms = performance.now() - t0;
  await db.close();
  return ms;
}

async function measureCheckpoint(dir: string, profile: BenchProfile): Promise<EngineCheckpointResult> {
  const keysCount = profile.engineCheckpointKeysCount;
  const value = Buffer.alloc(checkpointValueSizeBytes, 0x61);
  // Baseline: the same keys into the in-memory index, no I/O.
  const t0 = performance.now();
  const tree = emptyTree();
  for (let i = 0; i < keysCount; i++) tree.set(key(i).toString('latin1'), Buffer.from(value), true);
  const indexInsertKeysPerSec = (keysCount / (performance.now() - t0)) * 1000;
  tree.clear();

  const withCheckpoint = path.join(dir, 'checkpoint');
  const gc = exposedGc();
  const mem0 = memoryBytes(gc);
  const db = openEngine(withCheckpoint, 2 ** 40);
  await fill(db, keysCount, value);
  const mem1 = memoryBytes(gc);
  const ck = await db.checkpoint();
  await db.close();
  const reopenMs = await timeOpen(withCheckpoint);
  fs.rmSync(withCheckpoint, { recursive: true, force: true });

  const walOnly = path.join(dir, 'wal-only');
  const w = openEngine(walOnly, 2 ** 40);
  await fill(w, keysCount, value);
  await w.close();
  const walReplayMs = await timeOpen(walOnly);
  fs.rmSync(walOnly, { recursive: true, force: true });

  const reopenKeysPerSec = (keysCount / reopenMs) * 1000;
  const walReplayKeysPerSec = (keysCount / walReplayMs) * 1000;
  return {
    keysCount,
    checkpointMs: ck.durationMs,
    checkpointBytes: ck.bytes,
    reopenMs,
    reopenKeysPerSec,
    indexInsertKeysPerSec,
    reopenRatio: ratioOf(reopenKeysPerSec, indexInsertKeysPerSec),
    walReplayMs,
    walReplayKeysPerSec,
    walReplayRatio: ratioOf(walReplayKeysPerSec, indexInsertKeysPerSec),
    memoryBytesPerKey: gc ? (mem1 - mem0) / keysCount : Number.NaN,
  };
}

/** The rest of the section; `puts` were measured beside the WAL and the peers (store-comparison.ts). */
export async function measureEngine(dir: string, profile: BenchProfile, progress: Progress, puts: EnginePutMeasurement[]): Promise<EngineSection> {
  progress.step(`engine gets and scans, ${profile.engineReadKeysCount} keys`);
  const reads = await measureReads(dir, profile);
  progress.step(`engine checkpoint and reopen, ${profile.engineCheckpointKeysCount} keys`);
  const checkpoint = await measureCheckpoint(dir, profile);
  return { puts, reads, checkpoint };
}
