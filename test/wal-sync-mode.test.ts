/**
 * The WAL's syncMode option: 'worker' (default) commits on the commit worker thread; 'inline' runs each
 * commit's writev + sync synchronously on the calling thread (writevSync + datasyncSync / syncSync).
 * Both modes keep the same contract; the fault cases of test/wal-faults.test.ts run in both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem, NodeFileSystem } from '../fs/index.js';
import type { FileHandle, FileSystem, OpenFlags } from '../fs/index.js';
import { isFlushpointError } from '../core/errors.js';
import { deferred } from './helpers/async.js';
import { equalBytes, payloadFor, readAll } from './helpers/wal-fixtures.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-wal-sync-mode-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A NodeFileSystem that counts how often its commit worker pool is asked for. */
class CountingNodeFileSystem extends NodeFileSystem {
  workerUses = 0;
  override ioWorker(): ReturnType<NodeFileSystem['ioWorker']> {
    this.workerUses++;
    return super.ioWorker();
  }
}

/** Counts asynchronous commit() calls and synchronous calls on the handles of a memory file system. */
function countingMemory(): { fs: FileSystem; counts: { commit: number; writevSync: number; datasyncSync: number; syncSync: number } } {
  const mem = new MemoryFileSystem();
  const counts = { commit: 0, writevSync: 0, datasyncSync: 0, syncSync: 0 };
  const fs: FileSystem = {
    syncCalls: true,
    open: async (p: string, flags: OpenFlags): Promise<FileHandle> => {
      const h = await mem.open(p, flags);
      return {
        path: h.path,
        writev: (b, pos) => h.writev(b, pos),
        read: (buf, off, len, pos) => h.read(buf, off, len, pos),
        datasync: () => h.datasync(),
        sync: () => h.sync(),
        truncate: (n) => h.truncate(n),
        stat: () => h.stat(),
        close: () => h.close(),
        commit: (b, pos, m) => {
          counts.commit++;
          return h.commit(b, pos, m);
        },
        writevSync: (b, pos) => {
          counts.writevSync++;
          return (h.writevSync as NonNullable<FileHandle['writevSync']>)(b, pos);
        },
        datasyncSync: () => {
          counts.datasyncSync++;
          (h.datasyncSync as NonNullable<FileHandle['datasyncSync']>)();
        },
        syncSync: () => {
          counts.syncSync++;
          (h.syncSync as NonNullable<FileHandle['syncSync']>)();
        },
      };
    },
    rename: (a, b) => mem.rename(a, b),
    unlink: (p) => mem.unlink(p),
    readdir: (p) => mem.readdir(p),
    mkdir: (p) => mem.mkdir(p),
    syncDir: (p) => mem.syncDir(p),
    stat: (p) => mem.stat(p),
    lock: (p) => mem.lock(p),
  };
  return { fs, counts };
}

describe('syncMode option', () => {
  it('refuses an unknown mode (RangeError) and inline on a file system without synchronous calls (TypeError)', async () => {
    const mem = new MemoryFileSystem();
    await expect(Wal.open({ dir: '/w', fs: mem, syncMode: 'threads' as never })).rejects.toThrow(RangeError);
    const { syncCalls: _drop, ...withoutSyncCalls } = countingMemory().fs;
    await expect(Wal.open({ dir: '/w', fs: withoutSyncCalls as FileSystem, syncMode: 'inline' })).rejects.toThrow(/syncMode 'inline' needs a file system with synchronous calls/);
    // The same file system is fine in the default mode.
    const wal = await Wal.open({ dir: '/w', fs: withoutSyncCalls as FileSystem });
    await wal.close();
  });

  for (const syncMethod of ['fdatasync', 'fsync'] as const) {
    it(`inline commits run writevSync + ${syncMethod === 'fsync' ? 'syncSync' : 'datasyncSync'}, never the asynchronous commit()`, async () => {
      const { fs, counts } = countingMemory();
      const wal = await Wal.open({ dir: '/w', fs, syncMode: 'inline', syncMethod, segmentSizeBytes: 4096 });
      // Enough batches to roll into a second and third segment (a roll commits into the prepared file).
      for (let batch = 0; batch < 10; batch++) {
        for (let i = 0; i < 8; i++) wal.append(payloadFor(wal.lastLsn + 1, 100));
        await wal.sync();
      }
      expect(wal.durableLsn).toBe(80);
      expect(wal.stats().segments).toBeGreaterThanOrEqual(3);
      const syncs = wal.stats().syncs;
      expect(counts.commit).toBe(0);
      expect(counts.writevSync).toBe(syncs);
      expect(syncMethod === 'fsync' ? counts.syncSync : counts.datasyncSync).toBe(syncs);
      expect(syncMethod === 'fsync' ? counts.datasyncSync : counts.syncSync).toBe(0);
      await wal.close();
    });
  }

  it('worker mode (the default) commits through commit(), never the synchronous calls', async () => {
    const { fs, counts } = countingMemory();
    const wal = await Wal.open({ dir: '/w', fs });
    for (let i = 0; i < 20; i++) wal.append(payloadFor(i + 1, 50));
    await wal.sync();
    expect(counts.commit).toBe(wal.stats().syncs);
    expect(counts.writevSync + counts.datasyncSync + counts.syncSync).toBe(0);
    await wal.close();
  });

  it('inline on the real disk: records are durable and read back after reopen, and no commit worker is started', async () => {
    const dir = await tempDir();
    const fs = new CountingNodeFileSystem();
    try {
      const wal = await Wal.open({ dir, fs, syncMode: 'inline', segmentSizeBytes: 8192 });
      const waits: Promise<number>[] = [];
      for (let i = 1; i <= 200; i++) {
        waits.push(wal.waitDurable(wal.append(payloadFor(i, i % 61))));
        if (i % 16 === 0) await Promise.all(waits.splice(0));
      }
      await Promise.all(waits);
      expect(wal.durableLsn).toBe(200);
      expect(wal.stats().segments).toBeGreaterThan(1);
      await wal.close();
      expect(fs.workerUses, 'inline commits never ask for the commit worker').toBe(0);
      const again = await Wal.open({ dir, fs, syncMode: 'inline', segmentSizeBytes: 8192 });
      const records = await readAll(again);
      expect(records.map((r) => r.lsn)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      for (const r of records) expect(equalBytes(r.payload, payloadFor(r.lsn, r.lsn % 61))).toBe(true);
      await again.close();
      // The same directory in worker mode: the counter does see the worker path.
      const worker = await Wal.open({ dir, fs, segmentSizeBytes: 8192 });
      await worker.waitDurable(worker.append(payloadFor(201, 10)));
      await worker.close();
      expect(fs.workerUses).toBeGreaterThan(0);
    } finally {
      await fs.dispose();
    }
  });

  it('a failed inline sync poisons the log: WAL_FAILED for the batch and every later call (retries are counted in wal-faults.test.ts)', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await Wal.open({ dir: '/w', fs: fault, syncMode: 'inline', segmentSizeBytes: 4096 });
    await wal.waitDurable(wal.append(payloadFor(1, 10)));
    // The segment's own sync (not a zero-fill step of the preparer, which has its own handle).
    fault.inject({ op: 'datasync', path: /\.wal$/, error: 'EIO' });
    const before = fault.counts.datasync;
    const lsn = wal.append(payloadFor(2, 10));
    const err = await wal.waitDurable(lsn).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(err, 'WAL_FAILED'), String(err)).toBe(true);
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('EIO');
    expect(fault.counts.datasync - before, 'the failed sync ran').toBeGreaterThanOrEqual(1);
    expect(wal.durableLsn).toBe(1);
    expect(() => wal.append(payloadFor(3, 10))).toThrow(err as Error);
    await expect(wal.sync()).rejects.toBe(err);
    await wal.close().catch((e: unknown) => expect(e).toBe(err));
  });

  it('a lone writer whose commits complete synchronously (inline) still gives the event loop a turn per commit', async () => {
    // A flush starts on the next turn of the loop (setImmediate), never in a microtask: with inline
    // commits a writer in a loop would otherwise never let timers or I/O callbacks run. (Starting a
    // lone writer's flush in a microtask was tried for latency and starved the engine's checkpoints.)
    const { fs } = countingMemory();
    const wal = await Wal.open({ dir: '/w', fs, syncMode: 'inline' });
    let turnsSeen = 0;
    let stop = false;
    const tick = (): void => {
      turnsSeen++;
      if (!stop) setImmediate(tick);
    };
    setImmediate(tick);
    for (let i = 1; i <= 50; i++) await wal.appendDurable(payloadFor(i, 20));
    stop = true;
    expect(wal.stats().syncs).toBe(50);
    expect(turnsSeen, 'the loop turned while the writer wrote').toBeGreaterThanOrEqual(25);
    await wal.close();
  });

  it("FaultFileSystem refuses to hold or delay a synchronous call (it would block its thread)", async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    await fault.mkdir('/d');
    const h = await fault.open('/d/f', 'w+');
    fault.inject({ op: 'datasync', hold: deferred().promise });
    expect(() => (h.datasyncSync as NonNullable<FileHandle['datasyncSync']>)()).toThrow(/cannot apply to a synchronous datasync/);
    fault.inject({ op: 'writev', tornBytes: 3, error: 'EIO' });
    expect(() => (h.writevSync as NonNullable<FileHandle['writevSync']>)([new Uint8Array([1, 2, 3, 4, 5])], 0)).toThrow(/EIO/);
    expect((await h.stat()).sizeBytes, 'a torn synchronous write leaves its first bytes').toBe(3);
    await h.close();
  });
});
