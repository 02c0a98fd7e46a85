/**
 * Micro-benchmark: what one waiter costs the flush scheduler. N waiters (distinct target LSNs, as N
 * closed-loop writers produce) wait on one flush whose write does nothing; the time from the first
 * wait() to the last resolution, divided by N, is the scheduler's per-waiter cost. The baseline is the
 * same N plain promises resolved together (the least any waiter list can cost).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/micro/scheduler.bench.js [--time-ms N]
 */
import { FlushScheduler } from '../../wal/index.js';
import { formatRatio } from '../format.js';
import { figureColumn, renderTable } from '../text-table.js';
import { nsPerCall, timeMsFromArgs } from './per-call.js';

const waitersCounts = [1, 64, 1024, 16384] as const;

interface SchedulerResult {
  waitersCount: number;
  promiseNs: number;
  schedulerNs: number;
}

function makeScheduler(): { scheduler: FlushScheduler; lastLsn: () => number; advance: (n: number) => number } {
  let appendedLsn = 0;
  const scheduler = new FlushScheduler({
    source: { freeze: () => appendedLsn, write: async () => {} },
    durableLsn: 0,
    sticky: true,
    failureError: (cause) => new Error('flush failed', { cause }),
    what: 'durable',
  });
  return { scheduler, lastLsn: () => appendedLsn, advance: (n) => (appendedLsn += n) };
}

async function measure(waitersCount: number, timeMs: number): Promise<SchedulerResult> {
  const { scheduler, advance } = makeScheduler();
  const waiters = new Array<Promise<number>>(waitersCount);
  const viaScheduler = async (): Promise<void> => {
    const first = advance(waitersCount) - waitersCount + 1;
    for (let i = 0; i < waitersCount; i++) waiters[i] = scheduler.wait(first + i);
    await Promise.all(waiters);
  };
  const plain = new Array<Promise<void>>(waitersCount);
  const viaPromises = async (): Promise<void> => {
    const resolvers: Array<() => void> = [];
    for (let i = 0; i < waitersCount; i++) plain[i] = new Promise<void>((resolve) => resolvers.push(resolve));
    setImmediate(() => {
      for (const resolve of resolvers) resolve();
    });
    await Promise.all(plain);
  };
  const ns = await nsPerCall({ promises: viaPromises, scheduler: viaScheduler }, waitersCount, timeMs);
  if (scheduler.durableLsn === 0) throw new Error('the scheduler never flushed');
  return { waitersCount, promiseNs: ns.promises!, schedulerNs: ns.scheduler! };
}

async function main(): Promise<void> {
  const timeMs = timeMsFromArgs(process.argv.slice(2));
  console.log(`FlushScheduler: cost per waiter, one no-op flush for N waiters, node ${process.version}, p50 of ${timeMs} ms per task`);
  const results: SchedulerResult[] = [];
  for (const count of waitersCounts) results.push(await measure(count, timeMs));
  console.log(
    renderTable<SchedulerResult>(
      [
        figureColumn('waiters', (r) => String(r.waitersCount)),
        figureColumn('plain promises ns/waiter', (r) => r.promiseNs.toFixed(1)),
        figureColumn('scheduler ns/waiter', (r) => r.schedulerNs.toFixed(1)),
        figureColumn('vs plain promises', (r) => formatRatio(r.schedulerNs / r.promiseNs)),
      ],
      results,
    ),
  );
}

await main();
