/**
 * A timed synchronous loop around one durable I/O step (a write + fdatasync, or a writev of a batch +
 * fdatasync). It can run in several slices, interleaved with other measurements, and its figures cover
 * every slice since the last reset. Each step is synchronous on purpose: it is the tightest loop Node
 * allows, the baseline that asynchronous code is held against. The loop hands the event loop a turn
 * every yieldEveryUs (the time between turns is not counted), so that Ctrl-C is handled at once instead
 * of after a slice of several seconds.
 */
import { setImmediate as turn } from 'node:timers/promises';
import { LatencyRecorder, nowUs } from './latency.js';

/** Longest run of synchronous steps between two turns of the event loop. */
export const yieldEveryUs = 50_000;

export class SyncLoop {
  readonly #step: () => void;
  #recorder = new LatencyRecorder();
  #elapsedUs = 0;

  /** `step` does one unit of work and throws if it fails or comes up short. */
  constructor(step: () => void) {
    this.#step = step;
  }

  async runFor(durationUs: number, onTick: (fraction: number) => void = () => {}): Promise<void> {
    if (!(durationUs > 0)) throw new RangeError(`durationUs must be > 0, got ${durationUs}`);
    let doneUs = 0;
    while (doneUs < durationUs) {
      const sliceStartUs = nowUs();
      let sliceUs = 0;
      while (doneUs + sliceUs < durationUs && sliceUs < yieldEveryUs) {
        const t0 = nowUs();
        this.#step();
        const t1 = nowUs();
        this.#recorder.add(t1 - t0);
        sliceUs = t1 - sliceStartUs;
        onTick((doneUs + sliceUs) / durationUs);
      }
      doneUs += sliceUs;
      if (doneUs < durationUs) await turn();
    }
    this.#elapsedUs += doneUs;
  }

  /** Step latencies (us, ascending) and steps per second over every slice since the last reset. */
  figures(): { sortedUs: Float64Array; stepsPerSec: number } {
    const sortedUs = this.#recorder.sorted();
    if (sortedUs.length === 0) throw new Error('the loop has not run');
    return { sortedUs, stepsPerSec: sortedUs.length / (this.#elapsedUs / 1e6) };
  }

  reset(): void {
    this.#recorder = new LatencyRecorder();
    this.#elapsedUs = 0;
  }
}
