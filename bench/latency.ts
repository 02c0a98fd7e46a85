/**
 * Latency samples and their summary. Samples are microseconds, kept in fixed Float64Array chunks so
 * that recording one allocates once per 65,536 samples and never copies. Percentiles are nearest-rank
 * on the sorted samples: p99 is the smallest sample at or above which 1% of the samples lie, never an
 * interpolation.
 */
import { performance } from 'node:perf_hooks';

/** Microseconds since an arbitrary origin, with sub-microsecond resolution. */
export function nowUs(): number {
  return performance.now() * 1000;
}

export interface LatencySummary {
  count: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/** One point of a cumulative distribution: the fraction of samples at or below `latencyUs`. */
export type CdfPoint = [latencyUs: number, fraction: number];

const samplesPerChunk = 65_536;

/** The fractions a CDF is drawn at: even steps, then the tail in finer steps, then the maximum. */
const cdfFractions: readonly number[] = (() => {
  const fractions: number[] = [];
  for (let i = 1; i <= 98; i++) fractions.push(i / 100);
  fractions.push(0.99, 0.995, 0.999, 0.9995, 0.9999, 1);
  return fractions;
})();

/**
 * Latency samples, kept in fixed chunks: recording never copies what it holds (a growing array copied
 * 32 MB at once, inside a measured window, at a million writes per second).
 */
export class LatencyRecorder {
  readonly #full: Float64Array[] = [];
  #chunk = new Float64Array(samplesPerChunk);
  #inChunk = 0;

  get count(): number {
    return this.#full.length * samplesPerChunk + this.#inChunk;
  }

  add(latencyUs: number): void {
    if (this.#inChunk === samplesPerChunk) {
      this.#full.push(this.#chunk);
      this.#chunk = new Float64Array(samplesPerChunk);
      this.#inChunk = 0;
    }
    this.#chunk[this.#inChunk++] = latencyUs;
  }

  /** The samples, sorted ascending (a copy: the recorder can go on recording). */
  sorted(): Float64Array {
    const all = new Float64Array(this.count);
    let at = 0;
    for (const chunk of this.#full) {
      all.set(chunk, at);
      at += samplesPerChunk;
    }
    all.set(this.#chunk.subarray(0, this.#inChunk), at);
    return all.sort();
  }
}

/** Nearest-rank percentile of ascending samples; `fraction` in (0, 1]. */
export function percentile(sortedUs: Float64Array, fraction: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  if (sortedUs.length === 0) return Number.NaN;
  const rank = Math.min(sortedUs.length, Math.max(1, Math.ceil(fraction * sortedUs.length)));
  return sortedUs[rank - 1]!;
}

export function summarize(sortedUs: Float64Array): LatencySummary {
  let sumUs = 0;
  for (let i = 0; i < sortedUs.length; i++) {
    // Sorted ascending is this module's contract; a NaN or a reordering would corrupt every percentile.
    if (i > 0 && !(sortedUs[i - 1]! <= sortedUs[i]!)) throw new Error('latency samples are not sorted');
    sumUs += sortedUs[i]!;
  }
  const count = sortedUs.length;
  return {
    count,
    meanUs: count === 0 ? Number.NaN : sumUs / count,
    p50Us: percentile(sortedUs, 0.5),
    p90Us: percentile(sortedUs, 0.9),
    p99Us: percentile(sortedUs, 0.99),
    p999Us: percentile(sortedUs, 0.999),
    maxUs: count === 0 ? Number.NaN : sortedUs[count - 1]!,
  };
}

/** A compact CDF (about a hundred points, finer in the tail) for charts and the JSON report. */
export function cdf(sortedUs: Float64Array): CdfPoint[] {
  if (sortedUs.length === 0) return [];
  return cdfFractions.map((fraction): CdfPoint => [percentile(sortedUs, fraction), fraction]);
}
