/**
 * What the sink does after a failed flush: retry after an exponential delay with jitter, or, after
 * failuresCountMax consecutive failures, pause (resume() starts over). Pure: the facade owns the timer.
 *
 *   delay(n) = base / 2 + random * base / 2,  base = min(retryDelayMsMax, retryDelayMsMin * 2^(n-1))
 */
import { assert } from '../core/errors.js';
import type { Random } from '../core/random.js';

export interface RetryPolicyOptions {
  retryDelayMsMin: number;
  retryDelayMsMax: number;
  failuresCountMax: number;
  random: Random;
}

export type RetryDecision = { action: 'retry'; delayMs: number } | { action: 'pause' };

export class RetryPolicy {
  readonly #o: RetryPolicyOptions;
  #consecutiveFailures = 0;

  constructor(o: RetryPolicyOptions) {
    assert(o.retryDelayMsMin >= 1 && o.retryDelayMsMax >= o.retryDelayMsMin, `retry delays ${o.retryDelayMsMin}..${o.retryDelayMsMax}`);
    assert(o.failuresCountMax >= 1, `failuresCountMax ${o.failuresCountMax}`);
    this.#o = o;
  }

  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** A flush failed: what next. */
  failed(): RetryDecision {
    this.#consecutiveFailures++;
    if (this.#consecutiveFailures >= this.#o.failuresCountMax) return { action: 'pause' };
    const exponent = Math.min(this.#consecutiveFailures - 1, 52);
    const baseMs = Math.min(this.#o.retryDelayMsMax, this.#o.retryDelayMsMin * 2 ** exponent);
    const delayMs = baseMs / 2 + this.#o.random.next() * (baseMs / 2); // jitter: [base/2, base)
    assert(delayMs >= 0 && delayMs <= this.#o.retryDelayMsMax, `retry delay ${delayMs}`);
    return { action: 'retry', delayMs };
  }

  /** A flush succeeded, or the operator resumed: the count starts over. */
  reset(): void {
    this.#consecutiveFailures = 0;
  }
}
