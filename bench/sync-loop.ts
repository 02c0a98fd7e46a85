/**
 * A timed synchronous loop around one durable I/O step (a write + fdatasync, or a writev of a batch +
 * fdatasync). It can run in several slices, interleaved with other measurements, and its figures cover
 * every slice since the last reset. Synchronous on purpose: it is the tightest loop Node allows, the
 * baseline that asynchronous code is held against.
 */
import { LatencyRecorder, nowUs } from './latency.js';

export class SyncLoop {
  readonly #step: () => void;
  #recorder = new LatencyRecorder();
  #elapsedUs = 0;

  /** `step` does one unit of work and throws if it fails or comes up short. */
  constructor(step: () => void) {
    this.#step = step;
  }

  runFor(durationUs: number, onTick: (fraction: number) => void = () => {}): void {
    if (!(durationUs > 0)) throw new RangeError(`durationUs must be > 0, got ${durationUs}`);
    const startUs = nowUs();
    let doneUs = 0;
    while (doneUs < durationUs) {
      const t0 = nowUs();
      this.#step();
      const t1 = nowUs();
      this.#recorder.add(t1 - t0);
      doneUs = t1 - startUs;
      onTick(doneUs / durationUs);
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
