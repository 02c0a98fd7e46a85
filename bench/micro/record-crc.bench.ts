/**
 * Micro-benchmark: the CRC-32 of framed records as the WAL's appends store them, per record: the addon's
 * recordCrcFill over a run of records (fs/native/record-crc.c; one call per run, as wal/staging.ts makes
 * it) against zlib.crc32 called from JavaScript once per record (what staging does for records over the
 * addon's bound). The addon computes by carry-less multiplication where the CPU has PCLMULQDQ; run it
 * again with FLUSHPOINT_CRC_TABLE_ONLY=1 for its table (the method is printed).
 *
 *   npm run build && node dist/bench/micro/record-crc.bench.js [--time-ms N]
 */
import zlib from 'node:zlib';
import { recordCrcFiller, recordCrcMethod, type RecordCrcFill } from '../../fs/page-cache.js';
import { recordBytes, RECORD_PAYLOAD_BYTES_OFFSET } from '../../record/format.js';
import { formatRatio } from '../format.js';
import { figureColumn, renderTable } from '../text-table.js';
import { nsPerCall, timeMsFromArgs } from './per-call.js';

const payloadSizesBytes = [128, 1024, 4096, 65536] as const;
const runBytes = 256 * 1024;

interface Row {
  payloadBytes: number;
  addonNs: number;
  zlibNs: number;
}

/** A run of records of `payloadBytes` each, about runBytes in all, CRC words zero. */
function run(payloadBytes: number): { buf: Uint8Array; starts: number[]; size: number } {
  const size = recordBytes(payloadBytes);
  const count = Math.max(1, Math.floor(runBytes / size));
  const buf = new Uint8Array(size * count).map((_, i) => (i * 131) & 255);
  const view = new DataView(buf.buffer);
  const starts = Array.from({ length: count }, (_, i) => i * size);
  for (const s of starts) view.setUint32(s + RECORD_PAYLOAD_BYTES_OFFSET, payloadBytes, true);
  return { buf, starts, size };
}

async function measure(fill: RecordCrcFill, payloadBytes: number, timeMs: number): Promise<Row> {
  const { buf, starts, size } = run(payloadBytes);
  const view = new DataView(buf.buffer);
  fill(buf, 0, buf.length, Number.MAX_SAFE_INTEGER);
  for (const s of starts) {
    if (view.getUint32(s, true) !== zlib.crc32(buf.subarray(s + RECORD_PAYLOAD_BYTES_OFFSET, s + size))) throw new Error(`the addon and zlib.crc32 disagree on a ${payloadBytes} B record`);
  }
  let sink = 0;
  const ns = await nsPerCall(
    {
      addon: () => {
        sink ^= fill(buf, 0, buf.length, Number.MAX_SAFE_INTEGER);
      },
      zlib: () => {
        for (const s of starts) view.setUint32(s, zlib.crc32(buf.subarray(s + RECORD_PAYLOAD_BYTES_OFFSET, s + size)), true);
      },
    },
    starts.length,
    timeMs,
  );
  if (sink === 0.5) console.log(sink); // never true; keeps `sink` observable
  return { payloadBytes, addonNs: ns.addon as number, zlibNs: ns.zlib as number };
}

async function main(): Promise<void> {
  const fill = recordCrcFiller();
  if (fill === null) throw new Error('the addon is not built (npm rebuild)');
  const timeMs = timeMsFromArgs(process.argv.slice(2));
  const rows: Row[] = [];
  for (const p of payloadSizesBytes) rows.push(await measure(fill, p, timeMs));
  console.log(`CRC-32 per framed record: the addon's recordCrcFill (method '${recordCrcMethod()}') vs zlib.crc32 per record, node ${process.version}, p50 of ${timeMs} ms per task`);
  console.log(
    renderTable<Row>(
      [
        figureColumn('payload B', (r) => String(r.payloadBytes)),
        figureColumn('addon ns/record', (r) => r.addonNs.toFixed(1)),
        figureColumn('addon GB/s', (r) => (recordBytes(r.payloadBytes) / r.addonNs).toFixed(2)),
        figureColumn('zlib.crc32 ns/record', (r) => r.zlibNs.toFixed(1)),
        figureColumn('addon speedup', (r) => formatRatio(r.zlibNs / r.addonNs)),
      ],
      rows,
    ),
  );
}

await main();
