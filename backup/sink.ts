/**
 * BackupSink: tails the WAL's durable records into backup segment files, and publishes a checkpoint
 * only after the data it covers is durable in the backup.
 *
 * One flush runs at a time (FlushScheduler, the same component the WAL commits with). A flush freezes
 * its range (checkpoint+1 .. target), reads those records from the WAL, writes them into one or more
 * files (temp name, fdatasync, rename, fsync dir), then publishes the checkpoint the same way. A failed
 * flush rejects its waiters with BACKUP_FAILED and is retried later with the SAME frozen range, so a file
 * name never covers two different ranges and the checkpoint never passes what is durable here.
 *
 * forceFlush, the operator's "make it safe now":
 *   barrier (default)  resolves when checkpointLsn >= the WAL's lastLsn at the call. If a running flush
 *                      covers that, it joins it; if not, it waits for it and then ONE more flush runs,
 *                      shared by every caller that arrived meanwhile (waiters keyed by target LSN).
 *   join               the running flush's result (or the next one's, when none runs).
 *   reject             FLUSH_IN_PROGRESS at once while a flush runs (the old fail-fast behaviour).
 * Timeout (FLUSH_TIMEOUT, carrying the checkpoint reached) and AbortSignal affect only their caller.
 */
import { EventEmitter } from 'node:events';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import { LatencyRecorder, type LatencySummary } from '../core/latency.js';
import { sweepTempFiles } from '../fs/durable-publish.js';
import { FlushScheduler, READ_CHUNK_BYTES, checkWaitOptions, type Wal } from '../wal/index.js';
import { listBackupFiles, publishBackupFile, publishCheckpoint, readBackupFile, readCheckpoint } from './backup-file.js';
import { BodyBuilder } from './format.js';
import { lockBackupDir, type BackupLock } from './lock.js';
import { backupDefaults, checkMode, type BackupSinkOptions, type ForceFlushMode, type ResolvedBackupOptions } from './options.js';

export interface FlushEvent {
  fromLsn: number;
  toLsn: number;
  bytes: number;
  files: number;
  durationMs: number;
}

export interface BackupSinkEvents {
  flush: [event: FlushEvent];
  error: [err: Error];
}

export interface ForceFlushOptions {
  mode?: ForceFlushMode;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ForceFlushResult {
  /** wal.lastLsn when the call was made. */
  targetLsn: number;
  /** The checkpoint when the call returned (barrier: >= targetLsn). */
  checkpointLsn: number;
  /** Flushes that were already running when the call arrived and that it waited for (0 or 1). */
  flushesJoined: number;
  /** Flushes that started while the call waited. */
  flushesRun: number;
  waitedMs: number;
}

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

function closedError(dir: string): FlushpointError {
  return new FlushpointError(ErrorCode.BACKUP_FAILED, `backup sink on ${dir} is closed`);
}

export class BackupSink extends EventEmitter<BackupSinkEvents> {
  readonly dir: string;
  readonly #o: ResolvedBackupOptions;
  readonly #wal: Wal;
  readonly #lock: BackupLock;
  readonly #scheduler: FlushScheduler;
  readonly #stages = { readMs: new LatencyRecorder(4096), writeMs: new LatencyRecorder(4096), publishMs: new LatencyRecorder(4096), checkpointMs: new LatencyRecorder(4096), totalMs: new LatencyRecorder(4096) };
  readonly #tailAbort = new AbortController();
  #status: 'open' | 'closing' | 'closed' = 'open';
  #checkpointLsn: number;
  /** The frozen target of a flush that failed: the retry re-sends exactly this range. */
  #retryTargetLsn = 0;
  #paused = false;
  #interval: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  /** (LSN, time it became durable) marks, for the age of the oldest record not yet backed up. */
  #durableMarks: Array<{ lsn: number; atMs: number }> = [];
  #flushes = 0;
  #failures = 0;
  #consecutiveFailures = 0;
  #lastError: Error | null = null;
  #filesWritten = 0;
  #bytesWritten = 0;
  #recordsWritten = 0;
  #adopted: number;
  /** The first LSN of the backup, recorded in every checkpoint it publishes. */
  #startLsn = 1;
  #removed: number;

  private constructor(o: ResolvedBackupOptions, lock: BackupLock, checkpointLsn: number, adopted: number, removed: number) {
    super();
    this.#o = o;
    this.dir = o.dir;
    this.#wal = o.wal;
    this.#lock = lock;
    this.#checkpointLsn = checkpointLsn;
    this.#adopted = adopted;
    this.#removed = removed;
    this.#scheduler = new FlushScheduler({
      source: { freeze: (wanted) => this.#freeze(wanted), write: (target) => this.#flush(target) },
      durableLsn: checkpointLsn,
      sticky: false,
      what: 'backed up',
      failureError: (cause) =>
        new FlushpointError(ErrorCode.BACKUP_FAILED, `backup flush to ${o.dir} failed; the checkpoint stays at ${this.#checkpointLsn}: ${(cause as Error)?.message ?? String(cause)}`, {
          cause,
          reachedLsn: this.#checkpointLsn,
        }),
    });
    this.#wal.hold(o.holdName, checkpointLsn + 1);
    this.#interval = setInterval(() => this.#onInterval(), o.flushIntervalMs);
    this.#interval.unref();
    void this.#tail();
  }

  static async open(options: BackupSinkOptions): Promise<BackupSink> {
    const o = backupDefaults(options);
    await o.fs.mkdir(o.dir);
    let sink: BackupSink | null = null;
    const lock = await lockBackupDir(o.fs, o.dir, o.lockStaleMs, (err) => {
      if (sink) sink.#compromised(err);
    });
    try {
      const names = await o.fs.readdir(o.dir);
      await sweepTempFiles(o.fs, o.dir, names);
      let changed = false;
      const wal = o.wal;
      const persisted = await readCheckpoint(o.fs, o.dir);
      let checkpoint = persisted?.checkpointLsn ?? Math.max(0, wal.firstLsn - 1);
      const startLsn = persisted?.startLsn ?? checkpoint + 1;
      if (checkpoint > wal.durableLsn) {
        throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup checkpoint ${checkpoint} is ahead of the WAL's durable LSN ${wal.durableLsn}: is this the backup of another WAL?`, {
          lsn: checkpoint,
        });
      }
      // Files a crash left beyond the checkpoint: adopt the ones that verify and continue it, remove the rest.
      let adopted = 0;
      let removed = 0;
      for (const f of await listBackupFiles(o.fs, o.dir)) {
        if (f.lastLsn <= checkpoint) continue;
        if (f.firstLsn <= checkpoint) {
          throw new FlushpointError(ErrorCode.BACKUP_CORRUPT, `backup file ${o.dir}/${f.name} straddles the checkpoint ${checkpoint}`, { file: `${o.dir}/${f.name}`, offset: 0 });
        }
        let ok = f.firstLsn === checkpoint + 1;
        if (ok) ok = await readBackupFile(o.fs, o.dir, f).then(() => true, () => false);
        if (ok) {
          checkpoint = f.lastLsn;
          adopted++;
        } else {
          await o.fs.unlink(`${o.dir}/${f.name}`);
          removed++;
          changed = true;
        }
      }
      if (changed) await o.fs.syncDir(o.dir);
      if (adopted > 0) await publishCheckpoint(o.fs, o.dir, checkpoint, startLsn);
      if (wal.firstLsn > checkpoint + 1) {
        throw new FlushpointError(
          ErrorCode.BACKUP_GAP,
          `the WAL starts at LSN ${wal.firstLsn} but the backup checkpoint is ${checkpoint}: LSNs ${checkpoint + 1}..${wal.firstLsn - 1} are gone`,
          { lsn: checkpoint + 1 },
        );
      }
      o.logger?.info({ dir: o.dir, checkpointLsn: checkpoint, adopted, removed }, 'backup sink opened');
      sink = new BackupSink(o, lock, checkpoint, adopted, removed);
      sink.#startLsn = startLsn;
      return sink;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Every LSN <= this is durable in the backup. */
  get checkpointLsn(): number {
    return this.#checkpointLsn;
  }

  /** A flush is running. */
  get flushing(): boolean {
    return this.#scheduler.flushing;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Stops automatic flushes (interval, size, retries). forceFlush still works. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#consecutiveFailures = 0;
    if (this.#wal.durableLsn > this.#checkpointLsn) this.#scheduler.request();
  }

  async forceFlush(options: ForceFlushOptions = {}): Promise<ForceFlushResult> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const mode = options.mode === undefined ? this.#o.forceFlushMode : checkMode(options.mode, 'mode');
    const timeoutMs = options.timeoutMs ?? this.#o.forceFlushTimeoutMs;
    checkWaitOptions({ timeoutMs, signal: options.signal });
    if (this.#status !== 'open') throw closedError(this.dir);
    const started = performance.now();
    const targetLsn = this.#wal.lastLsn;
    const runningAtStart = this.#scheduler.flushing;
    const runBefore = this.#scheduler.flushesRun;
    const result = (): ForceFlushResult => ({
      targetLsn,
      checkpointLsn: this.#checkpointLsn,
      flushesJoined: runningAtStart ? 1 : 0,
      flushesRun: this.#scheduler.flushesRun - runBefore,
      waitedMs: performance.now() - started,
    });
    if (mode === 'reject' && runningAtStart) {
      throw new FlushpointError(ErrorCode.FLUSH_IN_PROGRESS, `a backup flush is in progress (up to LSN ${this.#scheduler.inFlightTargetLsn}); mode 'reject' does not wait`, {
        reachedLsn: this.#checkpointLsn,
      });
    }
    if (mode === 'join') {
      await this.#scheduler.join({ timeoutMs, signal: options.signal });
      return result();
    }
    await this.#scheduler.wait(targetLsn, { timeoutMs, signal: options.signal });
    const r = result();
    assert(r.checkpointLsn >= targetLsn, `barrier returned checkpoint ${r.checkpointLsn} below its target ${targetLsn}`);
    return r;
  }

  stats(): BackupStats {
    const durable = this.#wal.durableLsn;
    const lagRecords = Math.max(0, durable - this.#checkpointLsn);
    const avgRecordBytes = this.#wal.appends > 0 ? this.#wal.appendedBytes / this.#wal.appends : 0;
    const oldest = this.#durableMarks.find((m) => m.lsn > this.#checkpointLsn);
    return {
      status: this.#status,
      paused: this.#paused,
      flushing: this.#scheduler.flushing,
      checkpointLsn: this.#checkpointLsn,
      walDurableLsn: durable,
      lag: { records: lagRecords, bytesEstimate: Math.round(lagRecords * avgRecordBytes), oldestUnflushedAgeMs: lagRecords > 0 && oldest ? performance.now() - oldest.atMs : 0 },
      flushes: this.#flushes,
      flushFailures: this.#failures,
      consecutiveFailures: this.#consecutiveFailures,
      lastError: this.#lastError?.message ?? null,
      filesWritten: this.#filesWritten,
      bytesWritten: this.#bytesWritten,
      recordsWritten: this.#recordsWritten,
      waiters: this.#scheduler.waitersCount,
      stages: {
        readMs: this.#stages.readMs.summary(),
        writeMs: this.#stages.writeMs.summary(),
        publishMs: this.#stages.publishMs.summary(),
        checkpointMs: this.#stages.checkpointMs.summary(),
        totalMs: this.#stages.totalMs.summary(),
      },
      adoptedOnOpen: this.#adopted,
      removedOnOpen: this.#removed,
    };
  }

  /** Flushes what is durable in the WAL, then stops and releases the lock and the WAL hold. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#status = 'closing';
    if (this.#interval) clearInterval(this.#interval);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#tailAbort.abort();
    let failure: unknown = null;
    const target = this.#wal.status === 'open' || this.#wal.status === 'closing' ? this.#wal.durableLsn : this.#checkpointLsn;
    if (target > this.#checkpointLsn) {
      try {
        await this.#scheduler.wait(target);
      } catch (err) {
        failure = err;
      }
    }
    await this.#scheduler.idle();
    this.#scheduler.fail(closedError(this.dir));
    if (this.#wal.status === 'open') this.#wal.release(this.#o.holdName);
    await this.#lock.release();
    this.#status = 'closed';
    if (failure) throw failure;
  }

  // ---- triggers ----

  #onInterval(): void {
    if (this.#paused || this.#status !== 'open' || this.#wal.status !== 'open') return;
    if (this.#wal.durableLsn > this.#checkpointLsn) this.#scheduler.request();
  }

  async #tail(): Promise<void> {
    const signal = this.#tailAbort.signal;
    while (this.#status === 'open') {
      let durable: number;
      try {
        durable = await this.#wal.nextDurable({ signal });
      } catch {
        return; // closed (ours or the WAL's) or the WAL failed: nothing more will become durable
      }
      const now = performance.now();
      const last = this.#durableMarks[this.#durableMarks.length - 1];
      if (!last || now - last.atMs >= 5) this.#durableMarks.push({ lsn: durable, atMs: now });
      else last.lsn = durable; // coalesce marks closer than 5 ms: bounded memory, age within 5 ms
      if (this.#durableMarks.length > 100_000) this.#durableMarks.splice(0, 50_000);
      if (this.#paused) continue;
      // Cheap counters only: this runs at every WAL commit.
      const avg = this.#wal.appends > 0 ? this.#wal.appendedBytes / this.#wal.appends : 0;
      if ((durable - this.#checkpointLsn) * avg >= this.#o.segmentSizeBytesMax) this.#scheduler.request();
    }
  }

  #compromised(err: Error): void {
    this.#lastError = err;
    this.#paused = true;
    this.#o.logger?.error({ dir: this.dir, err: err.message }, 'backup lock compromised; sink paused');
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  // ---- flush source ----

  #freeze(wantedLsn: number): number {
    if (this.#retryTargetLsn > this.#checkpointLsn) return this.#retryTargetLsn;
    // Back up what is durable in the WAL, and at least what a barrier waiter asked for (its flush first
    // waits for the WAL to make that durable).
    return Math.max(this.#wal.durableLsn, Math.min(wantedLsn, this.#wal.lastLsn));
  }

  async #flush(targetLsn: number): Promise<void> {
    const fromLsn = this.#checkpointLsn + 1;
    assert(targetLsn >= fromLsn, `backup flush range ${fromLsn}..${targetLsn}`);
    this.#retryTargetLsn = targetLsn;
    const started = performance.now();
    try {
      await this.#wal.waitDurable(targetLsn);
      const o = this.#o;
      let body = new BodyBuilder();
      let files = 0;
      let bytes = 0;
      let readMs = 0;
      let writeMs = 0;
      let publishMs = 0;
      let expected = fromLsn;
      const publish = async (): Promise<void> => {
        const r = await publishBackupFile(o.fs, o.dir, body, o.compression);
        files++;
        bytes += r.bytes;
        writeMs += r.writeMs;
        publishMs += r.publishMs;
        body = new BodyBuilder();
      };
      let t = performance.now();
      // Verified runs of WAL-framed records, copied into backup files as they are: no per-record work.
      const chunkBytesMax = Math.max(64, Math.min(READ_CHUNK_BYTES, o.segmentSizeBytesMax));
      for await (const span of this.#wal.readRaw({ fromLsn, toLsn: targetLsn, chunkBytesMax })) {
        assert(span.firstLsn === expected, `WAL read returned LSN ${span.firstLsn}, expected ${expected}`);
        expected = span.lastLsn + 1;
        if (body.recordCount > 0 && body.bytes + span.bytes.byteLength > o.segmentSizeBytesMax) {
          readMs += performance.now() - t;
          await publish();
          t = performance.now();
        }
        body.add(span);
      }
      readMs += performance.now() - t;
      assert(expected === targetLsn + 1, `WAL read ended at ${expected - 1}, wanted ${targetLsn}`);
      if (body.recordCount > 0) await publish();
      const tc = performance.now();
      // Only now, with every file of the range durable under its name, may the checkpoint move.
      await publishCheckpoint(o.fs, o.dir, targetLsn, this.#startLsn);
      const checkpointMs = performance.now() - tc;
      this.#checkpointLsn = targetLsn;
      this.#retryTargetLsn = 0;
      this.#consecutiveFailures = 0;
      if (this.#wal.status === 'open') this.#wal.hold(o.holdName, targetLsn + 1);
      while (this.#durableMarks.length > 0 && (this.#durableMarks[0] as { lsn: number }).lsn <= targetLsn) this.#durableMarks.shift();
      const durationMs = performance.now() - started;
      this.#flushes++;
      this.#filesWritten += files;
      this.#bytesWritten += bytes;
      this.#recordsWritten += targetLsn - fromLsn + 1;
      this.#stages.readMs.record(readMs);
      this.#stages.writeMs.record(writeMs);
      this.#stages.publishMs.record(publishMs);
      this.#stages.checkpointMs.record(checkpointMs);
      this.#stages.totalMs.record(durationMs);
      this.emit('flush', { fromLsn, toLsn: targetLsn, bytes, files, durationMs });
    } catch (err) {
      this.#onFailure(err as Error);
      throw err;
    }
  }

  #onFailure(err: Error): void {
    this.#failures++;
    this.#consecutiveFailures++;
    this.#lastError = err;
    this.#o.logger?.warn({ dir: this.dir, err: err.message, consecutiveFailures: this.#consecutiveFailures }, 'backup flush failed');
    if (this.listenerCount('error') > 0) this.emit('error', err);
    if (this.#status !== 'open') return;
    if (this.#consecutiveFailures >= this.#o.failuresCountMax) {
      this.#paused = true;
      this.#o.logger?.error({ dir: this.dir, failures: this.#consecutiveFailures }, 'backup sink paused after repeated failures');
      return;
    }
    const base = Math.min(this.#o.retryDelayMsMax, this.#o.retryDelayMsMin * 2 ** (this.#consecutiveFailures - 1));
    const delayMs = base / 2 + Math.random() * (base / 2); // jitter: [base/2, base)
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#paused && this.#status === 'open') this.#scheduler.request();
    }, delayMs);
    this.#retryTimer.unref();
  }
}
