/**
 * The engine's Prometheus metrics (prom-client), in a registry of its own (never the global one, so two
 * engines in one process do not mix). createEngineMetrics({ wal, sink, drainer, syncTimer }) builds it:
 * gauges and counters are read from wal.stats() / sink.stats() at scrape time, histograms are fed by
 * events (the WAL's 'durable', the sink's 'flush' and 'forceFlush' (every forceFlush: the admin
 * endpoint's, a drain's, the application's), the drainer's 'drain', the SyncTimer's syncs). close()
 * unsubscribes from every event source. The two histograms fed once per
 * WAL commit (fsync seconds, records per commit) only store the sample on the commit path and fold it in
 * at the next scrape (or once SAMPLES_PENDING_COUNT_MAX wait): prom-client's observe() with labels
 * formats a label key per call, and these listeners run between the sync and the writes it acknowledges.
 *
 *   flushpoint_wal_fsync_seconds                  histogram  each commit/datasync of the WAL (SyncTimer)
 *   flushpoint_wal_fsync_latency_seconds{quantile} gauge     the WAL's own commit latency percentiles
 *   flushpoint_wal_commits_total                  counter    writev + fdatasync commits
 *   flushpoint_wal_pipelined_batches_total        counter    flushes run pipelined (two cohorts: pipelineCommits)
 *   flushpoint_wal_records_total                  counter    records appended
 *   flushpoint_wal_records_per_commit             histogram  records made durable by each group commit
 *   flushpoint_wal_last_lsn, _durable_lsn         gauge
 *   flushpoint_wal_slow_syncs_total               counter
 *   flushpoint_wal_failures_total                 counter    1 once the WAL failed (sticky until reopened)
 *   flushpoint_backup_checkpoint_lsn              gauge
 *   flushpoint_backup_lag_records, _lag_bytes, _lag_seconds   gauge
 *   flushpoint_backup_flush_seconds               histogram  each completed backup flush
 *   flushpoint_backup_flush_stage_seconds{stage,quantile}     gauge  read/write/publish/checkpoint/total
 *   flushpoint_backup_flushes_total, _flush_failures_total     counter
 *   flushpoint_force_flush_wait_seconds{mode,outcome}         histogram
 *   flushpoint_drains_total{outcome}              counter
 *   flushpoint_drain_seconds                      histogram
 */
import type { ValueSlabStats } from './value-slabs.js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LatencySummary } from '../core/latency.js';
import type { BackupSink, FlushEvent, ForceFlushEvent } from '../backup/index.js';
export { forceFlushOutcomeOf, type ForceFlushOutcome } from '../backup/index.js';
import type { Wal } from '../wal/index.js';
import type { Drainer, DrainOutcome } from './admin/drain.js';
import type { SyncOp, SyncTimer } from './metrics-fs.js';
import { SAMPLES_PENDING_COUNT_MAX } from './limits.js';

export interface MetricsSources {
  wal: Wal;
  sink: BackupSink | null;
  /** The engine's drainer: drain counts and durations. */
  drainer?: Drainer;
  /** Times the WAL's syncs one by one (the engine wraps the WAL's file system with it). */
  syncTimer?: SyncTimer;
  /** The engine's own figures, read at scrape time: keys, checkpoints, value slabs. */
  engine?: () => EngineMetricsStats;
}

/** What the engine reports of itself in GET /metrics (as in its stats()). */
export interface EngineMetricsStats {
  keys: number;
  checkpointsWritten: number;
  /** The WAL refuses truncation after a checkpoint (stats().walTruncationError): the log grows until reopen. */
  walTruncationFailed: boolean;
  valueSlabs: ValueSlabStats;
}

const SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const RECORDS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384];

/**
 * Observations of one histogram kept as numbers until the next scrape: add() stores two numbers, fold()
 * (the histogram's collect(), or add() once the buffer is full) observes them all. Each sample carries
 * the index of its label set (0 for an unlabelled histogram).
 */
class PendingSamples {
  readonly #values = new Float64Array(SAMPLES_PENDING_COUNT_MAX);
  readonly #labelIndexes = new Uint8Array(SAMPLES_PENDING_COUNT_MAX);
  #count = 0;
  readonly #observe: (labelIndex: number, value: number) => void;

  constructor(observe: (labelIndex: number, value: number) => void) {
    this.#observe = observe;
  }

  add(labelIndex: number, value: number): void {
    if (this.#count === SAMPLES_PENDING_COUNT_MAX) this.fold();
    this.#values[this.#count] = value;
    this.#labelIndexes[this.#count] = labelIndex;
    this.#count++;
  }

  fold(): void {
    const count = this.#count;
    this.#count = 0;
    for (let i = 0; i < count; i++) this.#observe(this.#labelIndexes[i] as number, this.#values[i] as number);
  }
}

const SYNC_OPS: readonly SyncOp[] = ['commit', 'datasync', 'sync', 'syncDir'];

const QUANTILES: ReadonlyArray<[string, keyof LatencySummary]> = [
  ['0.5', 'p50Ms'],
  ['0.9', 'p90Ms'],
  ['0.99', 'p99Ms'],
  ['0.999', 'p999Ms'],
  ['1', 'maxMs'],
];

export interface EngineMetrics {
  readonly registry: Registry;
  /** The Prometheus text and its content type. */
  text(): Promise<{ contentType: string; text: string }>;
  /** Unsubscribes from the WAL, the sink, the drainer and the sync timer. */
  close(): void;
}

export function createEngineMetrics(sources: MetricsSources): EngineMetrics {
  const { wal, sink, drainer, syncTimer, engine } = sources;
  const registry = new Registry();
  const registers = [registry];
  const unsubscribe: Array<() => void> = [];

  /** A counter whose value is read from a monotonic stat at scrape time. */
  const counterFrom = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  const gaugeFrom = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };

  // ---- engine ----
  if (engine) {
    gaugeFrom('flushpoint_engine_keys', 'Keys the engine holds (visible state)', () => engine().keys);
    counterFrom('flushpoint_engine_checkpoints_total', 'Checkpoints written by this engine (its reopens included)', () => engine().checkpointsWritten);
    gaugeFrom('flushpoint_engine_wal_truncation_failed', '1 when the WAL refuses to drop the segments checkpoints cover (a segment could not be freed): the log grows until the engine is reopened; else 0', () => (engine().walTruncationFailed ? 1 : 0));
    counterFrom('flushpoint_engine_value_slabs_total', 'Value slabs made since open (engine/value-slabs.ts)', () => engine().valueSlabs.slabs);
    counterFrom('flushpoint_engine_value_slabs_untouched_total', 'Full-size value slabs filled without their pages mapped ahead', () => engine().valueSlabs.slabsUntouched);
    counterFrom('flushpoint_engine_values_relocated_total', 'Values copied out of value slabs less than half live', () => engine().valueSlabs.valuesRelocated);
    counterFrom('flushpoint_engine_value_slabs_released_total', 'Value slabs in shared memory the garbage collector was told of once the index dropped them', () => engine().valueSlabs.slabsReleased);
    counterFrom('flushpoint_engine_value_slab_scans_total', 'Scans of the value slabs begun (by a checkpoint, or on their own once enough values were dropped or slabs filled)', () => engine().valueSlabs.scans);
  }

  // ---- WAL ----
  const fsyncLabels = SYNC_OPS.map((op) => ({ op }));
  // The folding callbacks run at scrape time, after both consts exist.
  const fsyncSamples: PendingSamples = new PendingSamples((i, seconds) => fsyncSeconds.observe(fsyncLabels[i] as { op: SyncOp }, seconds));
  const fsyncSeconds = new Histogram({
    name: 'flushpoint_wal_fsync_seconds',
    help: 'Duration of each WAL commit (writev + fdatasync) or sync, in seconds',
    labelNames: ['op'],
    buckets: SECONDS_BUCKETS,
    registers,
    collect() {
      fsyncSamples.fold();
    },
  });
  if (syncTimer) unsubscribe.push(syncTimer.on((op, ms) => fsyncSamples.add(SYNC_OPS.indexOf(op), ms / 1000)));
  new Gauge({
    name: 'flushpoint_wal_fsync_latency_seconds',
    help: "The WAL's commit latency percentiles over its last 65536 commits, in seconds (quantile 1 = max)",
    labelNames: ['quantile'],
    registers,
    collect() {
      const s = wal.stats().syncLatency;
      for (const [q, key] of QUANTILES) this.set({ quantile: q }, s[key] / 1000);
    },
  });
  counterFrom('flushpoint_wal_commits_total', 'WAL commits (one writev + one fdatasync each)', () => wal.stats().syncs);
  counterFrom('flushpoint_wal_pipelined_batches_total', 'WAL flushes run pipelined: two cohorts of writers, one flush beside the other cohort\'s loop work (pipelineCommits)', () => wal.stats().pipelinedBatches);
  counterFrom('flushpoint_wal_records_total', 'Records appended to the WAL', () => wal.stats().appends);
  counterFrom('flushpoint_wal_slow_syncs_total', 'WAL commits slower than fsyncLatencyMsWarn', () => wal.stats().slowSyncs);
  counterFrom('flushpoint_wal_failures_total', 'WAL write or sync failures (sticky: at most 1 until reopened)', () => (wal.stats().failure === null ? 0 : 1));
  gaugeFrom('flushpoint_wal_last_lsn', 'Last LSN appended to the WAL', () => wal.lastLsn);
  gaugeFrom('flushpoint_wal_durable_lsn', 'Every LSN up to this one is durable in the WAL', () => wal.durableLsn);
  const recordsSamples: PendingSamples = new PendingSamples((_i, records) => recordsPerCommit.observe(records));
  const recordsPerCommit = new Histogram({
    name: 'flushpoint_wal_records_per_commit',
    help: 'Records made durable by each group commit',
    buckets: RECORDS_BUCKETS,
    registers,
    collect() {
      recordsSamples.fold();
    },
  });
  let durableSeen = wal.durableLsn;
  const onDurable = (durableLsn: number): void => {
    if (durableLsn > durableSeen) recordsSamples.add(0, durableLsn - durableSeen);
    durableSeen = durableLsn;
  };
  wal.on('durable', onDurable);
  unsubscribe.push(() => wal.off('durable', onDurable));

  // ---- backup ----
  if (sink) {
    gaugeFrom('flushpoint_backup_checkpoint_lsn', 'Every LSN up to this one is durable in the backup', () => sink.checkpointLsn);
    gaugeFrom('flushpoint_backup_lag_records', 'Records durable in the WAL and not yet in the backup', () => sink.stats().lag.records);
    gaugeFrom('flushpoint_backup_lag_bytes', 'Estimated bytes durable in the WAL and not yet in the backup', () => sink.stats().lag.bytesEstimate);
    gaugeFrom('flushpoint_backup_lag_seconds', 'Age of the oldest record durable in the WAL and not yet in the backup, in seconds', () => sink.stats().lag.oldestUnflushedAgeMs / 1000);
    counterFrom('flushpoint_backup_flushes_total', 'Backup flushes completed', () => sink.stats().flushes);
    counterFrom('flushpoint_backup_flush_failures_total', 'Backup flushes that failed', () => sink.stats().flushFailures);
    const flushSeconds = new Histogram({ name: 'flushpoint_backup_flush_seconds', help: 'Duration of each completed backup flush, in seconds', buckets: SECONDS_BUCKETS, registers });
    const onFlush = (e: FlushEvent): void => flushSeconds.observe(e.durationMs / 1000);
    sink.on('flush', onFlush);
    unsubscribe.push(() => sink.off('flush', onFlush));
    new Gauge({
      name: 'flushpoint_backup_flush_stage_seconds',
      help: 'Backup flush duration percentiles by stage (read, write, publish, checkpoint, total) over the last 4096 flushes, in seconds',
      labelNames: ['stage', 'quantile'],
      registers,
      collect() {
        const stages = sink.stats().stages;
        for (const [stage, summary] of Object.entries(stages)) {
          for (const [q, key] of QUANTILES) this.set({ stage: stage.replace(/Ms$/, ''), quantile: q }, summary[key] / 1000);
        }
      },
    });
  }

  // ---- forceFlush and drain ----
  const forceFlushSeconds = new Histogram({ name: 'flushpoint_force_flush_wait_seconds', help: 'Time each forceFlush waited (the admin endpoint\'s, a drain\'s, the application\'s), by mode and outcome, in seconds', labelNames: ['mode', 'outcome'], buckets: SECONDS_BUCKETS, registers });
  if (sink) {
    const onForceFlush = (e: ForceFlushEvent): void => forceFlushSeconds.observe({ mode: e.mode, outcome: e.outcome }, e.waitedMs / 1000);
    sink.on('forceFlush', onForceFlush);
    unsubscribe.push(() => sink.off('forceFlush', onForceFlush));
  }
  const drains = new Counter({ name: 'flushpoint_drains_total', help: 'Drain calls, by outcome', labelNames: ['outcome'], registers });
  const drainSeconds = new Histogram({ name: 'flushpoint_drain_seconds', help: 'Time each drain call waited, in seconds', buckets: SECONDS_BUCKETS, registers });
  if (drainer) {
    const onDrain = (outcome: DrainOutcome, waitedMs: number): void => {
      drains.inc({ outcome });
      drainSeconds.observe(waitedMs / 1000);
    };
    drainer.on('drain', onDrain);
    unsubscribe.push(() => drainer.off('drain', onDrain));
  }

  return {
    registry,
    async text() {
      return { contentType: registry.contentType, text: await registry.metrics() };
    },
    close() {
      for (const off of unsubscribe.splice(0)) off();
    },
  };
}
