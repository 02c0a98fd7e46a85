/**
 * Chart 2: the cumulative distribution of ack latency (x log), one line per writer count for flushpoint
 * at the smallest record size, with the device's overwrite+fdatasync latency as the baseline and the
 * peers at 64 writers (or the largest count they ran) dotted.
 */
import { formatBytes } from '../format.js';
import type { CdfPoint } from '../latency.js';
import type { BenchReport } from '../report.js';
import { decadeRange, decadeTicks, type PlotSpec, type Series } from './plot.js';
import { colorOf, writerShades } from './palette.js';

const peerWritersCountPreferred = 64;

/** Tick labels at powers of ten: 10us, 1ms, 1s. */
function compactUs(us: number): string {
  if (us >= 1e6) return `${us / 1e6}s`;
  if (us >= 1e3) return `${us / 1e3}ms`;
  return `${us}us`;
}

function points(cdf: readonly CdfPoint[]): [number, number][] {
  return cdf.map(([latencyUs, fraction]) => [latencyUs, fraction]);
}

export function latencyCdfPlot(report: BenchReport, widthPx: number, heightPx: number): PlotSpec {
  const size = Math.min(...report.wal.map((r) => r.recordSizeBytes));
  const walRows = report.wal.filter((r) => r.recordSizeBytes === size);
  const series: Series[] = walRows.map((r, i) => ({
    name: `flushpoint ${formatBytes(size)}, ${r.writersCount} writer${r.writersCount === 1 ? '' : 's'}`,
    color: writerShades[Math.min(writerShades.length - 1, Math.round((i * (writerShades.length - 1)) / Math.max(1, walRows.length - 1)))]!,
    points: points(r.cdf),
  }));
  series.push({ name: 'device 4 KiB overwrite+fdatasync', color: colorOf('device'), dashed: true, points: points(report.device.overwrite.cdf) });
  for (const peer of report.peers) {
    const rows = peer.rows.filter((r) => r.recordSizeBytes === size);
    const row = rows.find((r) => r.writersCount === peerWritersCountPreferred) ?? rows[rows.length - 1];
    if (!row) continue;
    series.push({ name: `${peer.id}, ${row.writersCount} writers`, color: colorOf(peer.id), dotted: true, points: points(row.cdf) });
  }
  const x = decadeRange(series.flatMap((s) => s.points.map((p) => p[0])));
  return {
    title: 'Ack latency CDF (append + waitDurable, and peers\' durable writes)',
    subtitle: `${formatBytes(size)} records; y: fraction acknowledged within x (nines scale: 0.9, 0.99, 0.999 evenly spaced); x log`,
    widthPx,
    heightPx,
    x: { label: 'ack latency', scale: 'log', min: x.min, max: x.max, ticks: decadeTicks(x.min, x.max), tickLabel: compactUs },
    y: { label: 'fraction of writes acknowledged', scale: 'nines', min: 0, max: 0.9999, ticks: [0, 0.5, 0.9, 0.99, 0.999, 0.9999], tickLabel: (v) => String(v) },
    series,
  };
}
