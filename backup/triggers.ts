/**
 * What starts an automatic flush: the interval (flushIntervalMs), and the lag (the estimated bytes
 * durable in the WAL and neither backed up nor in the running flush reach lagBytesTrigger: flushLagBytes,
 * or segmentSizeBytesMax if smaller). The lag is checked at every WAL commit; a request while a flush
 * runs marks the scheduler's one trailing flush, so under load the next flush starts the moment the
 * running one ends, and what a drain's barrier flush carries stays near one lag trigger's worth. Counting
 * the lag past the running flush's range (not past the checkpoint) keeps every automatic flush at least
 * a trigger's worth under load: never a flush per commit, files of about lagBytesTrigger or more. Under
 * a light load the lag never reaches it and the interval batches records as before.
 * Retries after a failure are the retry policy's (armed() is false while one is pending). The tail loop
 * also tells the stats when records become durable, and the facade when the WAL fails (nothing past its
 * durable LSN will come). Timers go through the injected clock.
 */
import type { Clock } from '../core/clock.js';
import type { Wal } from '../wal/index.js';

export interface TriggerOptions {
  wal: Wal;
  clock: Clock;
  flushIntervalMs: number;
  /** Estimated bytes durable in the WAL and not backed up that start a flush. */
  lagBytesTrigger: number;
  /** Automatic flushes may run now (the sink is open, not paused, no retry delay pending). */
  armed(): boolean;
  checkpointLsn(): number;
  /** The checkpoint, or the running flush's frozen target when higher: backed up or on its way. */
  coveredLsn(): number;
  /** Asks the scheduler for a flush. */
  request(): void;
  /** The WAL's durable LSN advanced to `lsn` at `nowMs`. */
  onDurable(lsn: number, nowMs: number): void;
  /** The WAL's durable-LSN stream ended with `err` (closed, or failed). */
  onWalEnded(err: unknown): void;
}

export class FlushTriggers {
  readonly #o: TriggerOptions;
  readonly #tailAbort = new AbortController();
  #timer: unknown = null;
  #stopped = false;

  constructor(o: TriggerOptions) {
    this.#o = o;
  }

  start(): void {
    this.#armInterval();
    void this.#tail();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#tailAbort.abort();
  }

  #armInterval(): void {
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = null;
      if (this.#stopped) return;
      this.#onInterval();
      this.#armInterval();
    }, this.#o.flushIntervalMs);
  }

  #onInterval(): void {
    const { wal } = this.#o;
    if (!this.#o.armed() || wal.status === 'closed') return;
    if (wal.durableLsn > this.#o.checkpointLsn()) this.#o.request();
  }

  async #tail(): Promise<void> {
    const { wal, clock } = this.#o;
    const signal = this.#tailAbort.signal;
    while (!this.#stopped) {
      let durable: number;
      try {
        durable = await wal.nextDurable({ signal });
      } catch (err) {
        if (!this.#stopped) this.#o.onWalEnded(err);
        return; // closed (ours or the WAL's) or the WAL failed: nothing more will become durable
      }
      this.#o.onDurable(durable, clock.nowMs());
      this.#checkLag(durable);
    }
  }

  /**
   * A flush succeeded (called before the scheduler sees it end): if a trigger's worth became durable
   * while it ran, the next one starts as soon as it ends. Usually a commit during the flush asked
   * already; this covers commits that came while no trigger was armed (a retry delay).
   */
  flushEnded(): void {
    if (!this.#stopped) this.#checkLag(this.#o.wal.durableLsn);
  }

  #checkLag(durableLsn: number): void {
    if (!this.#o.armed()) return;
    // Cheap counters only: this runs at every WAL commit.
    const { wal } = this.#o;
    const avgRecordBytes = wal.appends > 0 ? wal.appendedBytes / wal.appends : 0;
    if ((durableLsn - this.#o.coveredLsn()) * avgRecordBytes >= this.#o.lagBytesTrigger) this.#o.request();
  }
}
