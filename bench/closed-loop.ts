/**
 * The closed-loop load every store is measured under (the WAL and each peer alike): `writersCount`
 * writers, each issuing one durable write and waiting for its acknowledgement before the next, for a
 * warm-up and then a measured window. Throughput is the acknowledgements that arrive inside the window
 * divided by its length; ack latency is from the call to the acknowledgement, for those same writes.
 *
 * Phases are flipped by timers. A store whose writes block the event loop (a synchronous driver) delays
 * the flip, but the window's bounds are taken when the flip actually runs, so the figures stay honest.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cdf, LatencyRecorder, nowUs, summarize, type CdfPoint, type LatencySummary } from './latency.js';

/** One durable write; resolves once the store acknowledges it as durable. */
export type DurableWrite = (writerIndex: number, sequence: number) => Promise<unknown>;

export interface ClosedLoopOptions {
  writersCount: number;
  warmupMs: number;
  windowMs: number;
  write: DurableWrite;
  /** Called as the window opens and as it closes (for store-side counters such as syncs). */
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
  /** Called now and then with the fraction of the run done. */
  onTick?: (fraction: number) => void;
  /** The clock, in microseconds (tests count its reads). Default nowUs. */
  clockUs?: () => number;
}

export interface ClosedLoopResult {
  writersCount: number;
  opsCount: number;
  windowMs: number;
  opsPerSec: number;
  ackLatency: LatencySummary;
  cdf: CdfPoint[];
}

/** Writers that have not returned this long after the window closed mean the store is stuck. */
export const stopTimeoutMs = 30_000;
const tickIntervalMs = 100;

type Phase = 'warmup' | 'window' | 'stopped';

export async function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const { writersCount, warmupMs, windowMs, write } = options;
  const clockUs = options.clockUs ?? nowUs;
  if (!(Number.isSafeInteger(writersCount) && writersCount >= 1)) throw new RangeError(`writersCount must be >= 1, got ${writersCount}`);
  if (!(windowMs > 0 && warmupMs >= 0)) throw new RangeError('windowMs must be > 0 and warmupMs >= 0');
  const recorder = new LatencyRecorder();
  let phase: Phase = 'warmup';
  let failure: unknown;

  // One clock read per write: a writer issues its next write as soon as the last is acknowledged, so
  // the acknowledgement's time is the next call's (nothing is awaited between them; what runs between
  // is recorder.add, which once per 65,536 samples allocates its next chunk, ~20 us). A second read per write cost ~50 ns of the event loop's time per write here, beside a
  // WAL's ~330 ns per record at 64 writers: the harness measured itself.
  const writer = async (writerIndex: number): Promise<void> => {
    let sequence = 0;
    let calledUs = clockUs();
    while (phase !== 'stopped') {
      await write(writerIndex, sequence++);
      const ackedUs = clockUs();
      if (phase === 'window') recorder.add(ackedUs - calledUs);
      calledUs = ackedUs;
    }
  };
  const writers = Array.from({ length: writersCount }, (_, i) =>
    writer(i).catch((err: unknown) => {
      failure ??= err;
      phase = 'stopped';
    }),
  );

  const runMs = warmupMs + windowMs;
  const startUs = nowUs();
  const ticker = setInterval(() => options.onTick?.(Math.min(1, (nowUs() - startUs) / 1000 / runMs)), tickIntervalMs);
  let windowStartUs = startUs;
  let windowEndUs = startUs;
  try {
    await sleep(warmupMs);
    if (phase === 'warmup') {
      phase = 'window';
      windowStartUs = nowUs();
      options.onWindowStart?.();
      await sleep(windowMs);
    }
    if (phase === 'window') {
      // Close the window before anything else runs, so no acknowledgement lands between the two.
      phase = 'stopped';
      windowEndUs = nowUs();
      options.onWindowEnd?.();
    }
    phase = 'stopped';
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), stopTimeoutMs)));
    const outcome = await Promise.race([Promise.all(writers), stuck]);
    clearTimeout(timer);
    if (outcome === 'stuck') throw new Error(`${writersCount} writers still waiting for acknowledgements ${stopTimeoutMs} ms after the window closed`);
  } finally {
    clearInterval(ticker);
  }
  if (failure !== undefined) throw failure;

  const sorted = recorder.sorted();
  const measuredMs = (windowEndUs - windowStartUs) / 1000;
  if (!(measuredMs > 0)) throw new Error('the measured window has no length');
  return {
    writersCount,
    opsCount: sorted.length,
    windowMs: measuredMs,
    opsPerSec: sorted.length / (measuredMs / 1000),
    ackLatency: summarize(sorted),
    cdf: cdf(sorted),
  };
}
