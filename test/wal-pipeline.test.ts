/**
 * The WAL's pipelineCommits option: its values, where it applies, and pipelined flushes on a real WAL
 * (in-memory file system, worker mode): every acknowledged record is there after a reopen, in order.
 * The 'auto' decision is tested deterministically in test/flush-pipeline.test.ts; the power-loss
 * campaign (test/wal-power-loss.test.ts) runs a third of its seeds with 'always'.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';

const DIR = '/w';

async function closedLoop(wal: Wal, writers: number, perWriter: number): Promise<Map<number, string>> {
  const acked = new Map<number, string>();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < perWriter; i++) {
        const text = `w${w}-${i}`;
        const lsn = await wal.appendDurable(Buffer.from(text));
        acked.set(lsn, text);
      }
    }),
  );
  return acked;
}

async function readAll(wal: Wal): Promise<Map<number, string>> {
  const got = new Map<number, string>();
  for await (const r of wal.read({ fromLsn: wal.firstLsn })) got.set(r.lsn, Buffer.from(r.payload).toString());
  return got;
}

describe('WAL pipelineCommits', () => {
  it("refuses values other than 'auto', 'off' and 'always'", async () => {
    const fs = new MemoryFileSystem();
    for (const bad of ['on', true, 1]) {
      await expect(Wal.open({ dir: DIR, fs, pipelineCommits: bad as never })).rejects.toThrow(/pipelineCommits must be 'auto', 'off' or 'always'/);
    }
  });

  it("'always' splits the writers into cohorts, and every acknowledged record is there after a reopen", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 64 * 1024, pipelineCommits: 'always' });
    const acked = await closedLoop(wal, 64, 40);
    const stats = wal.stats();
    // Pipelined flushes carry about half the writers: more flushes than full batches of 64 would need.
    expect(stats.pipelinedBatches).toBeGreaterThan(10);
    expect(stats.batches).toBeGreaterThan((64 * 40) / 64 + 10);
    await wal.close();
    const reopened = await Wal.open({ dir: DIR, fs });
    const got = await readAll(reopened);
    expect(got.size).toBe(64 * 40);
    for (const [lsn, text] of acked) expect(got.get(lsn)).toBe(text);
    await reopened.close();
  });

  it("a 'durable' listener may append and wait while flushes run pipelined: nothing hangs, nothing is lost", async () => {
    // Regression (review of the pipelining change): the listener ran inside the completed flush's
    // bookkeeping, its append started the next flush there, and the scheduler hung (an assertion, an
    // unhandled rejection, the completed flush's waiters never released).
    for (const pipelineCommits of ['always', 'off'] as const) {
      const fs = new MemoryFileSystem();
      const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 1024 * 1024, pipelineCommits });
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown): void => void unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      let events = 0;
      const markers: Promise<number>[] = [];
      wal.on('durable', () => {
        events++;
        if (events % 10 === 0) markers.push(wal.appendDurable(Buffer.from(`marker ${events}`)));
        else if (events % 7 === 0) wal.append(Buffer.from(`note ${events}`));
      });
      const work = closedLoop(wal, 64, 40).then(async (acked) => ({ acked, markers: await Promise.all(markers) }));
      const outcome = await Promise.race([work, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000))]);
      process.off('unhandledRejection', onUnhandled);
      expect(outcome, pipelineCommits).not.toBe('hung');
      expect(unhandled, pipelineCommits).toEqual([]);
      if (pipelineCommits === 'always') expect(wal.stats().pipelinedBatches).toBeGreaterThan(10);
      const { acked, markers: markerLsns } = outcome as { acked: Map<number, string>; markers: number[] };
      await wal.close();
      const reopened = await Wal.open({ dir: DIR, fs });
      const got = await readAll(reopened);
      for (const [lsn, text] of acked) expect(got.get(lsn)).toBe(text);
      for (const lsn of markerLsns) expect(got.get(lsn)).toMatch(/^marker /);
      await reopened.close();
    }
  });

  it('pipelinedBatches counts each pipelined flush once, also one a listener started', async () => {
    // Regression (second review): a flush a 'durable' listener's append had started inside a completion
    // was counted again by the completion (101 pipelined of 52 flushes).
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: DIR, fs, pipelineCommits: 'always' });
    wal.on('durable', () => {
      if (wal.lastLsn < 400) {
        wal.append(Buffer.from('a'));
        wal.append(Buffer.from('b'));
      }
    });
    await closedLoop(wal, 16, 20);
    await wal.sync();
    const stats = wal.stats();
    expect(stats.pipelinedBatches).toBeGreaterThan(0);
    expect(stats.pipelinedBatches).toBeLessThanOrEqual(stats.batches);
    await wal.close();
  });

  it("close() called from the logger's 'WAL failed' line settles (WAL_FAILED) instead of hanging", async () => {
    // Regression (second review; older than pipelining): close() from inside the failure's log line
    // requested a flush and waited for idle(); the deferred start found the log failed and returned
    // without telling idle(), so close() never settled and the status stayed 'closing'.
    const fault = new FaultFileSystem(new MemoryFileSystem());
    let wal!: Wal;
    let closing: Promise<void> | null = null;
    const logger = {
      info: () => {},
      warn: () => {},
      error: (_o: object, msg?: string) => {
        if (msg?.startsWith('WAL failed') && closing === null) closing = wal.close();
      },
    };
    wal = await Wal.open({ dir: DIR, fs: fault, logger });
    await wal.appendDurable(Buffer.from('ok'));
    fault.inject({ op: 'datasync', error: 'EIO', times: Infinity });
    await expect(wal.appendDurable(Buffer.from('fails'))).rejects.toMatchObject({ code: 'WAL_FAILED' });
    expect(closing).not.toBeNull();
    const outcome = await Promise.race([
      (closing as unknown as Promise<void>).then(
        () => 'closed',
        (e: { code?: string }) => `rejected ${e.code}`,
      ),
      new Promise<string>((r) => setTimeout(() => r('hung'), 3000)),
    ]);
    expect(outcome).toBe('rejected WAL_FAILED');
    expect(wal.status).toBe('closed');
  });

  it("'off', and syncMode 'inline' whatever the option, never pipeline", async () => {
    for (const options of [{ pipelineCommits: 'off' as const }, { pipelineCommits: 'always' as const, syncMode: 'inline' as const }]) {
      const fs = new MemoryFileSystem();
      const wal = await Wal.open({ dir: DIR, fs, ...options });
      await closedLoop(wal, 64, 10);
      expect(wal.stats().pipelinedBatches).toBe(0);
      await wal.close();
    }
  });
});
