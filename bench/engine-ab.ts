/**
 * The engine's durable puts beside what bounds them, in one process, for A/B runs of engine changes:
 *
 *   engine   Engine.put() of the payload under a fresh 8-byte key, closed loop (bench/closed-loop.ts)
 *   wal      the WAL alone: wal.waitDurable(wal.append(payload)), same loop (section 3's row)
 *   engine-inline, wal-inline   the same with the WAL's syncMode 'inline' (each commit blocks the loop)
 *   sqlite   better-sqlite3 batched (WAL, synchronous=FULL, one transaction per drain): the best peer
 *   raw      writevSync of N records + fdatasyncSync on a preallocated file, N = writers (section 2)
 *
 * Per row: ops/s; the main thread's CPU time per op (user + system, from /proc/self/task/<pid>/stat, so
 * time the thread waited for a core on a loaded machine is not counted; Linux only, NaN elsewhere), the
 * CPU a put costs the event loop; and its busy time per op (event-loop utilization x window / ops),
 * which does count such waits. Stores alternate within a row, so all see the same disk.
 *
 *   node dist/bench/engine-ab.js [--sizes 128,4096] [--writers 1,64] [--stores engine,wal,engine-inline,wal-inline,sqlite,raw]
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

type StoreName = 'engine' | 'wal' | 'engine-inline' | 'wal-inline' | 'sqlite' | 'raw';

interface Row {
  store: StoreName;
  recordSizeBytes: number;
  writersCount: number;
  round: number;
  opsPerSec: number;
  /** Main-thread CPU microseconds per op (NaN for raw: it blocks the thread by design). */
  cpuUsPerOp: number;
  /** Main-thread busy (not idle in the event loop) microseconds per op (NaN for raw). */
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

const clockTicksPerSec = 100; // USER_HZ: the unit of utime/stime in /proc on Linux

/** CPU time of the main thread so far, in microseconds (NaN where /proc is not there). */
function mainThreadCpuUs(): number {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
    // Fields after the command name, which is in parentheses and may hold spaces: state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / clockTicksPerSec) * 1e6;
  } catch {
    return Number.NaN;
  }
}

function key(n: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  k.writeUInt32BE(n >>> 0, 4);
  return k;
}

async function openStore(store: Exclude<StoreName, 'raw'>, dir: string, payload: Buffer): Promise<PeerStore> {
  const syncMode = store.endsWith('-inline') ? 'inline' : 'worker';
  if (store === 'engine' || store === 'engine-inline') {
    const db = new Engine<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', checkpointEveryBytes: 256 * 1024 * 1024, wal: { syncMode } });
    await db.open();
    let next = 0;
    return { write: () => db.put(key(next++), payload), close: () => db.close() };
  }
  if (store === 'wal' || store === 'wal-inline') {
    const wal = await Wal.open({ dir, syncMode });
    return { write: () => wal.waitDurable(wal.append(payload)), close: () => wal.close() };
  }
  const open = await betterSqlite3BatchedPeer.load();
  return open(dir, payload);
}

async function measure(store: StoreName, dir: string, payload: Buffer, writersCount: number, warmupMs: number, windowMs: number): Promise<{ opsPerSec: number; cpuUsPerOp: number; busyUsPerOp: number }> {
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
        return { opsPerSec: loop.result().recordsPerSec, cpuUsPerOp: Number.NaN, busyUsPerOp: Number.NaN };
      } finally {
        file.close();
      }
    }
    const s = await openStore(store, dir, payload);
    let elu0 = performance.eventLoopUtilization();
    let elu = elu0;
    let cpu0 = 0;
    let cpuUs = 0;
    try {
      const r = await runClosedLoop({
        writersCount,
        warmupMs,
        windowMs,
        write: () => s.write(),
        onWindowStart: () => {
          elu0 = performance.eventLoopUtilization();
          cpu0 = mainThreadCpuUs();
        },
        onWindowEnd: () => {
          elu = performance.eventLoopUtilization(elu0);
          cpuUs = mainThreadCpuUs() - cpu0;
        },
      });
      return { opsPerSec: r.opsPerSec, cpuUsPerOp: cpuUs / r.opsCount, busyUsPerOp: (elu.active * 1000) / r.opsCount };
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
            console.log(`${store.padEnd(13)} ${String(recordSizeBytes).padStart(5)} B x ${String(writersCount).padStart(3)}  ${m.opsPerSec.toFixed(0).padStart(8)} ops/s  ${m.cpuUsPerOp.toFixed(2).padStart(7)} us cpu/op  ${m.busyUsPerOp.toFixed(2).padStart(7)} us busy/op`);
          }
        }
      }
    }
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
