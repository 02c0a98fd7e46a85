/**
 * Drain, the rolling-restart step, over a { wal, sink } pair: the engine refuses new writes (its own
 * flag, ENGINE_DRAINING) and then calls Drainer.drain(), which
 *   1. takes the WAL's lastLsn: every write the engine accepted was appended by then (the engine
 *      appends synchronously when it accepts a write),
 *   2. waits until the WAL made it durable,
 *   3. samples walDurableLsn and, in the same turn, runs a barrier forceFlush on the sink, whose target
 *      (the WAL's lastLsn at the call) is >= walDurableLsn: so backupCheckpointLsn >= walDurableLsn,
 *   4. answers { walDurableLsn, backupCheckpointLsn, waitedMs }.
 * Concurrent drains share one run (and so one result). Each caller's timeout and AbortSignal end only
 * its own wait: a drain that times out rejects with DrainTimeoutError (FLUSH_TIMEOUT) carrying the LSNs
 * reached, while the shared run goes on; the next drain joins it. A WAL or backup failure rejects every
 * caller of that run with its error (WAL_FAILED, BACKUP_FAILED): never a success that is not true.
 */
import { EventEmitter } from 'node:events';
import { ErrorCode, FlushpointError, assert } from '../../core/errors.js';
import { LatencyRecorder, type LatencySummary } from '../../core/latency.js';
import type { BackupSink } from '../../backup/index.js';
import { TIMEOUT_MS_MAX, type Wal } from '../../wal/index.js';
import type { DrainResult } from './target.js';

export interface DrainSources {
  wal: Wal;
  /** null when the engine runs no backup: the drain then ends once the WAL is durable. */
  sink: BackupSink | null;
}

export interface DrainOptions {
  /** How long this caller waits, in ms (Infinity: no limit). Default Infinity. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type DrainOutcome = 'ok' | 'timeout' | 'failed' | 'aborted';

export interface DrainStats {
  /** Drain calls, by how they ended. */
  calls: Record<DrainOutcome, number>;
  /** Shared runs started (concurrent calls share one). */
  runs: number;
  running: boolean;
  last: DrainResult | null;
  durationMs: LatencySummary;
}

export interface DrainerEvents {
  /** A drain call ended: how, and how long it waited, in ms. */
  drain: [outcome: DrainOutcome, waitedMs: number];
}

/** FLUSH_TIMEOUT from a drain: the LSNs reached when the caller gave up. */
export class DrainTimeoutError extends FlushpointError {
  readonly walDurableLsn: number;
  readonly backupCheckpointLsn: number | null;

  constructor(timeoutMs: number, targetLsn: number, walDurableLsn: number, backupCheckpointLsn: number | null) {
    const backup = backupCheckpointLsn === null ? 'no backup' : `backup checkpoint ${backupCheckpointLsn}`;
    super(ErrorCode.FLUSH_TIMEOUT, `drain did not finish within ${timeoutMs} ms: target LSN ${targetLsn}, WAL durable ${walDurableLsn}, ${backup}`, {
      lsn: targetLsn,
      reachedLsn: backupCheckpointLsn ?? walDurableLsn,
    });
    this.walDurableLsn = walDurableLsn;
    this.backupCheckpointLsn = backupCheckpointLsn;
  }
}

/** Checks drain()'s options (TypeError / RangeError); returns the timeout in ms. */
export function checkDrainOptions(options: DrainOptions): number {
  if (options === null || typeof options !== 'object') throw new TypeError('drain options must be an object');
  for (const key of Object.keys(options)) if (key !== 'timeoutMs' && key !== 'signal') throw new TypeError(`unknown drain option '${key}'`);
  const timeoutMs = options.timeoutMs ?? Number.POSITIVE_INFINITY;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || (timeoutMs > TIMEOUT_MS_MAX && timeoutMs !== Number.POSITIVE_INFINITY)) {
    throw new RangeError(`timeoutMs must be a number of ms in [0, ${TIMEOUT_MS_MAX}] or Infinity, got ${String(timeoutMs)}`);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  return timeoutMs;
}

export class Drainer extends EventEmitter<DrainerEvents> {
  readonly #sources: () => DrainSources;
  #run: { targetLsn: number; promise: Promise<DrainResult> } | null = null;
  readonly #calls: Record<DrainOutcome, number> = { ok: 0, timeout: 0, failed: 0, aborted: 0 };
  #runs = 0;
  #last: DrainResult | null = null;
  readonly #durations = new LatencyRecorder(1024);

  /** `sources` is read at each drain (the engine's WAL and sink exist only while it is open). */
  constructor(sources: DrainSources | (() => DrainSources)) {
    super();
    this.#sources = typeof sources === 'function' ? sources : () => sources;
  }

  /** Waits until every write appended so far is durable in the WAL and in the backup (see the module comment). */
  async drain(options: DrainOptions = {}): Promise<DrainResult> {
    const timeoutMs = checkDrainOptions(options);
    const signal = options.signal;
    const started = performance.now();
    signal?.throwIfAborted();
    const run = this.#start();
    let timer: NodeJS.Timeout | null = null;
    let onAbort: (() => void) | null = null;
    const { wal, sink } = this.#sources();
    try {
      const result = await new Promise<DrainResult>((resolve, reject) => {
        run.promise.then(resolve, reject);
        if (timeoutMs !== Number.POSITIVE_INFINITY) {
          timer = setTimeout(() => reject(new DrainTimeoutError(timeoutMs, run.targetLsn, wal.durableLsn, sink ? sink.checkpointLsn : null)), timeoutMs);
        }
        if (signal) {
          onAbort = () => reject(signal.reason);
          signal.addEventListener('abort', onAbort, { once: true });
        }
      });
      const waitedMs = performance.now() - started;
      this.#ended('ok', waitedMs);
      return { ...result, waitedMs };
    } catch (err) {
      const outcome: DrainOutcome = err instanceof DrainTimeoutError ? 'timeout' : signal?.aborted && err === signal.reason ? 'aborted' : 'failed';
      this.#ended(outcome, performance.now() - started);
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  stats(): DrainStats {
    return { calls: { ...this.#calls }, runs: this.#runs, running: this.#run !== null, last: this.#last, durationMs: this.#durations.summary() };
  }

  #ended(outcome: DrainOutcome, waitedMs: number): void {
    this.#calls[outcome]++;
    this.#durations.record(waitedMs);
    this.emit('drain', outcome, waitedMs);
  }

  /**
   * The running shared run when its target covers every write appended so far, or a new one. A run
   * whose target is below the WAL's last LSN (a drain timed out, resume() let more writes in, and a
   * new drain came) would answer for a state older than the caller's: a new run starts beside it.
   */
  #start(): { targetLsn: number; promise: Promise<DrainResult> } {
    const { wal, sink } = this.#sources();
    if (this.#run && this.#run.targetLsn >= wal.lastLsn) return this.#run;
    const targetLsn = wal.lastLsn;
    const started = performance.now();
    this.#runs++;
    const promise = (async (): Promise<DrainResult> => {
      if (targetLsn > wal.durableLsn) await wal.waitDurable(targetLsn, { timeoutMs: Number.POSITIVE_INFINITY });
      // Sample the durable LSN and call forceFlush in the same turn: its target (lastLsn now) is >= it.
      const walDurableLsn = wal.durableLsn;
      assert(walDurableLsn >= targetLsn, `drain: WAL durable ${walDurableLsn} below its target ${targetLsn}`);
      if (sink === null) return { walDurableLsn, backupCheckpointLsn: null, waitedMs: performance.now() - started };
      const flushed = await sink.forceFlush({ mode: 'barrier', timeoutMs: Number.POSITIVE_INFINITY });
      assert(flushed.targetLsn >= walDurableLsn, `drain: barrier target ${flushed.targetLsn} below the durable LSN ${walDurableLsn}`);
      assert(flushed.checkpointLsn >= walDurableLsn, `drain: backup checkpoint ${flushed.checkpointLsn} below the durable LSN ${walDurableLsn}`);
      return { walDurableLsn, backupCheckpointLsn: flushed.checkpointLsn, waitedMs: performance.now() - started };
    })();
    const run = { targetLsn, promise };
    this.#run = run;
    promise.then(
      (r) => {
        this.#last = r;
      },
      () => {},
    ).finally(() => {
      if (this.#run === run) this.#run = null;
    });
    return run;
  }
}
