/**
 * FlushScheduler: group commit, written once, used by the WAL (durable LSN) and the backup sink
 * (checkpoint LSN).
 *
 * - Single flight: at most one flush runs. A request that arrives while one runs marks exactly one
 *   trailing flush, which starts when the running one ends and takes everything frozen by then.
 * - Waiters are keyed by the LSN they need and released in LSN order once the durable LSN reaches them.
 *   The ordering rule (take the waiters, then the bytes) holds by construction: a waiter for LSN L is
 *   released only by a flush whose frozen target is >= L, and a frozen target covers every record with
 *   an LSN at or below it, because LSNs are assigned before the bytes are frozen.
 * - A flush starts deferred (setImmediate, or after commitDelayMs), so everything appended in the
 *   current turn of the event loop, including by writers that a completed flush just released, rides it.
 * - Pipelining (option `pipeline`, the WAL's worker mode): where the event loop's work for a batch
 *   (the releases and the appends that follow them) costs more than the fixed part of a flush, the
 *   writers do better in two cohorts: a completed flush starts the next one at once, with what was
 *   appended while it ran, before its own waiters run, so one cohort's loop work overlaps the other's
 *   flush. Whether it does better is measured, not assumed (PipelineControl, pipeline-control.ts).
 *   Durability and ordering are those of any flush: only when a flush starts changes.
 * - Per waiter timeout and AbortSignal: the waiter leaves; the flush goes on.
 * - Failure: every waiter at the time is rejected with the same error. With `sticky`, the scheduler
 *   stays failed: every later wait is rejected at once and no flush runs again.
 */
import { assert, FlushpointError, ErrorCode } from '../core/errors.js';
import { realClock, type Clock } from '../core/clock.js';
import { knownOptionsOnly } from '../core/check.js';
import { TIMEOUT_MS_MAX, WAITERS_COUNT_MAX_DEFAULT } from './limits.js';
import { PipelineControl } from './pipeline-control.js';

export interface FlushSource {
  /**
   * Called synchronously when a flush starts: freeze what this flush will cover and return its last
   * LSN. `wantedLsn` is the highest LSN a waiter asks for. Returning <= durableLsn means nothing to do.
   */
  freeze(wantedLsn: number): number;
  /** Makes everything up to `targetLsn` durable. Rejects on failure. */
  write(targetLsn: number): Promise<void>;
}

export interface FlushResult {
  /** First LSN this flush made durable (durableLsn before it + 1). */
  fromLsn: number;
  /** The durable LSN after it. */
  toLsn: number;
  durationMs: number;
}

export interface WaitOptions {
  /** Give up after this long, in ms (FLUSH_TIMEOUT); the flush goes on. Infinity or absent: no timeout. At most 2^31 - 1 otherwise. */
  timeoutMs?: number | undefined;
  /** Give up when this aborts, rejecting with its reason (at once if it is already aborted). */
  signal?: AbortSignal | undefined;
}

const WAIT_OPTION_NAMES: readonly (keyof WaitOptions)[] = ['timeoutMs', 'signal'];

/**
 * Validates a caller's wait options: RangeError for a bad timeout, TypeError for a signal that is not one.
 * timeoutMs is in ms: Infinity means no timeout; a finite value above TIMEOUT_MS_MAX (2^31 - 1, what a
 * Node timer can hold) is refused, since Node would fire it after 1 ms instead.
 */
export function checkWaitOptions(options: WaitOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  knownOptionsOnly(options, WAIT_OPTION_NAMES, 'wait options');
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined) {
    // A string '10' printed as 10 in a RangeError hid what was wrong: its type.
    if (typeof timeoutMs !== 'number') throw new TypeError(`timeoutMs must be a number, got ${typeof timeoutMs} ${JSON.stringify(timeoutMs)}`);
    if (!(timeoutMs >= 0)) throw new RangeError(`timeoutMs must be a number >= 0, got ${timeoutMs}`);
    if (timeoutMs > TIMEOUT_MS_MAX && timeoutMs !== Number.POSITIVE_INFINITY) {
      throw new RangeError(`timeoutMs must be at most ${TIMEOUT_MS_MAX} (about 24.8 days) or Infinity (no timeout), got ${timeoutMs}`);
    }
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
}

/** True when a timer must be armed for this timeout (Infinity and undefined mean none). */
function hasTimeout(timeoutMs: number | undefined): timeoutMs is number {
  if (timeoutMs === undefined || timeoutMs === Number.POSITIVE_INFINITY) return false;
  assert(timeoutMs >= 0 && timeoutMs <= TIMEOUT_MS_MAX, `timeout ${timeoutMs} ms was checked by checkWaitOptions`);
  return true;
}

export interface FlushSchedulerOptions {
  source: FlushSource;
  /** What is durable when the scheduler starts. */
  durableLsn: number;
  /** Extra time a flush waits to gather a batch, in ms. 0: the next turn of the event loop. */
  commitDelayMs?: number;
  /** Failure stays: the WAL (a failed fsync poisons the log). The backup sink retries instead. */
  sticky: boolean;
  /**
   * Split the writers into two cohorts whose flushes and loop work overlap: 'auto' where that measures
   * faster (see the module comment), 'always', or 'off' (default). Off with commitDelayMs > 0.
   */
  pipeline?: 'auto' | 'off' | 'always';
  /** Wraps a write failure into the error every waiter sees (WAL_FAILED, BACKUP_FAILED). */
  failureError: (cause: unknown) => Error;
  /** Stable words for timeout messages: 'durable' or 'backed up'. */
  what: string;
  clock?: Clock;
  onFlushed?: (result: FlushResult) => void;
  /**
   * Upper bound on waiters at once, a count, over every wait path (wait, waitShared, waitNext, join);
   * beyond it a wait rejects with RangeError (push back, do not grow). Default WAITERS_COUNT_MAX_DEFAULT.
   */
  waitersCountMax?: number;
}

interface Waiter {
  targetLsn: number;
  resolve: (durableLsn: number) => void;
  reject: (err: unknown) => void;
  settled: boolean;
  timer: unknown;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Waiters without a timeout or signal share one promise per flush: no allocation per waiter. */
interface Group {
  promise: Promise<number>;
  resolve: (durableLsn: number) => void;
  reject: (err: unknown) => void;
  maxTargetLsn: number;
  count: number;
}

function newGroup(): Group {
  let resolve!: (v: number) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<number>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject, maxTargetLsn: 0, count: 0 };
}

interface Joiner {
  resolve: (r: FlushResult) => void;
  reject: (err: unknown) => void;
}

export class FlushScheduler {
  readonly #source: FlushSource;
  readonly #clock: Clock;
  readonly #commitDelayMs: number;
  readonly #sticky: boolean;
  readonly #failureError: (cause: unknown) => Error;
  readonly #what: string;
  readonly #onFlushed: ((r: FlushResult) => void) | undefined;
  readonly #waitersCountMax: number;

  #durableLsn: number;
  /** Sorted by targetLsn, ascending; settled waiters are skipped lazily from #head. */
  #waiters: Waiter[] = [];
  #head = 0;
  #liveWaiters = 0;
  #next: Waiter[] = [];
  /** Shared waiters released by the running flush, and those waiting for the one after it. */
  #inFlightGroup: Group | null = null;
  #nextGroup: Group | null = null;
  /** Callers joining the running flush (or, if none runs, the next one). */
  #joinRunning: Joiner[] = [];
  #joinNext: Joiner[] = [];
  #inFlightTargetLsn = 0;
  #scheduled = false;
  #trailing = false;
  #failed: Error | null = null;
  #flushesRun = 0;
  #idle: Array<() => void> = [];

  /** Pipelining (options.pipeline, see the module comment): whether a flush runs pipelined now, and the cohort split; null when off. */
  readonly #control: PipelineControl | null;
  #pipelinedFlushes = 0;

  constructor(options: FlushSchedulerOptions) {
    assert(Number.isSafeInteger(options.durableLsn) && options.durableLsn >= 0, 'initial durable LSN');
    this.#source = options.source;
    this.#clock = options.clock ?? realClock;
    this.#commitDelayMs = options.commitDelayMs ?? 0;
    this.#sticky = options.sticky;
    this.#failureError = options.failureError;
    this.#what = options.what;
    this.#onFlushed = options.onFlushed;
    this.#waitersCountMax = options.waitersCountMax ?? WAITERS_COUNT_MAX_DEFAULT;
    this.#durableLsn = options.durableLsn;
    const pipeline = this.#commitDelayMs === 0 ? (options.pipeline ?? 'off') : 'off';
    this.#control = pipeline === 'off' ? null : new PipelineControl(pipeline, this.#clock.nowMs());
  }

  /** Whether flushes run pipelined now (two cohorts), and how many flushes started as a cohort's so far (at another's completion, or once half a batch waited). */
  get pipelining(): { active: boolean; flushes: number } {
    return { active: this.#pipelined, flushes: this.#pipelinedFlushes };
  }

  get #pipelined(): boolean {
    return this.#control?.pipelined === true;
  }

  get durableLsn(): number {
    return this.#durableLsn;
  }

  /** The frozen target of the running flush, or 0 when none runs. */
  get inFlightTargetLsn(): number {
    return this.#inFlightTargetLsn;
  }

  get flushing(): boolean {
    return this.#inFlightTargetLsn !== 0;
  }

  get failure(): Error | null {
    return this.#failed;
  }

  get flushesRun(): number {
    return this.#flushesRun;
  }

  get waitersCount(): number {
    return (
      this.#liveWaiters + this.#next.length + this.#joinRunning.length + this.#joinNext.length + (this.#inFlightGroup?.count ?? 0) + (this.#nextGroup?.count ?? 0)
    );
  }

  /**
   * Asks for a flush soon. While one runs, marks the single trailing flush. `lastLsn`, the last LSN
   * appended (the WAL passes it on every append), lets a pipelined scheduler start a cohort's flush
   * at once, once splitAt records wait, so the writers released after that ride the next flush.
   */
  request(lastLsn = 0): void {
    if (this.#failed) return;
    if (this.#inFlightTargetLsn !== 0) {
      this.#trailing = true;
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      // keepAlive: records wait for this start, as they do for the setImmediate below (which Node keeps alive).
      if (this.#commitDelayMs > 0) this.#clock.setTimeout(() => this.#start(), this.#commitDelayMs, true);
      else this.#clock.defer(() => this.#start());
    }
    const control = this.#control;
    if (control !== null && control.pipelined && lastLsn - this.#durableLsn >= control.splitAt) this.#startCohort();
  }

  /** Resolves with the durable LSN once it is >= targetLsn. */
  wait(targetLsn: number, options: WaitOptions = {}): Promise<number> {
    assert(Number.isSafeInteger(targetLsn) && targetLsn >= 0, `wait target ${targetLsn}`);
    const { signal, timeoutMs } = options;
    // An aborted signal rejects even when there is nothing to wait for, as Node's APIs do.
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (targetLsn <= this.#durableLsn) return Promise.resolve(this.#durableLsn);
    if (this.#failed) return Promise.reject(this.#failed);
    const full = this.#full();
    if (full) return Promise.reject(full);
    return new Promise<number>((resolve, reject) => {
      const w: Waiter = { targetLsn, resolve, reject, settled: false, timer: undefined, signal, onAbort: undefined };
      this.#insert(w);
      if (hasTimeout(timeoutMs)) {
        w.timer = this.#clock.setTimeout(() => {
          this.#leave(
            w,
            new FlushpointError(
              ErrorCode.FLUSH_TIMEOUT,
              `LSN ${targetLsn} was not ${this.#what} within ${timeoutMs} ms (reached ${this.#durableLsn})`,
              { lsn: targetLsn, reachedLsn: this.#durableLsn },
            ),
          );
        }, timeoutMs);
      }
      if (signal) {
        w.onAbort = () => this.#leave(w, signal.reason);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.request();
    });
  }

  /**
   * As wait(targetLsn) with no timeout and no signal, but every such waiter of one flush shares one
   * promise: the hot path of group commit allocates nothing per waiter. The shared promise resolves
   * with the flush's target, which covers every target in its group.
   */
  waitShared(targetLsn: number): Promise<number> {
    if (targetLsn <= this.#durableLsn) return Promise.resolve(this.#durableLsn);
    if (this.#failed) return Promise.reject(this.#failed);
    const full = this.#full();
    if (full) return Promise.reject(full);
    let group: Group;
    if (this.#inFlightTargetLsn !== 0 && targetLsn <= this.#inFlightTargetLsn) group = this.#inFlightGroup ??= newGroup();
    else {
      group = this.#nextGroup ??= newGroup();
      this.request();
    }
    group.count++;
    if (targetLsn > group.maxTargetLsn) group.maxTargetLsn = targetLsn;
    return group.promise;
  }

  /** Resolves at the next advance of the durable LSN, with the new value. */
  waitNext(options: { signal?: AbortSignal | undefined } = {}): Promise<number> {
    if (this.#failed) return Promise.reject(this.#failed);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const full = this.#full();
    if (full) return Promise.reject(full);
    return new Promise<number>((resolve, reject) => {
      const w: Waiter = { targetLsn: 0, resolve, reject, settled: false, timer: undefined, signal, onAbort: undefined };
      this.#next.push(w);
      if (signal) {
        w.onAbort = () => {
          const i = this.#next.indexOf(w);
          if (i >= 0) this.#next.splice(i, 1);
          this.#settle(w);
          reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
    });
  }

  /**
   * Resolves with the result of the running flush, or, when none runs, of the next one (which this
   * requests). Rejects if that flush fails. A timeout (FLUSH_TIMEOUT) or an abort affects this caller
   * only: the flush goes on.
   */
  join(options: WaitOptions = {}): Promise<FlushResult> {
    if (this.#failed) return Promise.reject(this.#failed);
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const full = this.#full();
    if (full) return Promise.reject(full);
    return new Promise<FlushResult>((resolve, reject) => {
      let settled = false;
      let timer: unknown;
      const onAbort = (): void => leave(signal?.reason);
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const leave = (reason: unknown): void => {
        if (settle()) reject(reason);
      };
      // A joiner that left is settled: the flush's later resolve or reject finds it a no-op.
      const joiner: Joiner = { resolve: (r) => settle() && resolve(r), reject: leave };
      if (hasTimeout(timeoutMs)) {
        timer = this.#clock.setTimeout(
          () =>
            leave(
              new FlushpointError(ErrorCode.FLUSH_TIMEOUT, `the flush did not finish within ${timeoutMs} ms (${this.#what} up to ${this.#durableLsn})`, {
                reachedLsn: this.#durableLsn,
              }),
            ),
          timeoutMs,
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.#inFlightTargetLsn !== 0) this.#joinRunning.push(joiner);
      else {
        this.#joinNext.push(joiner);
        this.request();
      }
    });
  }

  /** Makes the scheduler fail as if a flush had failed with `err` (e.g. on close). */
  fail(err: Error): void {
    this.#failed ??= err;
    this.#rejectAll(err);
  }

  /** Resolves when no flush runs or is scheduled. */
  idle(): Promise<void> {
    if (this.#inFlightTargetLsn === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** The error for one waiter too many (every wait path checks it before it adds one), or null. */
  #full(): RangeError | null {
    if (this.waitersCount < this.#waitersCountMax) return null;
    return new RangeError(`too many waiters: ${this.waitersCount} already wait (waitersCountMax ${this.#waitersCountMax})`);
  }

  #insert(w: Waiter): void {
    const list = this.#waiters;
    let i = list.length;
    // Targets mostly arrive in increasing order: search back from the end.
    while (i > this.#head && (list[i - 1] as Waiter).targetLsn > w.targetLsn) i--;
    if (i === list.length) list.push(w);
    else list.splice(i, 0, w);
    this.#liveWaiters++;
  }

  #settle(w: Waiter): void {
    w.settled = true;
    if (w.timer !== undefined) this.#clock.clearTimeout(w.timer);
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
  }

  #leave(w: Waiter, reason: unknown): void {
    if (w.settled) return;
    this.#settle(w);
    this.#liveWaiters--;
    w.reject(reason);
  }

  #highestWantedLsn(): number {
    for (let i = this.#waiters.length - 1; i >= this.#head; i--) {
      const w = this.#waiters[i] as Waiter;
      if (!w.settled) return w.targetLsn;
    }
    return 0;
  }

  #start(): void {
    this.#scheduled = false;
    if (this.#inFlightTargetLsn !== 0) return;
    if (this.#failed) {
      // A start deferred before the failure: whoever waits for idle() (close) must hear of it.
      this.#notifyIdle();
      return;
    }
    const fromLsn = this.#durableLsn + 1;
    const targetLsn = this.#source.freeze(this.#highestWantedLsn());
    assert(Number.isSafeInteger(targetLsn), 'frozen target must be an integer');
    this.#trailing = false;
    const joiners = this.#joinNext;
    this.#joinNext = [];
    if (targetLsn <= this.#durableLsn) {
      // Nothing new: a joiner of "the next flush" gets an empty result now.
      const result: FlushResult = { fromLsn, toLsn: this.#durableLsn, durationMs: 0 };
      for (const j of joiners) j.resolve(result);
      this.#notifyIdle();
      return;
    }
    this.#inFlightTargetLsn = targetLsn;
    // The shared group rides this flush if the flush covers all of it; otherwise it waits for the next.
    if (this.#nextGroup && this.#nextGroup.maxTargetLsn <= targetLsn) {
      assert(this.#inFlightGroup === null, 'no shared group is left from an earlier flush');
      this.#inFlightGroup = this.#nextGroup;
      this.#nextGroup = null;
    }
    this.#joinRunning.push(...joiners);
    this.#flushesRun++;
    const startedMs = this.#clock.nowMs();
    let promise: Promise<void>;
    try {
      promise = this.#source.write(targetLsn);
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      () => this.#completed(fromLsn, targetLsn, this.#clock.nowMs() - startedMs),
      (err: unknown) => this.#failedFlush(err),
    );
  }

  #completed(fromLsn: number, targetLsn: number, durationMs: number): void {
    assert(targetLsn > this.#durableLsn, `durable LSN must advance: ${this.#durableLsn} -> ${targetLsn}`);
    assert(this.#inFlightTargetLsn === targetLsn, 'completed flush is the one in flight');
    this.#inFlightTargetLsn = 0;
    if (this.#failed) {
      // Failed meanwhile (closed): the waiters were rejected then; nothing to release.
      this.#notifyIdle();
      return;
    }
    this.#durableLsn = targetLsn;
    const result: FlushResult = { fromLsn, toLsn: targetLsn, durationMs };
    this.#control?.observe(targetLsn - fromLsn + 1, this.#clock.nowMs());
    // Release in LSN order.
    const list = this.#waiters;
    while (this.#head < list.length) {
      const w = list[this.#head] as Waiter;
      if (!w.settled) {
        if (w.targetLsn > targetLsn) break;
        this.#settle(w);
        this.#liveWaiters--;
        w.resolve(targetLsn);
      }
      this.#head++;
    }
    const group = this.#inFlightGroup;
    this.#inFlightGroup = null;
    if (group) {
      assert(group.maxTargetLsn <= targetLsn, `shared group needs ${group.maxTargetLsn}, flush reached ${targetLsn}`);
      group.resolve(targetLsn);
    }
    if (this.#head > 1024 && this.#head * 2 > list.length) {
      this.#waiters = list.slice(this.#head);
      this.#head = 0;
    }
    const next = this.#next;
    this.#next = [];
    for (const w of next) {
      this.#settle(w);
      w.resolve(targetLsn);
    }
    const joiners = this.#joinRunning;
    this.#joinRunning = [];
    for (const j of joiners) j.resolve(result);
    // Listeners (the WAL's 'durable' event) run once this flush's bookkeeping is done: one that appends
    // may start the next flush from inside this call (request(lastLsn), pipelined), and that flush must
    // find no group, joiner or waiter of this one left to take. One that throws still leaves the next
    // flush started or requested; its error is thrown from the next tick, an uncaught exception (as from
    // any emitter that emits from I/O), not a rejection of a promise nobody holds.
    try {
      this.#onFlushed?.(result);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    } finally {
      this.#afterCompletion();
    }
  }

  /** After a completion: the next flush for whatever waits, or idle. */
  #afterCompletion(): void {
    if (this.#trailing || this.#liveWaiters > 0 || this.#joinNext.length > 0 || this.#nextGroup !== null) {
      // Pipelined: what was appended while this flush ran starts now, before this flush's waiters run
      // (their resolutions are queued microtasks), so their loop work overlaps it.
      if (this.#pipelined) this.#startCohort();
      else this.request();
    } else this.#notifyIdle();
  }

  /** Starts a flush now (pipelined) and counts it if one did start: it runs beside the other cohort's loop work. */
  #startCohort(): void {
    const before = this.#flushesRun;
    this.#start();
    if (this.#flushesRun !== before) this.#pipelinedFlushes++; // one did start here (not one a listener started)
  }

  #failedFlush(cause: unknown): void {
    this.#inFlightTargetLsn = 0;
    const err = this.#failureError(cause);
    if (this.#sticky) this.#failed ??= err;
    this.#trailing = false;
    this.#rejectAll(this.#failed ?? err);
    this.#notifyIdle();
  }

  #rejectAll(err: Error): void {
    const list = this.#waiters;
    this.#waiters = [];
    const head = this.#head;
    this.#head = 0;
    this.#liveWaiters = 0;
    for (let i = head; i < list.length; i++) {
      const w = list[i] as Waiter;
      if (w.settled) continue;
      this.#settle(w);
      w.reject(err);
    }
    const next = this.#next;
    this.#next = [];
    for (const w of next) {
      this.#settle(w);
      w.reject(err);
    }
    const joiners = [...this.#joinRunning, ...this.#joinNext];
    this.#joinRunning = [];
    this.#joinNext = [];
    for (const j of joiners) j.reject(err);
    for (const g of [this.#inFlightGroup, this.#nextGroup]) g?.reject(err);
    this.#inFlightGroup = null;
    this.#nextGroup = null;
  }

  #notifyIdle(): void {
    if (this.#inFlightTargetLsn !== 0 || this.#scheduled) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }
}
