/**
 * Chart 1: durable records per second against the number of closed-loop writers (both axes log), for
 * flushpoint, the raw group-commit ceiling at batch = writers, the device's one-at-a-time rate, and
 * each peer. 128 B records are solid lines, larger records dashed.
 */
import { formatBytes } from '../format.js';
import type { BenchReport } from '../report.js';
import { decadeRange, decadeTicks, type PlotSpec, type Series } from './plot.js';
import { colorOf } from './palette.js';

function compactRate(value: number): string {
  if (value >= 1e6) return `${value / 1e6}M`;
  if (value >= 1e3) return `${value / 1e3}k`;
  return String(value);
}

export function throughputPlot(report: BenchReport, widthPx: number, heightPx: number): PlotSpec {
  const sizes = [...new Set(report.wal.map((r) => r.recordSizeBytes))].sort((a, b) => a - b);
  const writerCounts = [...new Set([...report.wal.map((r) => r.writersCount), ...report.peers.flatMap((p) => p.rows.map((r) => r.writersCount))])].sort((a, b) => a - b);
  const series: Series[] = [];
  sizes.forEach((size, sizeIndex) => {
    const dashed = sizeIndex > 0;
    const label = formatBytes(size);
    series.push({
      name: `flushpoint ${label}`,
      color: colorOf('flushpoint'),
      dashed,
      markers: true,
      points: report.wal.filter((r) => r.recordSizeBytes === size).map((r) => [r.writersCount, r.opsPerSec]),
    });
    series.push({
      name: `raw ceiling ${label}, batch = writers`,
      color: colorOf('raw'),
      dashed,
      points: report.rawCeiling.filter((r) => r.recordSizeBytes === size && writerCounts.includes(r.batchRecordsCount)).map((r) => [r.batchRecordsCount, r.recordsPerSec]),
    });
    for (const peer of report.peers) {
      const points = peer.rows.filter((r) => r.recordSizeBytes === size).map((r): [number, number] => [r.writersCount, r.opsPerSec]);
      if (points.length === 0 && peer.status === 'ok') continue;
      series.push({ name: `${peer.id} ${label}${peer.status === 'ok' ? '' : ` (${peer.status})`}`, color: colorOf(peer.id), dashed, markers: true, points });
    }
  });
  const ceilings = new Map(report.wal.map((r) => [r.writersCount, r.loopCeilingOpsPerSec]));
  series.push({
    name: 'ack ceiling (harness, no I/O)',
    color: colorOf('ceiling'),
    dotted: true,
    points: [...ceilings].sort((a, b) => a[0] - b[0]),
  });
  const xMax = Math.max(2, ...writerCounts);
  series.push({
    name: 'device 4 KiB overwrite+fdatasync',
    color: colorOf('device'),
    dotted: true,
    points: [
      [1, report.device.overwrite.opsPerSec],
      [xMax, report.device.overwrite.opsPerSec],
    ],
  });
  const y = decadeRange(series.flatMap((s) => s.points.map((p) => p[1])));
  return {
    title: 'Durable records per second vs concurrent writers',
    subtitle: `${report.profile} run ${report.startedAt.slice(0, 19)}Z on ${report.device.info.blockDevice} (${report.device.info.fileSystem}), both axes log`,
    widthPx,
    heightPx,
    x: { label: 'closed-loop writers (raw ceiling: records per writev+fdatasync)', scale: 'log', min: 0.8, max: xMax * 1.25, ticks: writerCounts.length > 0 ? writerCounts : [1], tickLabel: String },
    y: { label: 'durable records/s', scale: 'log', min: y.min, max: y.max, ticks: decadeTicks(y.min, y.max), tickLabel: compactRate },
    series,
  };
}
