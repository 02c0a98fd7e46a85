/**
 * The acknowledgement ceiling: how many closed-loop writers' acknowledgements one Node thread can
 * deliver when the store does no I/O at all. The "store" acknowledges everything written during an
 * event-loop turn together on the next turn (perfect group commit, zero cost). No store measured through
 * the same harness can beat this, so when a figure comes close to it, the limit is the event loop (one
 * promise and one await per write), not the disk.
 */
import { runClosedLoop, type ClosedLoopResult } from './closed-loop.js';

export type LoopCeilingResult = Pick<ClosedLoopResult, 'writersCount' | 'opsPerSec' | 'ackLatency'> & {
  /** The harness's loop busy time per acknowledgement, in us (performance.eventLoopUtilization). */
  loopBusyUsPerRecord: number;
};

function idealStore(): () => Promise<void> {
  let pending: Promise<void> | undefined;
  return () => {
    if (pending === undefined) {
      let acknowledge!: () => void;
      pending = new Promise<void>((resolve) => (acknowledge = resolve));
      setImmediate(() => {
        pending = undefined;
        acknowledge();
      });
    }
    return pending;
  };
}

export async function measureLoopCeiling(writersCount: number, warmupMs: number, windowMs: number): Promise<LoopCeilingResult> {
  let loopAtStart = performance.eventLoopUtilization();
  let loop = loopAtStart;
  const { opsPerSec, ackLatency, opsCount } = await runClosedLoop({
    writersCount,
    warmupMs,
    windowMs,
    write: idealStore(),
    onWindowStart: () => (loopAtStart = performance.eventLoopUtilization()),
    onWindowEnd: () => (loop = performance.eventLoopUtilization(loopAtStart)),
  });
  return { writersCount, opsPerSec, ackLatency, loopBusyUsPerRecord: opsCount === 0 ? Number.NaN : (loop.active * 1000) / opsCount };
}
