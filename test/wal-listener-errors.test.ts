/**
 * A listener of the WAL's events that throws (review of 2026-12-05): a 'slowSync' listener ran inside the
 * commit's promise, so its error failed the WAL (WAL_FAILED to every waiter of a batch that was on disk,
 * and the log refusing writes until reopened); a 'durable' listener's error became an unhandled rejection
 * of a promise nobody held. Now both are thrown from a later tick, uncaught exceptions as from any
 * emitter that emits from I/O, and the WAL goes on. Run in a child process: the test runner traps
 * uncaught exceptions of its own process.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const INDEX = new URL('../dist/index.js', import.meta.url).href;

function runChild(script: string): { out: Record<string, unknown>; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return { out: JSON.parse(last) as Record<string, unknown>, stderr: r.stderr };
}

describe('WAL event listeners that throw', () => {
  it("a 'slowSync' listener's error does not fail the commit it reports, nor the WAL", () => {
    const { out } = runChild(`
      import { Wal, MemoryFileSystem, FaultFileSystem } from ${JSON.stringify(INDEX)};
      const uncaught = [];
      process.on('uncaughtException', (e) => uncaught.push(e.message));
      const fs = new FaultFileSystem(new MemoryFileSystem());
      const wal = await Wal.open({ dir: '/w', fs, fsyncLatencyMsWarn: 1 });
      wal.on('slowSync', () => { throw new Error('slowSync listener bug'); });
      fs.inject({ op: 'datasync', delayMs: 5, times: 2 });
      const first = await wal.appendDurable(new Uint8Array(8)).then(() => 'resolved', (e) => e.code);
      await new Promise((r) => setTimeout(r, 20));
      const second = await wal.appendDurable(new Uint8Array(8)).then(() => 'resolved', (e) => e.code);
      await new Promise((r) => setTimeout(r, 20));
      const status = wal.status, durableLsn = wal.durableLsn;
      await wal.close();
      console.log(JSON.stringify({ first, second, status, durableLsn, uncaught }));
    `);
    const { uncaught, ...rest } = out;
    expect(rest).toEqual({ first: 'resolved', second: 'resolved', status: 'open', durableLsn: 2 });
    // At least the first commit was slow (its sync waited 5 ms): each slow one threw, outside the commit.
    expect((uncaught as string[]).length).toBeGreaterThanOrEqual(1);
    expect(new Set(uncaught as string[])).toEqual(new Set(['slowSync listener bug']));
  });

  it("a 'durable' listener's error is an uncaught exception, not an unhandled rejection; the WAL goes on", () => {
    const { out } = runChild(`
      import { Wal, MemoryFileSystem } from ${JSON.stringify(INDEX)};
      const uncaught = [], unhandled = [];
      process.on('uncaughtException', (e) => uncaught.push(e.message));
      process.on('unhandledRejection', (e) => unhandled.push(String(e?.message ?? e)));
      const wal = await Wal.open({ dir: '/w', fs: new MemoryFileSystem() });
      const bug = () => { throw new Error('durable listener bug'); };
      wal.on('durable', bug);
      const first = await wal.appendDurable(new Uint8Array(8)).then(() => 'resolved', (e) => e.code);
      await new Promise((r) => setTimeout(r, 20));
      wal.off('durable', bug);
      const second = await wal.appendDurable(new Uint8Array(8)).then(() => 'resolved', (e) => e.code);
      const status = wal.status;
      await wal.close();
      console.log(JSON.stringify({ first, second, status, uncaught, unhandled }));
    `);
    expect(out).toEqual({ first: 'resolved', second: 'resolved', status: 'open', uncaught: ['durable listener bug'], unhandled: [] });
  });
});
