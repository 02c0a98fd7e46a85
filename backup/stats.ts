/**
 * The sink's counters and timings: flushes, failures, bytes, the per-stage latency of a flush, and the
 * marks that give the age of the oldest record not yet backed up. No I/O; the facade snapshots it.
 */
import { LatencyRecorder, type LatencySummary } from '../core/latency.js';
import { DURABLE_MARKS_COUNT_MAX, DURABLE_MARK_SPACING_MS, STAGE_SAMPLES_COUNT_MAX } from './limits.js';

export interface BackupStats {
  status: 'open' | 'closing' | 'closed';
  paused: boolean;
  flushing: boolean;
  checkpointLsn: number;
  walDurableLsn: number;
  lag: { records: number; bytesEstimate: number; oldestUnflushedAgeMs: number };
  flushes: number;
  flushFailures: number;
  consecutiveFailures: number;
  lastError: string | null;
  filesWritten: number;
  bytesWritten: number;
  recordsWritten: number;
  waiters: number;
  stages: { readMs: LatencySummary; writeMs: LatencySummary; publishMs: LatencySummary; checkpointMs: LatencySummary; totalMs: LatencySummary };
  adoptedOnOpen: number;
  removedOnOpen: number;
}

/** What one successful flush did, stage by stage. */
export interface FlushTimings {
  readMs: number;
  writeMs: number;
  publishMs: number;
  checkpointMs: number;
  totalMs: number;
}

export class SinkStats {
  readonly adoptedOnOpen: number;
  readonly removedOnOpen: number;
  flushes = 0;
  failures = 0;
  lastError: Error | null = null;
  filesWritten = 0;
  bytesWritten = 0;
  recordsWritten = 0;
  readonly #stages = {
    readMs: new LatencyRecorder(STAGE_SAMPLES_COUNT_MAX),
    writeMs: new LatencyRecorder(STAGE_SAMPLES_COUNT_MAX),
    publishMs: new LatencyRecorder(STAGE_SAMPLES_COUNT_MAX),
    checkpointMs: new LatencyRecorder(STAGE_SAMPLES_COUNT_MAX),
    totalMs: new LatencyRecorder(STAGE_SAMPLES_COUNT_MAX),
  };
  /** (LSN, time it became durable) marks, ascending, for the age of the oldest record not yet backed up. */
  #durableMarks: Array<{ lsn: number; atMs: number }> = [];

  constructor(adoptedOnOpen: number, removedOnOpen: number) {
    this.adoptedOnOpen = adoptedOnOpen;
    this.removedOnOpen = removedOnOpen;
  }

  /** The WAL's durable LSN reached `lsn` at `nowMs`. Cheap: this runs at every WAL commit. */
  markDurable(lsn: number, nowMs: number): void {
    const marks = this.#durableMarks;
    const last = marks[marks.length - 1];
    if (!last || nowMs - last.atMs >= DURABLE_MARK_SPACING_MS) marks.push({ lsn, atMs: nowMs });
    else last.lsn = lsn;
    if (marks.length > DURABLE_MARKS_COUNT_MAX) this.#thinMarks();
  }

  /**
   * Halves the marks by merging neighbours: (a, b) becomes (b's LSN, a's time), so the oldest mark's
   * time is kept and a record's age is never understated (at worst overstated by the merged spacing).
   * Dropping the oldest marks instead made the age of a stuck backup saw-tooth at a few minutes.
   */
  #thinMarks(): void {
    const marks = this.#durableMarks;
    const thinned: Array<{ lsn: number; atMs: number }> = [];
    for (let i = 0; i < marks.length; i += 2) {
      const a = marks[i] as { lsn: number; atMs: number };
      const b = marks[i + 1];
      thinned.push(b ? { lsn: b.lsn, atMs: a.atMs } : a);
    }
    this.#durableMarks = thinned;
  }

  flushed(fromLsn: number, toLsn: number, files: number, bytes: number, t: FlushTimings): void {
    while (this.#durableMarks.length > 0 && (this.#durableMarks[0] as { lsn: number }).lsn <= toLsn) this.#durableMarks.shift();
    this.flushes++;
    this.filesWritten += files;
    this.bytesWritten += bytes;
    this.recordsWritten += toLsn - fromLsn + 1;
    this.#stages.readMs.record(t.readMs);
    this.#stages.writeMs.record(t.writeMs);
    this.#stages.publishMs.record(t.publishMs);
    this.#stages.checkpointMs.record(t.checkpointMs);
    this.#stages.totalMs.record(t.totalMs);
  }

  failed(err: Error): void {
    this.failures++;
    this.lastError = err;
  }

  /** Age of the oldest record durable in the WAL and not yet in the backup, in ms (0 when none). */
  oldestUnflushedAgeMs(checkpointLsn: number, nowMs: number): number {
    const oldest = this.#durableMarks.find((m) => m.lsn > checkpointLsn);
    return oldest ? nowMs - oldest.atMs : 0;
  }

  stages(): BackupStats['stages'] {
    return {
      readMs: this.#stages.readMs.summary(),
      writeMs: this.#stages.writeMs.summary(),
      publishMs: this.#stages.publishMs.summary(),
      checkpointMs: this.#stages.checkpointMs.summary(),
      totalMs: this.#stages.totalMs.summary(),
    };
  }
}
