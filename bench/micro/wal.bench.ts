/**
 * Micro-benchmarks of the WAL's CPU paths, with tinybench:
 *  - record encode (header + CRC + copy into a shared-memory chunk) and decode (verify) at 128 B and 4 KiB;
 *  - the flush scheduler's cost per waiter: N waiters registered, one flush completes, all released.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/micro/wal.bench.js [--time-ms N]
 */
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { decodeRecord, encodeRecord, recordBytes } from '../../wal/format.js';
import { FlushScheduler } from '../../wal/flush-scheduler.js';
import type { Clock } from '../../wal/clock.js';
import { figureColumn, renderTable } from '../text-table.js';

interface Row {
  name: string;
  nsPerOp: number;
  opsPerSec: number;
}

const { values } = parseArgs({ options: { 'time-ms': { type: 'string' } } });
const timeMs = Number(values['time-ms'] ?? 500);
const rows: Row[] = [];

async function measure(name: string, opsPerRun: number, fn: () => void | Promise<void>): Promise<void> {
  const bench = new Bench({ time: timeMs, warmupTime: Math.min(100, timeMs / 4) });
  bench.add(name, fn);
  await bench.run();
  const r = bench.getTask(name)?.result;
  if (r === undefined || !('latency' in r)) throw new Error(`${name}: no result`);
  const ns = (r.latency.p50 * 1e6) / opsPerRun;
  rows.push({ name, nsPerOp: ns, opsPerSec: 1e9 / ns });
}

for (const size of [128, 4096]) {
  const payload = new Uint8Array(size).fill(7);
  const recordsPerRun = 256;
  const chunk = new Uint8Array(new SharedArrayBuffer(recordBytes(size) * recordsPerRun));
  const view = new DataView(chunk.buffer);
  let lsn = 1;
  await measure(`encode ${size} B`, recordsPerRun, () => {
    let at = 0;
    for (let i = 0; i < recordsPerRun; i++) at = encodeRecord(chunk, view, at, lsn++, i, payload);
  });
  // decode a chunk of valid records (the recovery and read path)
  let at = 0;
  for (let i = 0; i < recordsPerRun; i++) at = encodeRecord(chunk, view, at, i + 1, i, payload);
  await measure(`decode+verify ${size} B`, recordsPerRun, () => {
    let off = 0;
    for (let i = 0; i < recordsPerRun; i++) {
      const n = decodeRecord(chunk, view, off, chunk.byteLength, i + 1);
      if (n <= 0) throw new Error('decode failed');
      off += n;
    }
  });
}

const immediateClock: Clock = {
  nowMs: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  defer: (fn) => queueMicrotask(fn),
};

for (const waiters of [1, 64, 1024]) {
  await measure(`scheduler: ${waiters} waiters, one flush`, waiters, async () => {
    let last = 0;
    const s = new FlushScheduler({
      source: { freeze: () => last, write: () => Promise.resolve() },
      durableLsn: 0,
      sticky: true,
      what: 'durable',
      clock: immediateClock,
      failureError: (c) => c as Error,
    });
    const ps: Promise<number>[] = [];
    for (let i = 0; i < waiters; i++) ps.push(s.wait(++last));
    await Promise.all(ps);
  });
}

console.log(`WAL micro-benchmarks, node ${process.version}, p50 over ${timeMs} ms per task`);
console.log(
  renderTable<Row>(
    [
      figureColumn('task', (r) => r.name),
      figureColumn('ns per op', (r) => r.nsPerOp.toFixed(1)),
      figureColumn('ops/s', (r) => Math.round(r.opsPerSec).toLocaleString('en-US')),
    ],
    rows,
  ),
);
