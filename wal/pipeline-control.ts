/**
 * PipelineControl: when FlushScheduler runs pipelined (two cohorts of writers, one's loop work beside the
 * other's flush; see flush-scheduler.ts). 'always' is pipelined from the start, its cohort split at half
 * the last flush. 'auto' measures instead of assuming: under batches of at least two cohorts of
 * PIPELINE_COHORT_RECORDS_MIN records, a trial splits the next batch and runs pipelined; it is kept only
 * while its rate (median records / median ms between completions, over PIPELINE_SAMPLES flushes) beats
 * the full batches' before it by PIPELINE_MARGIN; a trial clearly losing ends after
 * PIPELINE_SAMPLES_EARLY flushes; trials that lose back off, holds that keep winning grow. Medians: a
 * flush now and then takes 10x its usual time, in either mode.
 */

/** Rate samples per mode behind the decision (medians of the last this many flushes). */
export const PIPELINE_SAMPLES = 32;
/** A trial of pipelining starts at most this often; each trial that loses doubles the wait, up to the max. */
export const PIPELINE_TRIAL_INTERVAL_MS = 500;
export const PIPELINE_TRIAL_INTERVAL_MS_MAX = 8_000;
/**
 * Pipelining, once kept, goes back to full batches after this long, to measure them again; each time it
 * wins again the hold doubles, up to the max (full batches are the slow mode where pipelining wins:
 * measuring them often costs the tail latency).
 */
export const PIPELINE_HOLD_MS = 2_000;
export const PIPELINE_HOLD_MS_MAX = 16_000;
/** No trial while the batches are smaller than two cohorts of this many records. */
export const PIPELINE_COHORT_RECORDS_MIN = 16;
/** A trial is kept while its rate (records per ms, medians) is at least this times the full batches'. */
export const PIPELINE_MARGIN = 1.05;
/** A trial below this ratio after PIPELINE_SAMPLES_EARLY flushes ends at once. */
export const PIPELINE_EARLY_LOSS = 0.85;
export const PIPELINE_SAMPLES_EARLY = 8;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

/** Records per ms from rate samples: median records / median ms between completions. */
function rateOf(records: readonly number[], ms: readonly number[]): number {
  return median(records) / Math.max(median(ms), 1e-6);
}

/** Pushes x, keeping the last PIPELINE_SAMPLES. */
function sample(xs: number[], x: number): void {
  xs.push(x);
  if (xs.length > PIPELINE_SAMPLES) xs.shift();
}

export class PipelineControl {
  readonly #always: boolean;
  #pipelined: boolean;
  #splitAt = Number.MAX_SAFE_INTEGER;
  /** Rate samples, the last PIPELINE_SAMPLES of each mode: records of a flush, ms since the completion before it. */
  #fullRecords: number[] = [];
  #fullMs: number[] = [];
  #halfRecords: number[] = [];
  #halfMs: number[] = [];
  #lastCompletionMs = 0;
  /** The first trial comes PIPELINE_TRIAL_INTERVAL_MS after construction: a process's first flushes run before its code is optimized. */
  #lastTrialMs: number;
  #trialIntervalMs = PIPELINE_TRIAL_INTERVAL_MS;
  #holdMs = PIPELINE_HOLD_MS;
  /** Whether the running trial has beaten the full batches yet (it then holds for #holdMs from #heldSinceMs). */
  #trialWon = false;
  #pipelinedSinceMs = 0;
  /** When the running trial won: its hold counts from then (a trial of slow flushes can take longer than a hold). */
  #heldSinceMs = 0;
  /**
   * The pipelined rate when the last trial's hold ended still winning (0 when the last trial lost, or
   * its hold stopped winning): full batches clearly below it end their re-measure early, and the next
   * win doubles the hold.
   */
  #heldRate = 0;

  constructor(mode: 'auto' | 'always', nowMs: number) {
    this.#always = mode === 'always';
    this.#pipelined = this.#always;
    this.#lastTrialMs = nowMs;
  }

  /** Whether flushes run pipelined now. */
  get pipelined(): boolean {
    return this.#pipelined;
  }

  /** While pipelined: a flush starts at once, none running, when this many records wait: the writers released after that ride the next one. */
  get splitAt(): number {
    return this.#splitAt;
  }

  /** After each flush of `records` records, completed at `nowMs`: its rate sample, and the decision. */
  observe(records: number, nowMs: number): void {
    if (this.#always) {
      this.#splitAt = Math.ceil(records / 2);
      return;
    }
    const sinceMs = nowMs - this.#lastCompletionMs;
    this.#lastCompletionMs = nowMs;
    if (this.#pipelined) this.#observePipelined(records, nowMs, sinceMs);
    else this.#observeFull(records, nowMs, sinceMs);
  }

  #observeFull(records: number, nowMs: number, sinceMs: number): void {
    sample(this.#fullRecords, records);
    sample(this.#fullMs, sinceMs);
    const n = this.#fullMs.length;
    // Full batches measured again after a hold that was still winning: once they are clearly slower
    // than that hold's pipelined rate, the next trial starts without waiting for all the samples (a
    // full batch is the slow mode there, with the worst tail latency).
    const measured = n === PIPELINE_SAMPLES || (this.#heldRate > 0 && n >= PIPELINE_SAMPLES_EARLY && rateOf(this.#fullRecords, this.#fullMs) < this.#heldRate * PIPELINE_EARLY_LOSS);
    const due = records >= 2 * PIPELINE_COHORT_RECORDS_MIN && measured && nowMs - this.#lastTrialMs >= this.#trialIntervalMs;
    if (!due || median(this.#fullRecords) < 2 * PIPELINE_COHORT_RECORDS_MIN) return;
    // A trial: the next batch is split in two and the flushes go on pipelined.
    this.#pipelined = true;
    this.#splitAt = Math.ceil(median(this.#fullRecords) / 2);
    this.#halfRecords = [];
    this.#halfMs = [];
    this.#lastTrialMs = nowMs;
    this.#pipelinedSinceMs = nowMs;
    this.#trialWon = false;
  }

  #observePipelined(records: number, nowMs: number, sinceMs: number): void {
    // The first pipelined flush's interval spans the switch: it says nothing of either mode.
    if (nowMs - this.#pipelinedSinceMs > sinceMs) {
      sample(this.#halfRecords, records);
      sample(this.#halfMs, sinceMs);
    }
    const n = this.#halfMs.length;
    if (n < PIPELINE_SAMPLES_EARLY) return;
    const halfRate = rateOf(this.#halfRecords, this.#halfMs);
    const ratio = halfRate / rateOf(this.#fullRecords, this.#fullMs);
    // A trial that is clearly losing ends early (most lose by 20-30%); a win needs the full count.
    if (n < PIPELINE_SAMPLES && (this.#trialWon || ratio >= PIPELINE_EARLY_LOSS)) return;
    const wins = ratio >= PIPELINE_MARGIN;
    if (wins && !this.#trialWon) {
      this.#trialWon = true;
      this.#heldSinceMs = nowMs;
      this.#trialIntervalMs = PIPELINE_TRIAL_INTERVAL_MS;
      this.#holdMs = this.#heldRate > 0 ? Math.min(this.#holdMs * 2, PIPELINE_HOLD_MS_MAX) : PIPELINE_HOLD_MS;
    } else if (!wins && !this.#trialWon) {
      // A trial that lost backs off (a hold that stopped winning starts the next hold from the shortest: #heldRate 0).
      this.#trialIntervalMs = Math.min(this.#trialIntervalMs * 2, PIPELINE_TRIAL_INTERVAL_MS_MAX);
    }
    if (!wins || nowMs - this.#heldSinceMs >= this.#holdMs) {
      // Back to full batches (the completion defers the next start, so both cohorts ride it), sampled afresh.
      this.#heldRate = wins ? halfRate : 0;
      this.#pipelined = false;
      this.#fullRecords = [];
      this.#fullMs = [];
    }
  }
}
