/**
 * What starts an automatic flush: the interval (flushIntervalMs), and the size cap (the estimated bytes
 * durable in the WAL but not backed up reach segmentSizeBytesMax). Retries after a failure are the retry
 * policy's. The tail loop also tells the stats when records become durable, and the facade when the WAL
 * fails (nothing past its durable LSN will come). Timers go through the injected clock.
 */
import type { Clock } from '../core/clock.js';
import type { Wal } from '../wal/index.js';

export interface TriggerOptions {
  wal: Wal;
  clock: Clock;
  flushIntervalMs: number;
  segmentSizeBytesMax: number;
  /** Automatic flushes may run now (the sink is open and not paused). */
  armed(): boolean;
  checkpointLsn(): number;
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
      if (!this.#o.armed()) continue;
      // Cheap counters only: this runs at every WAL commit.
      const avgRecordBytes = wal.appends > 0 ? wal.appendedBytes / wal.appends : 0;
      if ((durable - this.#o.checkpointLsn()) * avgRecordBytes >= this.#o.segmentSizeBytesMax) this.#o.request();
    }
  }
}
