/**
 * The per-commit histograms (fsync seconds, records per commit) keep their samples as numbers on the
 * commit path and fold them in at a scrape, or when SAMPLES_PENDING_COUNT_MAX wait (engine/metrics.ts):
 * the counts a scrape shows are exact on both sides of that boundary.
 */
import { describe, expect, it } from 'vitest';
import type { Histogram } from 'prom-client';
import { createEngineMetrics } from '../engine/metrics.js';
import { SyncTimer } from '../engine/metrics-fs.js';
import { SAMPLES_PENDING_COUNT_MAX } from '../engine/limits.js';
import { MemoryFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';

async function histogramCounts(h: Histogram): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await h.get()).values) {
    if (v.metricName?.endsWith('_count')) out.set(String(v.labels.op ?? ''), v.value);
    if (v.metricName?.endsWith('_sum') && v.labels.op === undefined) out.set('sum', v.value);
  }
  return out;
}

describe('engine metrics fed per commit', () => {
  it('count every commit and every record exactly, before and after the pending samples fold on their own', async () => {
    const timer = new SyncTimer();
    const wal = await Wal.open({ dir: '/wal', fs: timer.wrap(new MemoryFileSystem()), segmentSizeBytes: 4 * 1024 * 1024 });
    const metrics = createEngineMetrics({ wal, sink: null, syncTimer: timer });
    const fsync = metrics.registry.getSingleMetric('flushpoint_wal_fsync_seconds') as Histogram;
    const perCommit = metrics.registry.getSingleMetric('flushpoint_wal_records_per_commit') as Histogram;
    const payload = new Uint8Array(16);
    let records = 0;
    const commit = async (n: number): Promise<void> => {
      const lsns = Array.from({ length: n }, () => wal.append(payload));
      records += n;
      await wal.waitDurable(lsns[lsns.length - 1] as number);
    };
    await commit(3);
    await commit(1);
    let c = await histogramCounts(fsync);
    expect(c.get('commit')).toBe(wal.stats().syncs);
    expect((await histogramCounts(perCommit)).get('sum')).toBe(records);
    // More commits than the pending buffer holds, with no scrape between: they fold on their own.
    for (let i = 0; i < SAMPLES_PENDING_COUNT_MAX + 10; i++) await commit(1 + (i % 3));
    c = await histogramCounts(fsync);
    expect(wal.stats().syncs).toBeGreaterThan(SAMPLES_PENDING_COUNT_MAX);
    expect(c.get('commit')).toBe(wal.stats().syncs);
    const r = await histogramCounts(perCommit);
    expect(r.get('')).toBe(wal.stats().syncs);
    expect(r.get('sum')).toBe(records);
    metrics.close();
    await wal.close();
  });
});
