/**
 * Timing cheap operations with tinybench: one call of a 16 B CRC or one waiter costs less than reading
 * the clock, so each timed task runs `callsPerRun` calls and the result is divided back to one call.
 * The p50 of the runs is reported (robust against the noisy neighbours of a shared machine).
 */
import { Bench } from 'tinybench';

export type Task = () => void | Promise<void>;

/** Nanoseconds per call, at the median run, for each task. Tasks run one after the other. */
export async function nsPerCall(tasks: Readonly<Record<string, Task>>, callsPerRun: number, timeMs: number): Promise<Record<string, number>> {
  if (!(Number.isSafeInteger(callsPerRun) && callsPerRun >= 1)) throw new RangeError(`callsPerRun must be >= 1, got ${callsPerRun}`);
  const bench = new Bench({ time: timeMs, warmupTime: Math.min(100, timeMs / 4) });
  for (const [name, task] of Object.entries(tasks)) bench.add(name, task);
  await bench.run();
  const result: Record<string, number> = {};
  for (const name of Object.keys(tasks)) {
    const taskResult = bench.getTask(name)?.result;
    if (taskResult === undefined || !('latency' in taskResult)) throw new Error(`task ${name} has no result (state ${taskResult?.state})`);
    result[name] = (taskResult.latency.p50 * 1e6) / callsPerRun; // ms per run -> ns per call
  }
  return result;
}

/** `--time-ms N` from the command line (default 500). */
export function timeMsFromArgs(argv: readonly string[]): number {
  const index = argv.indexOf('--time-ms');
  const timeMs = index === -1 ? 500 : Number(argv[index + 1]);
  if (!(timeMs > 0)) throw new RangeError('--time-ms must be a positive number');
  return timeMs;
}
