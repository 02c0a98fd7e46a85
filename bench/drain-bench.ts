/**
 * Drain latency under 64 writers, beside one WAL sync plus one idle backup flush measured in the same
 * run (issue 11: a drain should cost about what one sync plus one flush cost, target within 2x).
 *
 *   npm run bench:drain [-- --rounds N] [--dir DIR] [--writers N] [--flush-interval-ms MS] [--load-ms MS]
 *
 * The backup sink runs with its defaults (as a user runs it) unless --flush-interval-ms is given. Each
 * round: once the sink is idle and caught up, one put (one record, one group commit: one WAL sync) and
 * one backup forceFlush of that record (the baseline); then the writers put in a loop, and after
 * WRITERS_WARMUP_MS a drain is timed; the writers stop on ENGINE_DRAINING, the engine resumes. The
 * report says whether the target (p50 and p99 both within 2x) was met in this run. Then the writers run
 * for --load-ms with the sink attached, and the report gives the WAL's throughput (puts/s) beside the
 * sink's automatic flushes and files per second, which is what the sink's triggers cost.
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
/** The target: drain p50 and p99 at most this many times the baseline's. */
const TARGET_RATIO_MAX = 2;
/** Poll step while waiting for the sink to be idle and caught up before a baseline, in milliseconds. */
const IDLE_POLL_MS = 1;
const VALUE_BYTES = 128;

export interface DrainBenchOptions {
  rounds: number;
  writers: number;
  /** Directory the run's scratch directory is created in. */
  baseDir: string;
  /** The sink's flushIntervalMs; undefined: its default. */
  flushIntervalMs?: number | undefined;
  /** How long the throughput phase runs, in milliseconds (0: skipped). */
  loadMs: number;
}

export interface LoadResult {
  durationMs: number;
  puts: number;
  /** Backup flushes and files the sink's triggers made during the phase. */
  flushes: number;
  files: number;
  bytes: number;
}

export interface DrainBenchResult {
  rounds: number;
  puts: number;
  drainMs: Float64Array;
  walSyncMs: Float64Array;
  idleFlushMs: Float64Array;
  baselineMs: Float64Array;
  /** Estimated bytes durable in the WAL and not backed up when each drain was called. */
  backlogBytes: Float64Array;
  /** Automatic flushes that ran during the warmups (before the drains), all rounds together. */
  warmupFlushes: number;
  load: LoadResult | null;
}

function isDraining(err: unknown): boolean {
  return isFlushpointError(err, 'ENGINE_DRAINING') || isFlushpointError((err as { cause?: unknown }).cause, 'ENGINE_DRAINING');
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

export async function runDrainBench(o: DrainBenchOptions): Promise<DrainBenchResult> {
  const dir = await fsp.mkdtemp(path.join(o.baseDir, 'fpdrain-'));
  const backupOptions = { dir: path.join(dir, 'backup'), ...(o.flushIntervalMs === undefined ? {} : { flushIntervalMs: o.flushIntervalMs }) };
  const db = new Engine(path.join(dir, 'db'), { valueEncoding: 'utf8', backup: backupOptions });
  const value = 'x'.repeat(VALUE_BYTES);
  const drainMs: number[] = [];
  const walSyncMs: number[] = [];
  const idleFlushMs: number[] = [];
  const baselineMs: number[] = [];
  const backlogBytes: number[] = [];
  let warmupFlushes = 0;
  let load: LoadResult | null = null;
  let puts = 0;
  try {
    await db.open();
    const backup = db.backup;
    const wal = db.wal;
    if (backup === null || backup === undefined || wal === null || wal === undefined) throw new Error('drain-bench: the engine has no backup sink or WAL');
    // Writers that put until `running` is false; a drain's refusal parks them until the round ends.
    const startWriters = (): { stop(): Promise<void> } => {
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
      return {
        async stop() {
          running = false;
          db.resume();
          resumeNow();
          await Promise.all(writers);
        },
      };
    };
    for (let r = 0; r < o.rounds; r++) {
      // The baseline is an idle flush: nothing running, nothing behind.
      while (backup.flushing || backup.checkpointLsn < wal.durableLsn) await sleep(IDLE_POLL_MS);
      const t0 = performance.now();
      await db.put(`baseline-${r}`, value);
      const t1 = performance.now();
      await backup.forceFlush();
      const t2 = performance.now();
      walSyncMs.push(t1 - t0);
      idleFlushMs.push(t2 - t1);
      baselineMs.push(t2 - t0);

      const flushesBefore = backup.stats().flushes;
      const writers = startWriters();
      await sleep(WRITERS_WARMUP_MS);
      const s = backup.stats();
      warmupFlushes += s.flushes - flushesBefore;
      backlogBytes.push(s.lag.bytesEstimate);
      const t = performance.now();
      const d = await db.drain({ timeoutMs: DRAIN_TIMEOUT_MS });
      drainMs.push(performance.now() - t);
      if (d.backupCheckpointLsn === null || d.backupCheckpointLsn < d.walDurableLsn) throw new Error(`drain-bench: drain answered backup checkpoint ${d.backupCheckpointLsn} below the durable LSN ${d.walDurableLsn}`);
      await writers.stop();
    }
    if (o.loadMs > 0) {
      const before = backup.stats();
      const putsBefore = puts;
      const t = performance.now();
      const writers = startWriters();
      await sleep(o.loadMs);
      const after = backup.stats();
      const durationMs = performance.now() - t;
      const loadPuts = puts - putsBefore;
      await writers.stop();
      load = { durationMs, puts: loadPuts, flushes: after.flushes - before.flushes, files: after.filesWritten - before.filesWritten, bytes: after.bytesWritten - before.bytesWritten };
    }
  } finally {
    await db.close().catch(() => {});
    await fsp.rm(dir, { recursive: true, force: true });
  }
  const sorted = (a: number[]): Float64Array => Float64Array.from(a).sort();
  return {
    rounds: o.rounds,
    puts,
    drainMs: sorted(drainMs),
    walSyncMs: sorted(walSyncMs),
    idleFlushMs: sorted(idleFlushMs),
    baselineMs: sorted(baselineMs),
    backlogBytes: sorted(backlogBytes),
    warmupFlushes,
    load,
  };
}

export function renderDrainBench(r: DrainBenchResult, writers: number, baseDir: string, flushIntervalMs?: number): string {
  const f = (x: number): string => x.toFixed(2);
  const row = (label: string, s: Float64Array): string => `${label.padEnd(32)} p50 ${f(percentile(s, 0.5))} ms  p99 ${f(percentile(s, 0.99))} ms\n`;
  const ratio = (p: number): number => percentile(r.drainMs, p) / percentile(r.baselineMs, p);
  const met = ratio(0.5) <= TARGET_RATIO_MAX && ratio(0.99) <= TARGET_RATIO_MAX;
  const kib = (bytes: number): string => (bytes / 1024).toFixed(0);
  let out =
    `rounds ${r.rounds}, writers ${writers}, puts ${r.puts}, dir ${baseDir}, backup flushIntervalMs ${flushIntervalMs ?? 'default'}\n` +
    row(`drain under ${writers} writers`, r.drainMs) +
    row('baseline: 1 WAL sync', r.walSyncMs) +
    row('baseline: 1 idle backup flush', r.idleFlushMs) +
    row('baseline: sync + flush', r.baselineMs) +
    `${'ratio drain/baseline'.padEnd(32)} p50 ${f(ratio(0.5))}x  p99 ${f(ratio(0.99))}x  (target <= ${TARGET_RATIO_MAX}x)\n` +
    `target (drain p50 and p99 within ${TARGET_RATIO_MAX}x of sync + flush, this run): ${met ? 'MET' : 'MISSED'}\n` +
    `${'backlog when the drain began'.padEnd(32)} p50 ${kib(percentile(r.backlogBytes, 0.5))} KiB  max ${kib(r.backlogBytes[r.backlogBytes.length - 1] ?? 0)} KiB  (automatic flushes during the warmups: ${r.warmupFlushes})\n`;
  if (r.load) {
    const l = r.load;
    const perSec = (n: number): string => (n / (l.durationMs / 1000)).toFixed(1);
    out += `under load (${writers} writers, ${l.durationMs.toFixed(0)} ms, sink attached): puts/s ${perSec(l.puts)}  backup flushes/s ${perSec(l.flushes)}  files/s ${perSec(l.files)}  mean file ${l.files > 0 ? kib(l.bytes / l.files) : '-'} KiB\n`;
  }
  return out;
}

function positiveInteger(value: string | undefined, name: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '40' },
      writers: { type: 'string', default: '64' },
      dir: { type: 'string' },
      'flush-interval-ms': { type: 'string' },
      'load-ms': { type: 'string', default: '2000' },
    },
  });
  const rounds = positiveInteger(values.rounds, 'rounds', 1);
  const writers = positiveInteger(values.writers, 'writers', 1);
  const loadMs = positiveInteger(values['load-ms'], 'load-ms', 0);
  const flushIntervalMs = values['flush-interval-ms'] === undefined ? undefined : positiveInteger(values['flush-interval-ms'], 'flush-interval-ms', 1);
  const baseDir = path.resolve(values.dir ?? process.env.BENCH_DIR ?? os.tmpdir());
  const result = await runDrainBench({ rounds, writers, baseDir, flushIntervalMs, loadMs });
  process.stdout.write(renderDrainBench(result, writers, baseDir, flushIntervalMs));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
