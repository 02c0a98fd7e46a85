/**
 * The engine's durable puts beside what bounds them, in one process, for A/B runs of engine changes:
 *
 *   engine   Engine.put() of the payload under a fresh 8-byte key, closed loop (bench/closed-loop.ts)
 *   wal      the WAL alone: wal.waitDurable(wal.append(payload)), same loop (section 3's row)
 *   sqlite   better-sqlite3 batched (WAL, synchronous=FULL, one transaction per drain): the best peer
 *   raw      writevSync of N records + fdatasyncSync on a preallocated file, N = writers (section 2)
 *
 * Per row: ops/s, and the main thread's busy time per op (event-loop utilization x window / ops), the
 * CPU a put costs the event loop. Stores alternate within a row, so all see the same disk.
 *
 *   node dist/bench/engine-ab.js [--sizes 128,4096] [--writers 1,64] [--stores engine,wal,sqlite,raw]
 *                                [--window-ms 3000] [--warmup-ms 500] [--rounds 1] [--dir data/ab] [--json]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine } from '../engine/index.js';
import { Wal } from '../wal/index.js';
import { runClosedLoop } from './closed-loop.js';
import { betterSqlite3BatchedPeer } from './peers/better-sqlite3.js';
import type { PeerStore } from './peers/peer.js';
import { RawBatchLoop, RawFile } from './raw-ceiling.js';

type StoreName = 'engine' | 'wal' | 'sqlite' | 'raw';

interface Row {
  store: StoreName;
  recordSizeBytes: number;
  writersCount: number;
  round: number;
  opsPerSec: number;
  /** Main-thread busy microseconds per op (NaN for raw: it blocks the thread by design). */
  busyUsPerOp: number;
}

function argOf(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

function numbersOf(text: string): number[] {
  return text.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`not a positive integer: ${s}`);
    return n;
  });
}

function key(n: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  k.writeUInt32BE(n >>> 0, 4);
  return k;
}

async function openStore(store: Exclude<StoreName, 'raw'>, dir: string, payload: Buffer): Promise<PeerStore> {
  if (store === 'engine') {
    const db = new Engine<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', checkpointEveryBytes: 256 * 1024 * 1024 });
    await db.open();
    let next = 0;
    return { write: () => db.put(key(next++), payload), close: () => db.close() };
  }
  if (store === 'wal') {
    const wal = await Wal.open({ dir });
    return { write: () => wal.waitDurable(wal.append(payload)), close: () => wal.close() };
  }
  const open = await betterSqlite3BatchedPeer.load();
  return open(dir, payload);
}

async function measure(store: StoreName, dir: string, payload: Buffer, writersCount: number, warmupMs: number, windowMs: number): Promise<{ opsPerSec: number; busyUsPerOp: number }> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  try {
    if (store === 'raw') {
      const file = new RawFile(path.join(dir, 'raw.dat'), 64 * 1024 * 1024);
      try {
        const loop = new RawBatchLoop(file, payload.byteLength, writersCount);
        await loop.runFor(warmupMs * 1000);
        loop.reset();
        await loop.runFor(windowMs * 1000);
        return { opsPerSec: loop.result().recordsPerSec, busyUsPerOp: Number.NaN };
      } finally {
        file.close();
      }
    }
    const s = await openStore(store, dir, payload);
    let elu0 = performance.eventLoopUtilization();
    let elu = elu0;
    try {
      const r = await runClosedLoop({
        writersCount,
        warmupMs,
        windowMs,
        write: () => s.write(),
        onWindowStart: () => (elu0 = performance.eventLoopUtilization()),
        onWindowEnd: () => (elu = performance.eventLoopUtilization(elu0)),
      });
      return { opsPerSec: r.opsPerSec, busyUsPerOp: (elu.active * 1000) / r.opsCount };
    } finally {
      await s.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes = numbersOf(argOf('sizes', '128,4096'));
  const writers = numbersOf(argOf('writers', '1,64'));
  const stores = argOf('stores', 'engine,wal,sqlite,raw').split(',') as StoreName[];
  const windowMs = Number(argOf('window-ms', '3000'));
  const warmupMs = Number(argOf('warmup-ms', '500'));
  const rounds = Number(argOf('rounds', '1'));
  const dir = path.resolve(argOf('dir', 'data/ab'));
  const rows: Row[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const recordSizeBytes of sizes) {
      const payload = crypto.randomBytes(recordSizeBytes);
      for (const writersCount of writers) {
        for (const store of stores) {
          const m = await measure(store, path.join(dir, `${store}-${process.pid}`), payload, writersCount, warmupMs, windowMs);
          const row = { store, recordSizeBytes, writersCount, round, ...m };
          rows.push(row);
          if (!process.argv.includes('--json')) {
            console.log(`${store.padEnd(7)} ${String(recordSizeBytes).padStart(5)} B x ${String(writersCount).padStart(3)}  ${m.opsPerSec.toFixed(0).padStart(8)} ops/s  ${m.busyUsPerOp.toFixed(2).padStart(7)} us busy/op`);
          }
        }
      }
    }
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
