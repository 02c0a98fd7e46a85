/**
 * Drain latency under 64 writers, beside one WAL sync plus one idle backup flush measured in the same
 * run (issue 11: a drain should cost about what one sync plus one flush cost, target within 2x).
 *
 *   npm run bench:drain [-- --rounds N] [--dir DIR] [--writers N]
 *
 * Each round: with the writers stopped, one put (one record, one group commit: one WAL sync) and one
 * backup forceFlush of that record (the baseline); then 64 writers put in a loop, and after
 * WRITERS_WARMUP_MS a drain is timed; the writers stop on ENGINE_DRAINING, the engine resumes.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isFlushpointError } from '../core/errors.js';
import { Engine } from '../engine/index.js';
import { percentile } from './latency.js';

/** How long the writers run before the drain is requested, in milliseconds. */
const WRITERS_WARMUP_MS = 150;
/** The drain's own timeout, in milliseconds (the benchmark fails rather than report a timed-out drain). */
const DRAIN_TIMEOUT_MS = 60_000;
/** Backup flush interval, in milliseconds: long, so that only forced flushes run. */
const IDLE_FLUSH_INTERVAL_MS = 3_600_000;
const VALUE_BYTES = 128;

export interface DrainBenchOptions {
  rounds: number;
  writers: number;
  /** Directory the run's scratch directory is created in. */
  baseDir: string;
}

export interface DrainBenchResult {
  rounds: number;
  puts: number;
  drainMs: Float64Array;
  walSyncMs: Float64Array;
  idleFlushMs: Float64Array;
  baselineMs: Float64Array;
}

function isDraining(err: unknown): boolean {
  return isFlushpointError(err, 'ENGINE_DRAINING') || isFlushpointError((err as { cause?: unknown }).cause, 'ENGINE_DRAINING');
}

export async function runDrainBench(o: DrainBenchOptions): Promise<DrainBenchResult> {
  const dir = await fsp.mkdtemp(path.join(o.baseDir, 'fpdrain-'));
  const db = new Engine(path.join(dir, 'db'), { valueEncoding: 'utf8', backup: { dir: path.join(dir, 'backup'), flushIntervalMs: IDLE_FLUSH_INTERVAL_MS } });
  const value = 'x'.repeat(VALUE_BYTES);
  const drainMs: number[] = [];
  const walSyncMs: number[] = [];
  const idleFlushMs: number[] = [];
  const baselineMs: number[] = [];
  let puts = 0;
  try {
    await db.open();
    const backup = db.backup;
    if (backup === null || backup === undefined) throw new Error('drain-bench: the engine has no backup sink');
    for (let r = 0; r < o.rounds; r++) {
      const t0 = performance.now();
      await db.put(`baseline-${r}`, value);
      const t1 = performance.now();
      await backup.forceFlush();
      const t2 = performance.now();
      walSyncMs.push(t1 - t0);
      idleFlushMs.push(t2 - t1);
      baselineMs.push(t2 - t0);

      let running = true;
      let resumeNow = (): void => {};
      const resumed = new Promise<void>((res) => (resumeNow = res));
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; running; i++) {
          try {
            await db.put(`w${w}-${i}`, value);
            puts++;
          } catch (err) {
            if (!isDraining(err)) throw err;
            await resumed;
          }
        }
      };
      const writers = Array.from({ length: o.writers }, (_, w) => writer(w));
      await new Promise((res) => setTimeout(res, WRITERS_WARMUP_MS));
      const t = performance.now();
      const d = await db.drain({ timeoutMs: DRAIN_TIMEOUT_MS });
      drainMs.push(performance.now() - t);
      if (d.backupCheckpointLsn === null || d.backupCheckpointLsn < d.walDurableLsn) throw new Error(`drain-bench: drain answered backup checkpoint ${d.backupCheckpointLsn} below the durable LSN ${d.walDurableLsn}`);
      running = false;
      db.resume();
      resumeNow();
      await Promise.all(writers);
    }
  } finally {
    await db.close().catch(() => {});
    await fsp.rm(dir, { recursive: true, force: true });
  }
  const sorted = (a: number[]): Float64Array => Float64Array.from(a).sort();
  return { rounds: o.rounds, puts, drainMs: sorted(drainMs), walSyncMs: sorted(walSyncMs), idleFlushMs: sorted(idleFlushMs), baselineMs: sorted(baselineMs) };
}

export function renderDrainBench(r: DrainBenchResult, writers: number, baseDir: string): string {
  const f = (x: number): string => x.toFixed(2);
  const row = (label: string, s: Float64Array): string => `${label.padEnd(32)} p50 ${f(percentile(s, 0.5))} ms  p99 ${f(percentile(s, 0.99))} ms\n`;
  const ratio = (p: number): string => f(percentile(r.drainMs, p) / percentile(r.baselineMs, p));
  return (
    `rounds ${r.rounds}, writers ${writers}, puts ${r.puts}, dir ${baseDir}\n` +
    row(`drain under ${writers} writers`, r.drainMs) +
    row('baseline: 1 WAL sync', r.walSyncMs) +
    row('baseline: 1 idle backup flush', r.idleFlushMs) +
    row('baseline: sync + flush', r.baselineMs) +
    `${'ratio drain/baseline'.padEnd(32)} p50 ${ratio(0.5)}x  p99 ${ratio(0.99)}x  (target <= 2x)\n`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '40' }, writers: { type: 'string', default: '64' }, dir: { type: 'string' } } });
  const rounds = Number(values.rounds);
  const writers = Number(values.writers);
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive integer, got ${values.rounds}`);
  if (!Number.isInteger(writers) || writers < 1) throw new RangeError(`--writers must be a positive integer, got ${values.writers}`);
  const baseDir = path.resolve(values.dir ?? process.env.BENCH_DIR ?? os.tmpdir());
  const result = await runDrainBench({ rounds, writers, baseDir });
  process.stdout.write(renderDrainBench(result, writers, baseDir));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
