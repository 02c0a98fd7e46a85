/**
 * Micro-benchmark: CRC-32 of one buffer, the `crc-32` package's buf() (pure JS, no native call) against
 * Node's zlib.crc32 (native, 20.15+), at record-like sizes. It prints the crossover: the smallest size
 * from which zlib.crc32 stays faster. wal/crc.ts uses that as CRC_NATIVE_THRESHOLD_BYTES.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/micro/crc.bench.js [--time-ms N]
 *
 * One call at 16 B takes tens of nanoseconds, less than reading the clock, so each timed task runs a
 * loop of calls (about 256 KiB of input) and the figures are per call. Both implementations must agree
 * on every buffer before anything is timed.
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import CRC32 from 'crc-32';
import { formatRatio } from '../format.js';
import { figureColumn, renderTable } from '../text-table.js';
import { nsPerCall, timeMsFromArgs } from './per-call.js';

export const crcSizesBytes = [16, 64, 128, 256, 1024, 4096, 65536, 1048576] as const;

const bytesPerTaskRun = 256 * 1024;
const callsPerTaskRunMax = 20_000;

type Crc = (data: Uint8Array) => number;

const nativeCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

const implementations: Record<'js' | 'native', Crc> = {
  js: (data) => CRC32.buf(data, 0) >>> 0,
  native: (data) => nativeCrc32!(data, 0) >>> 0,
};

export interface CrcSizeResult {
  sizeBytes: number;
  jsNsPerCall: number;
  nativeNsPerCall: number;
  /** js time / native time: above 1, zlib.crc32 is faster. */
  nativeSpeedup: number;
}

let sink = 0; // results are folded in here so no call can be optimised away

async function measureSize(sizeBytes: number, timeMs: number): Promise<CrcSizeResult> {
  const data = crypto.randomBytes(sizeBytes);
  const expected = implementations.native(data);
  if (implementations.js(data) !== expected) throw new Error(`crc-32 and zlib.crc32 disagree on a ${sizeBytes} B buffer`);
  const callsCount = Math.max(1, Math.min(callsPerTaskRunMax, Math.floor(bytesPerTaskRun / sizeBytes)));
  const loop = (crc: Crc) => () => {
    let acc = 0;
    for (let i = 0; i < callsCount; i++) acc ^= crc(data);
    sink ^= acc;
  };
  const ns = await nsPerCall({ js: loop(implementations.js), native: loop(implementations.native) }, callsCount, timeMs);
  const jsNsPerCall = ns.js!;
  const nativeNsPerCall = ns.native!;
  return { sizeBytes, jsNsPerCall, nativeNsPerCall, nativeSpeedup: jsNsPerCall / nativeNsPerCall };
}

/** The smallest size from which native stays faster at every larger size measured; undefined if never. */
export function crossoverBytes(results: readonly CrcSizeResult[]): number | undefined {
  const sorted = [...results].sort((a, b) => a.sizeBytes - b.sizeBytes);
  let crossover: number | undefined;
  for (const r of sorted) {
    if (r.nativeSpeedup > 1) crossover ??= r.sizeBytes;
    else crossover = undefined;
  }
  return crossover;
}

export async function runCrcBench(timeMs: number, sizes: readonly number[] = crcSizesBytes): Promise<CrcSizeResult[]> {
  if (!nativeCrc32) throw new Error(`zlib.crc32 is missing in Node ${process.version} (it needs 20.15 or later)`);
  const results: CrcSizeResult[] = [];
  for (const sizeBytes of sizes) results.push(await measureSize(sizeBytes, timeMs));
  return results;
}

function table(results: readonly CrcSizeResult[]): string {
  const mbPerSec = (bytes: number, ns: number): string => `${Math.round((bytes / ns) * 1000).toLocaleString('en-US')} MB/s`;
  return renderTable<CrcSizeResult>(
    [
      figureColumn('size B', (r) => String(r.sizeBytes)),
      figureColumn('crc-32 buf() ns', (r) => r.jsNsPerCall.toFixed(1)),
      figureColumn('crc-32 MB/s', (r) => mbPerSec(r.sizeBytes, r.jsNsPerCall)),
      figureColumn('zlib.crc32 ns', (r) => r.nativeNsPerCall.toFixed(1)),
      figureColumn('zlib MB/s', (r) => mbPerSec(r.sizeBytes, r.nativeNsPerCall)),
      figureColumn('zlib speedup', (r) => formatRatio(r.nativeSpeedup)),
    ],
    results,
  );
}

async function main(): Promise<void> {
  const timeMs = timeMsFromArgs(process.argv.slice(2));
  console.log(`CRC-32: crc-32 buf() vs zlib.crc32, node ${process.version}, p50 of ${timeMs} ms per task (per call)`);
  const results = await runCrcBench(timeMs);
  console.log(table(results));
  const crossover = crossoverBytes(results);
  const below = crossover === undefined ? undefined : [...results].reverse().find((r) => r.sizeBytes < crossover);
  if (crossover === undefined) {
    console.log('\ncrossover: none (crc-32 is at least as fast at every size measured)');
    return;
  }
  // Narrow the crossover between the last size crc-32 won and the first zlib.crc32 won.
  const lower = below?.sizeBytes ?? 0;
  const steps = [1, 2, 3, 4, 5, 6, 7].map((i) => Math.round((lower + ((crossover - lower) * i) / 8) / 8) * 8).filter((s) => s > lower && s < crossover);
  const refined = steps.length === 0 ? [] : await runCrcBench(timeMs, [...new Set(steps)]);
  if (refined.length > 0) console.log(`\nbetween ${lower} and ${crossover} B:\n${table(refined)}`);
  const fine = crossoverBytes([...results, ...refined]) ?? crossover;
  console.log(`\ncrossover: zlib.crc32 is faster from ${fine} B on (coarse sizes: between ${lower} and ${crossover} B)`);
  if (sink === 0.5) console.log(sink); // never true; keeps `sink` observable
}

await main();
