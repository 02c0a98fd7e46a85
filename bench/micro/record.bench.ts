/**
 * Micro-benchmark: encoding and decoding (verifying) one WAL record, the per-record CPU cost of append
 * and of recovery, at the sizes the WAL benchmark uses and a few more. Each figure is shown beside the
 * cost of copying the same payload (the least any encoder must do) and the ratio.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/micro/record.bench.js [--time-ms N]
 */
import crypto from 'node:crypto';
import { decodeRecord, encodeRecord, recordBytes } from '../../record/format.js';
import { formatRatio } from '../format.js';
import { figureColumn, renderTable } from '../text-table.js';
import { nsPerCall, timeMsFromArgs } from './per-call.js';

const payloadSizesBytes = [16, 128, 1024, 4096, 65536] as const;
const bytesPerTaskRun = 1024 * 1024;

interface RecordResult {
  payloadBytes: number;
  copyNs: number;
  encodeNs: number;
  decodeNs: number;
}

async function measure(payloadBytes: number, timeMs: number): Promise<RecordResult> {
  const size = recordBytes(payloadBytes);
  const recordsCount = Math.max(1, Math.floor(bytesPerTaskRun / size));
  const out = new Uint8Array(size * recordsCount);
  const view = new DataView(out.buffer);
  const payload = crypto.randomBytes(payloadBytes);
  const firstLsn = 1_000_000;
  const salt = 0x5a17_5a17; // a segment's salt (wal/format.ts)
  const encodeAll = (): void => {
    let offset = 0;
    for (let i = 0; i < recordsCount; i++) offset = encodeRecord(out, view, offset, firstLsn + i, 0, salt, payload);
  };
  encodeAll();
  const decodeAll = (): void => {
    let offset = 0;
    for (let i = 0; i < recordsCount; i++) {
      const n = decodeRecord(out, view, offset, out.length, firstLsn + i, salt);
      if (n <= 0) throw new Error(`record ${i} did not decode (${n})`);
      offset += n;
    }
  };
  decodeAll(); // proves the encoded buffer is valid before anything is timed
  const copyAll = (): void => {
    for (let i = 0; i < recordsCount; i++) out.set(payload, i * size + 24);
  };
  const ns = await nsPerCall({ copy: copyAll, encode: encodeAll, decode: decodeAll }, recordsCount, timeMs);
  encodeAll(); // the copy task overwrote payload bytes only; re-encode so the buffer stays valid
  return { payloadBytes, copyNs: ns.copy!, encodeNs: ns.encode!, decodeNs: ns.decode! };
}

async function main(): Promise<void> {
  const timeMs = timeMsFromArgs(process.argv.slice(2));
  console.log(`WAL record encode/decode (CRC included), node ${process.version}, p50 of ${timeMs} ms per task (per record)`);
  const results: RecordResult[] = [];
  for (const size of payloadSizesBytes) results.push(await measure(size, timeMs));
  const mbPerSec = (bytes: number, ns: number): string => `${Math.round((bytes / ns) * 1000).toLocaleString('en-US')} MB/s`;
  console.log(
    renderTable<RecordResult>(
      [
        figureColumn('payload B', (r) => String(r.payloadBytes)),
        figureColumn('copy ns', (r) => r.copyNs.toFixed(1)),
        figureColumn('encode ns', (r) => r.encodeNs.toFixed(1)),
        figureColumn('encode vs copy', (r) => formatRatio(r.encodeNs / r.copyNs)),
        figureColumn('decode ns', (r) => r.decodeNs.toFixed(1)),
        figureColumn('decode MB/s', (r) => mbPerSec(recordBytes(r.payloadBytes), r.decodeNs)),
        figureColumn('decode vs copy', (r) => formatRatio(r.decodeNs / r.copyNs)),
      ],
      results,
    ),
  );
}

await main();
