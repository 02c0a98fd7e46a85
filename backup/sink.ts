/**
 * BackupSink, the backup layer's facade: tails the WAL's durable records into backup segment files, and
 * publishes a checkpoint only after the data it covers is durable in the backup.
 *
 * The pieces, one concept each:
 *   adoption.ts        opening the directory after a crash (checkpoint, files beyond it)
 *   triggers.ts        interval and lag triggers, the tail of the WAL's durable LSN
 *   retry-policy.ts    delay with jitter after a failure, pause after too many
 *   flush-pipeline.ts  one flush's I/O: WAL read -> backup files -> checkpoint
 *   target.ts          where the files go: a directory (lock file) or an S3 prefix (s3-target.ts)
 *   stats.ts           counters and stage timings
 *   lock.ts            the directory lock; limits.ts every limit; options.ts options and defaults
 *
 * One flush runs at a time (FlushScheduler, the same component the WAL commits with). A flush freezes
 * its range (checkpoint+1 .. target) and copies it. A failed flush rejects its waiters with
 * BACKUP_FAILED and is retried later with the SAME frozen range, so a file name never covers two
 * different ranges and the checkpoint never passes what is durable here.
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
import { FlushpointError, ErrorCode, assert, isFlushpointError } from '../core/errors.js';
import { makeDirDurable } from '../fs/durable-publish.js';
import { isFileSystemError } from '../fs/file-system.js';
import { FlushScheduler, checkWaitOptions, type Wal } from '../wal/index.js';
import { knownOptionsOnly } from '../core/check.js';
import { recoverBackupDir, walStartLsn, type RecoveredBackup } from './adoption.js';
import { copyRange, type PipelineOptions } from './flush-pipeline.js';
import { lockBackupDir, type BackupLock } from './lock.js';
import { backupDefaults, checkDirsApart, checkMode, type BackupSinkOptions, type ForceFlushMode, type ResolvedBackupOptions } from './options.js';
import { RetryPolicy } from './retry-policy.js';
import { SinkStats, type BackupStats } from './stats.js';
import { FlushTriggers } from './triggers.js';
import { LocalDirTarget, type BackupTarget } from './target.js';

export type { BackupStats } from './stats.js';

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
  /** Every forceFlush() that got past its argument checks, once it returned or threw: the admin endpoint's, a drain's and the application's alike. */
  forceFlush: [event: ForceFlushEvent];
}

/** How a forceFlush() ended: ok, or why not. */
export type ForceFlushOutcome = 'ok' | 'timeout' | 'in_progress' | 'failed' | 'aborted';

export interface ForceFlushEvent {
  mode: ForceFlushMode;
  outcome: ForceFlushOutcome;
  waitedMs: number;
}

/** The outcome a forceFlush() that threw `err` had. */
export function forceFlushOutcomeOf(err: unknown): ForceFlushOutcome {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'FLUSH_TIMEOUT') return 'timeout';
  if (code === 'FLUSH_IN_PROGRESS') return 'in_progress';
  if ((err as Error | null)?.name === 'AbortError') return 'aborted';
  return 'failed';
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

function closedError(dir: string): FlushpointError {
  return new FlushpointError(ErrorCode.BACKUP_FAILED, `backup sink on ${dir} is closed`);
}

/** The options forceFlush() knows (a misspelt one, e.g. `timeout`, is a TypeError, not a default barrier). */
const FORCE_FLUSH_OPTIONS = ['mode', 'timeoutMs', 'signal'] as const;

export class BackupSink extends EventEmitter<BackupSinkEvents> {
  readonly dir: string;
  readonly #o: ResolvedBackupOptions;
  readonly #wal: Wal;
  readonly #lock: BackupLock;
  readonly #target: BackupTarget;
  readonly #pipeline: PipelineOptions;
  readonly #scheduler: FlushScheduler;
  readonly #triggers: FlushTriggers;
  readonly #retry: RetryPolicy;
  readonly #stats: SinkStats;
  #status: 'open' | 'closing' | 'closed' = 'open';
  #checkpointLsn: number;
  /** The first LSN of the backup, recorded in every checkpoint it publishes. */
  readonly #startLsn: number;
  /** The frozen target of a flush that failed after it began writing: the retry re-sends exactly this range. */
  #retryTargetLsn = 0;
  #paused = false;
  #retryTimer: unknown = null;
  #closing: Promise<void> | null = null;
  /** The WAL's failure once seen: nothing beyond its durable LSN will ever become durable. */
  #walFailure: Error | null = null;

  private constructor(o: ResolvedBackupOptions, lock: BackupLock, target: BackupTarget, { checkpointLsn, startLsn, adopted, removed }: RecoveredBackup) {
    super();
    this.#o = o;
    this.dir = o.dir;
    this.#wal = o.wal;
    this.#lock = lock;
    this.#target = target;
    this.#pipeline = { wal: o.wal, target, compression: o.compression, segmentSizeBytesMax: o.segmentSizeBytesMax, clock: o.clock };
    this.#checkpointLsn = checkpointLsn;
    this.#startLsn = startLsn;
    this.#stats = new SinkStats(adopted, removed);
    this.#retry = new RetryPolicy(o);
    this.#scheduler = new FlushScheduler({
      source: { freeze: (wanted) => this.#freeze(wanted), write: (target) => this.#flush(target) },
      durableLsn: checkpointLsn,
      sticky: false,
      what: 'backed up',
      clock: o.clock,
      waitersCountMax: o.waitersCountMax,
      // Another writer on the target (S3: the conditional checkpoint refused) is not a failure to retry.
      failureError: (cause) => this.#flushFailure(cause),
    });
    this.#wal.hold(o.holdName, checkpointLsn + 1);
    this.#triggers = new FlushTriggers({
      wal: o.wal,
      clock: o.clock,
      flushIntervalMs: o.flushIntervalMs,
      lagBytesTrigger: Math.min(o.flushLagBytes, o.segmentSizeBytesMax),
      // A pending retry delay holds automatic flushes too: the lag trigger fires at every commit, and
      // must not turn a failing target into a flush per commit (the retry policy's backoff decides).
      armed: () => !this.#paused && this.#status === 'open' && this.#retryTimer === null,
      checkpointLsn: () => this.#checkpointLsn,
      coveredLsn: () => Math.max(this.#checkpointLsn, this.#scheduler.inFlightTargetLsn),
      request: () => this.#scheduler.request(),
      onDurable: (lsn, nowMs) => this.#stats.markDurable(lsn, nowMs),
      onWalEnded: (err) => this.#noteWalFailure(err),
    });
    this.#triggers.start();
  }

  static async open(options: BackupSinkOptions): Promise<BackupSink> {
    const o = backupDefaults(options);
    const wal = o.wal;
    if (wal.status !== 'open') {
      const code = wal.status === 'failed' ? ErrorCode.WAL_FAILED : ErrorCode.WAL_CLOSED;
      throw new FlushpointError(code, `cannot back up WAL ${wal.dir}: it is ${wal.status}`);
    }
    if (o.s3 === null) checkDirsApart(o.dir, wal.dir);
    if (wal.stats().holds[o.holdName] !== undefined) {
      // The default name is the directory's (or the S3 location's): a sink of this WAL already backs up there.
      if (options.holdName === undefined) {
        throw new FlushpointError(ErrorCode.BACKUP_LOCKED, `a sink of WAL ${wal.dir} is already open on ${o.dir} in this process: one sink per backup location`, { file: o.dir });
      }
      throw new RangeError(`WAL ${wal.dir} is already held under the name '${o.holdName}' (another sink?): give each sink its own holdName`);
    }
    // Hold at once, at the lowest LSN the WAL still has: nothing is deleted while the directory is opened.
    wal.hold(o.holdName, walStartLsn(wal));
    let sink: BackupSink | null = null;
    let lock: BackupLock | null = null;
    let target: BackupTarget | null = null;
    try {
      if (o.s3 === null) {
        await makeDirDurable(o.fs, o.dir).catch((err: NodeJS.ErrnoException) => {
          // A file where the directory (or a parent) should be: one typed line naming it, not a bare errno.
          if (err.code === 'ENOTDIR' || err.code === 'EEXIST') {
            throw new FlushpointError(ErrorCode.WRONG_DIRECTORY, `backup directory ${o.dir} is not a directory (${err.code}): a file is in its place`, { cause: err, file: o.dir });
          }
          throw err;
        });
        const dirTarget = new LocalDirTarget(o.fs, o.dir);
        lock = await lockBackupDir(o.fs, o.dir, {
          staleMs: o.lockStaleMs,
          waitMs: o.lockWaitMs,
          clock: o.clock,
          onCompromised: (err) => {
            dirTarget.fence(err);
            if (sink) sink.#compromised(err);
          },
        });
        target = dirTarget;
      } else {
        // S3 excludes a second writer by its conditional checkpoint, not by a lock (s3-target.ts).
        // Loaded only here: a sink on a directory never loads the AWS SDK.
        const { S3Target } = await import('./s3-target.js');
        target = new S3Target(o.s3);
        lock = { release: async () => {} };
      }
      await target.prepare();
      const recovered = await recoverBackupDir(target, wal, o.logger);
      o.logger?.info({ dir: o.dir, ...recovered }, 'backup sink opened');
      sink = new BackupSink(o, lock, target, recovered);
      return sink;
    } catch (err) {
      wal.release(o.holdName);
      await lock?.release();
      await target?.close();
      // The file system's own error (a full disk where the lock or a file goes, EACCES): BACKUP_FAILED
      // naming the file, not a bare errno.
      if (isFileSystemError(err)) {
        throw new FlushpointError(ErrorCode.BACKUP_FAILED, `backup sink on ${o.dir} could not open: ${err.message}`, { cause: err, file: err.path ?? o.dir });
      }
      throw err;
    }
  }

  /** Every LSN <= this is durable in the backup. */
  get checkpointLsn(): number {
    return this.#checkpointLsn;
  }

  /** The first LSN of the backup, fixed when it was created (the WAL's first LSN then). */
  get startLsn(): number {
    return this.#startLsn;
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
    this.#endBackoff();
    if (this.#wal.durableLsn > this.#checkpointLsn) this.#scheduler.request();
  }

  async forceFlush(options: ForceFlushOptions = {}): Promise<ForceFlushResult> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    knownOptionsOnly(options, FORCE_FLUSH_OPTIONS, 'forceFlush');
    const mode = options.mode === undefined ? this.#o.forceFlushMode : checkMode(options.mode, 'mode');
    const timeoutMs = options.timeoutMs ?? this.#o.forceFlushTimeoutMs;
    checkWaitOptions({ timeoutMs, signal: options.signal });
    const startedMs = this.#o.clock.nowMs();
    try {
      if (this.#status !== 'open') throw closedError(this.dir); // counted too ('failed'), as the endpoint did
      const r = await this.#forceFlush(mode, timeoutMs, options.signal, startedMs);
      this.#forceFlushEnded({ mode, outcome: 'ok', waitedMs: r.waitedMs });
      return r;
    } catch (err) {
      this.#forceFlushEnded({ mode, outcome: forceFlushOutcomeOf(err), waitedMs: this.#o.clock.nowMs() - startedMs });
      throw err;
    }
  }

  /** Emits 'forceFlush'; a listener that throws cannot change the call's result (its error is thrown from the next tick). */
  #forceFlushEnded(event: ForceFlushEvent): void {
    if (this.listenerCount('forceFlush') === 0) return;
    try {
      this.emit('forceFlush', event);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  async #forceFlush(mode: ForceFlushMode, timeoutMs: number, signal: AbortSignal | undefined, startedMs: number): Promise<ForceFlushResult> {
    const clock = this.#o.clock;
    const targetLsn = this.#wal.lastLsn;
    const runningAtStart = this.#scheduler.flushing;
    const runBefore = this.#scheduler.flushesRun;
    const result = (): ForceFlushResult => ({
      targetLsn,
      checkpointLsn: this.#checkpointLsn,
      flushesJoined: runningAtStart ? 1 : 0,
      flushesRun: this.#scheduler.flushesRun - runBefore,
      waitedMs: clock.nowMs() - startedMs,
    });
    if (mode === 'reject' && runningAtStart) {
      throw new FlushpointError(ErrorCode.FLUSH_IN_PROGRESS, `a backup flush is in progress (up to LSN ${this.#scheduler.inFlightTargetLsn}); mode 'reject' does not wait`, {
        reachedLsn: this.#checkpointLsn,
      });
    }
    if (mode === 'join') {
      await this.#scheduler.join({ timeoutMs, signal });
      return result();
    }
    if (!this.#walCanAdvance() && targetLsn > this.#wal.durableLsn) {
      // Back up what the WAL did make durable, then say that the rest never will be.
      const durable = this.#wal.durableLsn;
      if (durable > this.#checkpointLsn) await this.#scheduler.wait(durable, { timeoutMs, signal });
      throw new FlushpointError(
        ErrorCode.BACKUP_FAILED,
        `WAL ${this.#wal.dir} ${this.#walFailure ? 'failed' : 'is closed'} at durable LSN ${durable}: LSNs ${durable + 1}..${targetLsn} will never be durable; backed up to ${this.#checkpointLsn}`,
        { cause: this.#walFailure ?? undefined, lsn: durable + 1, reachedLsn: this.#checkpointLsn },
      );
    }
    await this.#scheduler.wait(targetLsn, { timeoutMs, signal });
    const r = result();
    assert(r.checkpointLsn >= targetLsn, `barrier returned checkpoint ${r.checkpointLsn} below its target ${targetLsn}`);
    return r;
  }

  stats(): BackupStats {
    const durable = this.#wal.durableLsn;
    const lagRecords = Math.max(0, durable - this.#checkpointLsn);
    const avgRecordBytes = this.#wal.appends > 0 ? this.#wal.appendedBytes / this.#wal.appends : 0;
    const s = this.#stats;
    return {
      status: this.#status,
      paused: this.#paused,
      flushing: this.#scheduler.flushing,
      checkpointLsn: this.#checkpointLsn,
      walDurableLsn: durable,
      lag: {
        records: lagRecords,
        bytesEstimate: Math.round(lagRecords * avgRecordBytes),
        oldestUnflushedAgeMs: lagRecords > 0 ? s.oldestUnflushedAgeMs(this.#checkpointLsn, this.#o.clock.nowMs()) : 0,
      },
      flushes: s.flushes,
      flushFailures: s.failures,
      consecutiveFailures: this.#retry.consecutiveFailures,
      lastError: s.lastError?.message ?? null,
      filesWritten: s.filesWritten,
      bytesWritten: s.bytesWritten,
      recordsWritten: s.recordsWritten,
      waiters: this.#scheduler.waitersCount,
      stages: s.stages(),
      adoptedOnOpen: s.adoptedOnOpen,
      removedOnOpen: s.removedOnOpen,
    };
  }

  /**
   * Resolves when the target's background work after the last flush is over, whatever its outcome (S3:
   * a file published inline in its checkpoint, being stored under its own name). A flush is durable
   * without it; tests and benchmarks wait for it so that it does not overlap what they measure next.
   */
  async settled(): Promise<void> {
    await this.#target.settled?.();
  }

  /**
   * Flushes what is durable in the WAL, then stops and releases the lock and the WAL hold. Rejects (after
   * releasing) when that flush failed, or (S3) when the last inline file could not be stored under its
   * name because another object holds it (BACKUP_LOCKED: readers refuse that range until the operator acts).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#status = 'closing';
    this.#triggers.stop();
    this.#clearRetryTimer();
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
    try {
      await this.#target.close(); // S3: BACKUP_LOCKED when the last inline file could not be stored under its name
    } catch (err) {
      failure ??= err;
    }
    this.#status = 'closed';
    if (failure) throw failure;
  }

  // ---- the WAL's state ----

  /** The WAL may still make more records durable (open, or closing with its final flush; not failed). */
  #walCanAdvance(): boolean {
    const status = this.#wal.status;
    return this.#walFailure === null && (status === 'open' || status === 'closing');
  }

  #noteWalFailure(err: unknown): void {
    if (this.#walFailure !== null || !isFlushpointError(err, ErrorCode.WAL_FAILED)) return;
    this.#walFailure = err;
    this.#o.logger?.error({ dir: this.dir, err, walDurableLsn: this.#wal.durableLsn }, 'the WAL failed; the sink backs up what it made durable');
    if (!this.#paused && this.#status === 'open' && this.#wal.durableLsn > this.#checkpointLsn) this.#scheduler.request();
  }

  #compromised(err: Error): void {
    this.#stats.lastError = err;
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
    const clock = this.#o.clock;
    const startedMs = clock.nowMs();
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
      // Someone waits for this flush (forceFlush, close): on S3 its file may go inline in the checkpoint.
      const r = await copyRange(this.#pipeline, fromLsn, targetLsn, this.#startLsn, this.#scheduler.waitersCount > 0);
      assert(this.#checkpointLsn === fromLsn - 1, `the checkpoint moved during a flush (${fromLsn - 1} -> ${this.#checkpointLsn})`);
      this.#checkpointLsn = targetLsn;
      this.#retryTargetLsn = 0;
      this.#endBackoff();
      if (this.#wal.status === 'open') this.#wal.hold(this.#o.holdName, targetLsn + 1);
      const durationMs = clock.nowMs() - startedMs;
      this.#stats.flushed(fromLsn, targetLsn, r.files, r.bytes, { ...r, totalMs: durationMs });
      this.emit('flush', { fromLsn, toLsn: targetLsn, bytes: r.bytes, files: r.files, durationMs });
      this.#triggers.flushEnded();
    } catch (err) {
      this.#onFailure(err as Error);
      throw err;
    }
  }

  /**
   * What a failed flush reports, to its waiters and to 'error' listeners alike: BACKUP_FAILED with the
   * checkpoint reached and the cause attached; another writer on the target (BACKUP_LOCKED) as it is.
   */
  #flushFailure(cause: unknown): Error {
    if (isFlushpointError(cause, ErrorCode.BACKUP_LOCKED)) return cause;
    return new FlushpointError(ErrorCode.BACKUP_FAILED, `backup flush to ${this.#o.dir} failed; the checkpoint stays at ${this.#checkpointLsn}: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
      reachedLsn: this.#checkpointLsn,
    });
  }

  #onFailure(err: Error): void {
    this.#stats.failed(err);
    const decision = this.#retry.failed();
    this.#o.logger?.warn({ dir: this.dir, err, consecutiveFailures: this.#retry.consecutiveFailures }, 'backup flush failed');
    if (this.listenerCount('error') > 0) this.emit('error', this.#flushFailure(err));
    if (this.#status !== 'open') return;
    if (isFlushpointError(err, ErrorCode.BACKUP_LOCKED)) {
      // Retrying cannot help while another sink writes here: stop until the operator resumes.
      this.#paused = true;
      this.#o.logger?.error({ dir: this.dir, err }, 'another writer owns the backup target; sink paused');
      return;
    }
    if (decision.action === 'pause') {
      this.#paused = true;
      this.#o.logger?.error({ dir: this.dir, err, failures: this.#retry.consecutiveFailures }, 'backup sink paused after repeated failures');
      return;
    }
    this.#clearRetryTimer();
    this.#retryTimer = this.#o.clock.setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#paused && this.#status === 'open') this.#scheduler.request();
    }, decision.delayMs);
  }

  /**
   * The backoff is over (a flush succeeded, or resume()): the failure count restarts, and the retry timer
   * goes too, since while it is pending the lag trigger and the interval hold off.
   */
  #endBackoff(): void {
    this.#retry.reset();
    this.#clearRetryTimer();
  }

  #clearRetryTimer(): void {
    if (this.#retryTimer !== null) this.#o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }
}
