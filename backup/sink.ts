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
import path from 'node:path';
import { FlushpointError, ErrorCode, assert, isFlushpointError } from '../core/errors.js';
import { LatencyRecorder, type LatencySummary } from '../core/latency.js';
import { sweepTempFiles } from '../fs/durable-publish.js';
import type { FileSystem } from '../fs/file-system.js';
import { FlushScheduler, READ_CHUNK_BYTES, checkWaitOptions, type Wal } from '../wal/index.js';
import { listBackupFiles, publishBackupFile, publishCheckpoint, readBackupFile, readCheckpoint, type BackupFileEntry } from './backup-file.js';
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

/** The lowest LSN the WAL can still hand out: its first record, or (empty) the next LSN it will make durable. */
function walStartLsn(wal: Wal): number {
  return wal.firstLsn > 0 ? wal.firstLsn : wal.durableLsn + 1;
}

/** RangeError unless the two directories are apart: neither is the other nor inside it (resolved paths). */
function checkApart(backupDir: string, walDir: string): void {
  const b = path.resolve(backupDir);
  const w = path.resolve(walDir);
  const inside = (child: string, parent: string): boolean => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
  if (inside(b, w) || inside(w, b)) {
    throw new RangeError(`backup directory ${backupDir} (${b}) overlaps the WAL directory ${walDir} (${w}): it must be neither the WAL directory, nor inside it, nor contain it`);
  }
}

/**
 * Why a verified-looking file beyond the checkpoint must not be adopted, or null to adopt it. Only a
 * verified defect removes a file: an I/O error reading it fails the open (BACKUP_FAILED), since the
 * file may be fine. The WAL decides what the records are: a file that holds records the WAL has not made
 * durable, or whose records differ from the WAL's, belongs to another history (a WAL restored to an
 * earlier point, say) and is removed. Records the WAL no longer has cannot be compared.
 */
async function whyNotAdopt(fs: FileSystem, dir: string, f: BackupFileEntry, wal: Wal): Promise<string | null> {
  let records: Array<{ lsn: number; payload: Uint8Array }>;
  try {
    records = (await readBackupFile(fs, dir, f)).records;
  } catch (err) {
    if (isFlushpointError(err, ErrorCode.BACKUP_CORRUPT)) return `it does not verify: ${err.message}`;
    throw new FlushpointError(ErrorCode.BACKUP_FAILED, `cannot read backup file ${dir}/${f.name} (beyond the checkpoint) to adopt it: ${(err as Error).message}`, {
      cause: err,
      file: `${dir}/${f.name}`,
    });
  }
  if (f.lastLsn > wal.durableLsn) return `it holds LSNs up to ${f.lastLsn}, beyond the WAL's durable LSN ${wal.durableLsn}`;
  const fromLsn = Math.max(f.firstLsn, walStartLsn(wal));
  if (fromLsn > f.lastLsn) return null;
  for await (const r of wal.read({ fromLsn, toLsn: f.lastLsn })) {
    const mine = records[r.lsn - f.firstLsn];
    assert(mine !== undefined && mine.lsn === r.lsn, `backup file ${f.name} has LSN ${r.lsn}`);
    if (Buffer.compare(mine.payload, r.payload) !== 0) return `its LSN ${r.lsn} differs from the WAL's`;
  }
  return null;
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
  /** The WAL's failure once seen: nothing beyond its durable LSN will ever become durable. */
  #walFailure: Error | null = null;
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
    const wal = o.wal;
    if (wal.status !== 'open') throw new FlushpointError(ErrorCode.WAL_CLOSED, `cannot back up WAL ${wal.dir}: it is ${wal.status}`);
    checkApart(o.dir, wal.dir);
    if (wal.stats().holds[o.holdName] !== undefined) {
      throw new RangeError(`WAL ${wal.dir} is already held under the name '${o.holdName}' (another sink?): give each sink its own holdName`);
    }
    // Hold at once, at the lowest LSN the WAL still has: nothing is deleted while the directory is opened.
    wal.hold(o.holdName, walStartLsn(wal));
    let sink: BackupSink | null = null;
    let lock: BackupLock | null = null;
    try {
      await o.fs.mkdir(o.dir);
      lock = await lockBackupDir(o.fs, o.dir, {
        staleMs: o.lockStaleMs,
        waitMs: o.lockWaitMs,
        clock: o.clock,
        onCompromised: (err) => {
          if (sink) sink.#compromised(err);
        },
      });
      const names = await o.fs.readdir(o.dir);
      await sweepTempFiles(o.fs, o.dir, names);
      let changed = false;
      const persisted = await readCheckpoint(o.fs, o.dir);
      let checkpoint = persisted?.checkpointLsn ?? walStartLsn(wal) - 1;
      const startLsn = persisted?.startLsn ?? checkpoint + 1;
      if (checkpoint > wal.durableLsn) {
        throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup checkpoint ${checkpoint} is ahead of the WAL's durable LSN ${wal.durableLsn}: is this the backup of another WAL?`, {
          lsn: checkpoint,
        });
      }
      // Files a crash left beyond the checkpoint: adopt the ones that verify and that the WAL agrees with,
      // and continue the checkpoint over them; remove the rest (they were never acknowledged).
      let adopted = 0;
      let removed = 0;
      for (const f of await listBackupFiles(o.fs, o.dir)) {
        if (f.lastLsn <= checkpoint) continue;
        if (f.firstLsn <= checkpoint) {
          throw new FlushpointError(ErrorCode.BACKUP_CORRUPT, `backup file ${o.dir}/${f.name} straddles the checkpoint ${checkpoint}`, { file: `${o.dir}/${f.name}`, offset: 0 });
        }
        const refused = f.firstLsn === checkpoint + 1 ? await whyNotAdopt(o.fs, o.dir, f, wal) : `it does not start at LSN ${checkpoint + 1}`;
        if (refused === null) {
          checkpoint = f.lastLsn;
          adopted++;
        } else {
          o.logger?.warn({ dir: o.dir, file: f.name, reason: refused }, 'backup file beyond the checkpoint removed');
          await o.fs.unlink(`${o.dir}/${f.name}`);
          removed++;
          changed = true;
        }
      }
      assert(checkpoint <= wal.durableLsn, `adoption reached ${checkpoint}, beyond the WAL's durable LSN ${wal.durableLsn}`);
      if (changed) await o.fs.syncDir(o.dir);
      if (adopted > 0) await publishCheckpoint(o.fs, o.dir, checkpoint, startLsn);
      const walStart = walStartLsn(wal);
      if (walStart > checkpoint + 1) {
        throw new FlushpointError(
          ErrorCode.BACKUP_GAP,
          `the WAL starts at LSN ${walStart} but the backup checkpoint is ${checkpoint}: LSNs ${checkpoint + 1}..${walStart - 1} are gone`,
          { lsn: checkpoint + 1 },
        );
      }
      o.logger?.info({ dir: o.dir, checkpointLsn: checkpoint, adopted, removed }, 'backup sink opened');
      sink = new BackupSink(o, lock, checkpoint, adopted, removed);
      sink.#startLsn = startLsn;
      return sink;
    } catch (err) {
      wal.release(o.holdName);
      await lock?.release();
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
    if (!this.#walCanAdvance() && targetLsn > this.#wal.durableLsn) {
      // Back up what the WAL did make durable, then say that the rest never will be.
      const durable = this.#wal.durableLsn;
      if (durable > this.#checkpointLsn) await this.#scheduler.wait(durable, { timeoutMs, signal: options.signal });
      throw new FlushpointError(
        ErrorCode.BACKUP_FAILED,
        `WAL ${this.#wal.dir} ${this.#walFailure ? 'failed' : 'is closed'} at durable LSN ${durable}: LSNs ${durable + 1}..${targetLsn} will never be durable; backed up to ${this.#checkpointLsn}`,
        { cause: this.#walFailure ?? undefined, lsn: durable + 1, reachedLsn: this.#checkpointLsn },
      );
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
    // Everything the WAL made durable, even if it failed since; nothing if it closed first (then say so).
    const target = this.#wal.durableLsn;
    if (target > this.#checkpointLsn) {
      if (this.#wal.status === 'closed') {
        failure = new FlushpointError(
          ErrorCode.BACKUP_FAILED,
          `WAL ${this.#wal.dir} was closed before the backup sink on ${this.dir}: LSNs ${this.#checkpointLsn + 1}..${target} are durable in the WAL but not backed up (checkpoint ${this.#checkpointLsn}); close the sink first`,
          { lsn: this.#checkpointLsn + 1, reachedLsn: this.#checkpointLsn },
        );
      } else {
        try {
          await this.#scheduler.wait(target);
        } catch (err) {
          failure = err;
        }
      }
    }
    await this.#scheduler.idle();
    this.#scheduler.fail(closedError(this.dir));
    this.#wal.release(this.#o.holdName);
    await this.#lock.release();
    this.#status = 'closed';
    if (failure) throw failure;
  }

  // ---- triggers ----

  /** The WAL may still make more records durable (it is open and has not failed). */
  #walCanAdvance(): boolean {
    return this.#walFailure === null && this.#wal.status === 'open';
  }

  #noteWalFailure(err: unknown): void {
    if (this.#walFailure !== null || !isFlushpointError(err, ErrorCode.WAL_FAILED)) return;
    this.#walFailure = err;
    this.#o.logger?.error({ dir: this.dir, err, walDurableLsn: this.#wal.durableLsn }, 'the WAL failed; the sink backs up what it made durable');
    if (!this.#paused && this.#status === 'open' && this.#wal.durableLsn > this.#checkpointLsn) this.#scheduler.request();
  }

  #onInterval(): void {
    if (this.#paused || this.#status !== 'open' || this.#wal.status === 'closed') return;
    if (this.#wal.durableLsn > this.#checkpointLsn) this.#scheduler.request();
  }

  async #tail(): Promise<void> {
    const signal = this.#tailAbort.signal;
    while (this.#status === 'open') {
      let durable: number;
      try {
        durable = await this.#wal.nextDurable({ signal });
      } catch (err) {
        this.#noteWalFailure(err);
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
    this.#o.logger?.error({ dir: this.dir, err }, 'backup lock compromised; sink paused');
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  // ---- flush source ----

  #freeze(wantedLsn: number): number {
    if (this.#retryTargetLsn > this.#checkpointLsn) return this.#retryTargetLsn;
    // Back up what is durable in the WAL, and at least what a barrier waiter asked for (its flush first
    // waits for the WAL to make that durable; if the WAL cannot, the flush fails and so does the waiter).
    return Math.max(this.#wal.durableLsn, Math.min(wantedLsn, this.#wal.lastLsn));
  }

  async #flush(targetLsn: number): Promise<void> {
    const fromLsn = this.#checkpointLsn + 1;
    assert(targetLsn >= fromLsn, `backup flush range ${fromLsn}..${targetLsn}`);
    const started = performance.now();
    try {
      try {
        await this.#wal.waitDurable(targetLsn);
      } catch (err) {
        // Nothing of this range was written: it need not be retried as it is. A later flush freezes no
        // further than what the WAL made durable.
        this.#noteWalFailure(err);
        throw err;
      }
      // From here on, files of this range may exist: a retry re-sends exactly this range.
      this.#retryTargetLsn = targetLsn;
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
    this.#o.logger?.warn({ dir: this.dir, err, consecutiveFailures: this.#consecutiveFailures }, 'backup flush failed');
    if (this.listenerCount('error') > 0) this.emit('error', err);
    if (this.#status !== 'open') return;
    if (this.#consecutiveFailures >= this.#o.failuresCountMax) {
      this.#paused = true;
      this.#o.logger?.error({ dir: this.dir, err: this.#lastError, failures: this.#consecutiveFailures }, 'backup sink paused after repeated failures');
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
