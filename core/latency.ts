/**
 * LatencyRecorder: the last `capacity` samples in a ring (one store per sample on the hot path, no
 * allocation); percentiles are computed on demand by sorting a copy.
 */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export class LatencyRecorder {
  readonly #samples: Float64Array;
  #count = 0;
  #maxMs = 0;

  constructor(capacity = 65_536) {
    this.#samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    this.#samples[this.#count % this.#samples.length] = ms;
    this.#count++;
    if (ms > this.#maxMs) this.#maxMs = ms;
  }

  get count(): number {
    return this.#count;
  }

  summary(): LatencySummary {
    const n = Math.min(this.#count, this.#samples.length);
    if (n === 0) return { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0 };
    const sorted = this.#samples.slice(0, n).sort();
    const at = (q: number): number => sorted[Math.min(n - 1, Math.floor(q * n))] as number;
    let sum = 0;
    for (const v of sorted) sum += v;
    return { count: this.#count, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), p999Ms: at(0.999), maxMs: this.#maxMs, meanMs: sum / n };
  }
}
