import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FlushpointError } from '../core/errors.js';
import { FaultFileSystem, MemoryFileSystem, NodeFileSystem } from '../fs/index.js';
import { PREALLOC_SUFFIX } from '../wal/segment-preparer.js';
import { equalBytes, payloadFor, readAll } from './helpers/wal-fixtures.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-wal-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('Wal API', () => {
  it('assigns contiguous LSNs from 1, makes them durable, and reads them back after reopen', async () => {
    const dir = await tempDir();
    const wal = await Wal.open({ dir, segmentSizeBytes: 8192 });
    expect(wal.lastLsn).toBe(0);
    expect(wal.firstLsn).toBe(0);
    const lsns: number[] = [];
    for (let i = 0; i < 300; i++) lsns.push(wal.append(payloadFor(i + 1, i % 97)));
    expect(lsns).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(wal.durableLsn).toBe(0);
    expect(await wal.sync()).toBe(300);
    expect(wal.durableLsn).toBe(300);
    await wal.close();
    const again = await Wal.open({ dir, segmentSizeBytes: 8192 });
    expect(again.lastLsn).toBe(300);
    expect(again.durableLsn).toBe(300);
    expect(again.firstLsn).toBe(1);
    const records = await readAll(again);
    expect(records.map((r) => r.lsn)).toEqual(lsns);
    for (const r of records) expect(equalBytes(r.payload, payloadFor(r.lsn, (r.lsn - 1) % 97))).toBe(true);
    expect(again.append(new Uint8Array([9]))).toBe(301);
    await again.close();
  });

  it('group commit: 1,000 concurrent appenders on the real disk cause far fewer syncs than records', async () => {
    const dir = await tempDir();
    const fs = new FaultFileSystem(new NodeFileSystem());
    const wal = await Wal.open({ dir, fs, segmentSizeBytes: 1 << 20 });
    fs.resetCounts();
    const writers = 1000;
    const perWriter = 5;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) await wal.waitDurable(wal.append(payloadFor(w * 10 + i, 128)));
      }),
    );
    const records = writers * perWriter;
    const syncs = fs.counts.datasync;
    expect(wal.durableLsn).toBe(records);
    expect(syncs).toBeGreaterThan(0);
    // Closed-loop writers re-append in the turn their batch completes, so each batch should carry
    // about all 1,000; allow slack for a segment roll and a straggler batch per round.
    expect(syncs).toBeLessThanOrEqual(perWriter * 3);
    expect(wal.stats().recordsPerSync).toBeGreaterThan(100);
    await wal.close();
  });

  it('records larger than a staging chunk reuse a few large chunks instead of a new shared buffer each', async () => {
    // Each new shared buffer is one more the commit worker learns and its heap keeps until its own
    // collection: one per oversize record grew the process by every such record (1 GiB of 1 MiB
    // batches left ~1 GiB allocated).
    const mem = new MemoryFileSystem();
    const seen = new Set<ArrayBufferLike>();
    const open = mem.open.bind(mem);
    mem.open = async (...args: Parameters<MemoryFileSystem['open']>) => {
      const handle = await open(...args);
      const commit = handle.commit.bind(handle);
      handle.commit = (buffers, position, syncMethod, wait) => {
        for (const b of buffers) if (b.buffer instanceof SharedArrayBuffer) seen.add(b.buffer);
        return commit(buffers, position, syncMethod, wait);
      };
      return handle;
    };
    const fs = mem;
    const wal = await Wal.open({ dir: '/big', fs, segmentSizeBytes: 1 << 20, stagingChunkBytes: 4096 });
    for (let i = 0; i < 200; i++) {
      // 5-30 KiB records, one at a time and two at once (a second batch staged while one is in flight).
      const a = wal.append(Buffer.alloc(5000 + ((i * 7919) % 25000), i & 0xff));
      const b = i % 2 === 0 ? wal.append(Buffer.alloc(9000, 1)) : a;
      await wal.waitDurable(Math.max(a, b));
    }
    await wal.close();
    // The regular chunks (a few) and a handful of large ones, not 200+.
    expect(seen.size).toBeGreaterThan(1);
    expect(seen.size).toBeLessThanOrEqual(16);
  });

  it('recycled staging chunks never corrupt a record: small chunks, concurrent writers, records larger than a chunk', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    // Writes read their buffers a little later, as a real commit thread does: a chunk reused too early shows.
    fs.inject({ op: 'writev', delayMs: 1, times: Infinity });
    const wal = await Wal.open({ dir: '/c', fs, segmentSizeBytes: 64 * 1024, stagingChunkBytes: 4096 });
    const lengths = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 32 }, async (_, w) => {
        for (let i = 0; i < 40; i++) {
          const len = (w * 131 + i * 977) % 6000; // up to ~1.5 chunks
          const lsn = wal.lastLsn + 1;
          lengths.set(lsn, len);
          expect(wal.append(payloadFor(lsn, len))).toBe(lsn);
          await wal.waitDurable(lsn);
        }
      }),
    );
    await wal.close();
    fs.clearFaults();
    const again = await Wal.open({ dir: '/c', fs, segmentSizeBytes: 64 * 1024 });
    const records = await readAll(again);
    expect(records.length).toBe(32 * 40);
    for (const r of records) expect(equalBytes(r.payload, payloadFor(r.lsn, lengths.get(r.lsn) as number)), `LSN ${r.lsn}`).toBe(true);
    await again.close();
  });

  it('a roll never waits for the zero-fill: a late segment starts as a growing file, and it survives a power loss', async () => {
    const mem = new MemoryFileSystem();
    const fs = new FaultFileSystem(mem);
    const wal = await Wal.open({ dir: '/g', fs, segmentSizeBytes: 4096 }); // the first segment is prepared in open
    let release!: () => void;
    const never = new Promise<void>((r) => (release = r));
    const [first] = (await mem.readdir('/g')).filter((n) => n.endsWith(PREALLOC_SUFFIX));
    expect(first).toBeDefined();
    // Every later zero-fill hangs (the first prepared file is the one the first commit goes into).
    fs.inject({ op: 'writev', path: new RegExp(`^(?!/g/${first}$).*${PREALLOC_SUFFIX.replace(/\./g, '\\.')}$`), hold: never, times: Infinity });
    const lengths: number[] = [0];
    for (let i = 1; i <= 120; i++) {
      lengths.push((i * 37) % 200);
      wal.append(payloadFor(i, lengths[i] as number));
      if (i % 6 === 0) await wal.sync(); // would hang if a roll waited for the held zero-fill
    }
    await wal.sync();
    const s = wal.stats();
    expect(s.segments).toBeGreaterThan(3);
    expect(s.preallocStalls).toBe(s.segments - 1);
    const crashed = mem.crash(); // only what was synced
    const again = await Wal.open({ dir: '/g', fs: crashed, segmentSizeBytes: 4096 });
    expect(again.lastLsn).toBe(120);
    for (const r of await readAll(again)) expect(equalBytes(r.payload, payloadFor(r.lsn, lengths[r.lsn] as number)), `LSN ${r.lsn}`).toBe(true);
    // and it goes on writing into the short last segment, then rolls again
    for (let i = 0; i < 40; i++) await again.waitDurable(again.append(new Uint8Array(150)));
    expect(again.lastLsn).toBe(160);
    await again.close();
    release();
    await wal.close();
  });

  it('emits durable and resolves nextDurable at each advance', async () => {
    const wal = await Wal.open({ dir: '/d', fs: new MemoryFileSystem() });
    const seen: number[] = [];
    wal.on('durable', (lsn) => seen.push(lsn));
    const next = wal.nextDurable();
    wal.append(new Uint8Array(3));
    wal.append(new Uint8Array(3));
    expect(await next).toBe(2);
    await wal.waitDurable(wal.append(new Uint8Array(1)));
    expect(seen).toEqual([2, 3]);
    await wal.close();
  });

  it('rejects bad input with TypeError, RangeError or a coded FlushpointError', async () => {
    const fs = new MemoryFileSystem();
    await expect(Wal.open({} as never)).rejects.toBeInstanceOf(TypeError);
    await expect(Wal.open({ dir: '/x', fs, segmentSizeBytes: 100 })).rejects.toBeInstanceOf(RangeError);
    await expect(Wal.open({ dir: '/x', fs, syncMethod: 'nope' as never })).rejects.toBeInstanceOf(RangeError);
    const wal = await Wal.open({ dir: '/x', fs, segmentSizeBytes: 4096 });
    expect(() => wal.append('text' as never)).toThrow(TypeError);
    expect(() => wal.append(null as never)).toThrow(TypeError);
    const tooBig = wal.payloadBytesMax + 1;
    const err = (() => {
      try {
        wal.append(new Uint8Array(tooBig));
      } catch (e) {
        return e;
      }
      return null;
    })() as FlushpointError;
    expect(err.code).toBe('RECORD_TOO_LARGE');
    expect(wal.lastLsn).toBe(0); // the refused record took no LSN
    const max = wal.append(new Uint8Array(wal.payloadBytesMax)); // the largest one fits
    await expect(wal.waitDurable(max)).resolves.toBe(max);
    await expect(wal.waitDurable(max + 1)).rejects.toBeInstanceOf(RangeError);
    await expect(wal.waitDurable(-1)).rejects.toBeInstanceOf(RangeError);
    await expect(wal.waitDurable(1.5)).rejects.toBeInstanceOf(RangeError);
    await expect(wal.waitDurable('1' as never)).rejects.toBeInstanceOf(TypeError);
    await expect(wal.waitDurable(1, { timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError);
    await wal.close();
    expect(() => wal.append(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'WAL_CLOSED' }));
    await expect(wal.nextDurable()).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    // hold() too (it was accepted after close, a lifecycle review found); release() stays a no-op.
    expect(() => wal.hold('late', 1)).toThrow(expect.objectContaining({ code: 'WAL_CLOSED' }));
    expect(() => wal.release('late')).not.toThrow();
    expect(wal.status).toBe('closed');
  });

  it('waitDurable honours timeoutMs and AbortSignal for that caller only', async () => {
    const mem = new MemoryFileSystem();
    const fs = new FaultFileSystem(mem);
    const wal = await Wal.open({ dir: '/t', fs });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fs.inject({ op: 'datasync', hold: gate });
    const lsn = wal.append(new Uint8Array(10));
    const timed = wal.waitDurable(lsn, { timeoutMs: 20 });
    const ac = new AbortController();
    const aborted = wal.waitDurable(lsn, { signal: ac.signal });
    const patient = wal.waitDurable(lsn);
    await expect(timed).rejects.toMatchObject({ code: 'FLUSH_TIMEOUT', reachedLsn: 0 });
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    release();
    expect(await patient).toBe(lsn);
    await wal.close();
  });

  it('retention: a hold below the first LSN (gone, or being deleted by a running truncation) is refused with WAL_TRUNCATED, holding nothing', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    const wal = await Wal.open({ dir: '/h', fs, segmentSizeBytes: 1024 });
    for (let i = 1; i <= 200; i++) wal.append(payloadFor(i, 40));
    await wal.sync();
    await wal.truncateBefore(100);
    const first = wal.firstLsn;
    expect(first).toBeGreaterThan(1);
    expect(() => wal.hold('reader', first - 1)).toThrow(expect.objectContaining({ code: 'WAL_TRUNCATED', lsn: first - 1 }));
    expect(wal.stats().holds).toEqual({});
    wal.hold('reader', first); // the first LSN itself is still there
    expect(wal.stats().holds).toEqual({ reader: first });
    wal.release('reader');
    // While a truncation frees the first segment (its unlink held open), that segment's LSNs are going.
    let release = (): void => {};
    fs.inject({ op: ['unlink', 'rename'], path: '/h/', hold: new Promise<void>((r) => (release = r)) });
    const running = wal.truncateBefore(150);
    await new Promise((r) => setTimeout(r, 5));
    expect(() => wal.hold('late', first)).toThrow(expect.objectContaining({ code: 'WAL_TRUNCATED' }));
    release();
    await running;
    expect(wal.firstLsn).toBeGreaterThan(first);
    await wal.close();
  });

  it('retention: truncateBefore drops whole segments below min(lsn, holds), never the last, and read still works', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/r', fs, segmentSizeBytes: 1024 });
    for (let i = 1; i <= 200; i++) wal.append(payloadFor(i, 40));
    await wal.sync();
    const segsBefore = wal.stats().segments;
    expect(segsBefore).toBeGreaterThan(5);
    wal.hold('backup', 50);
    await wal.truncateBefore(180);
    expect(wal.firstLsn).toBeLessThanOrEqual(50);
    expect(wal.firstLsn).toBeGreaterThan(1);
    const kept = await readAll(wal);
    expect(kept[0]?.lsn).toBe(wal.firstLsn);
    expect(kept[kept.length - 1]?.lsn).toBe(200);
    expect(() => wal.read({ fromLsn: 1 })).toThrow(RangeError);
    wal.release('backup');
    await wal.truncateBefore(10_000);
    expect(wal.stats().segments).toBe(1);
    const tail = await readAll(wal);
    expect(tail[tail.length - 1]?.lsn).toBe(200);
    const part: number[] = [];
    for await (const r of wal.read({ fromLsn: 199, toLsn: 199 })) part.push(r.lsn);
    expect(part).toEqual([199]);
    await wal.close();
    const again = await Wal.open({ dir: '/r', fs, segmentSizeBytes: 1024 });
    expect(again.firstLsn).toBe(wal.firstLsn);
    expect(again.lastLsn).toBe(200);
    await again.close();
  });

  it('supports await using (Symbol.asyncDispose) and fsync as the sync method', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    {
      await using wal = await Wal.open({ dir: '/u', fs, syncMethod: 'fsync' });
      await wal.waitDurable(wal.append(new Uint8Array(5)));
      expect(fs.counts.sync).toBeGreaterThan(0);
    }
    const again = await Wal.open({ dir: '/u', fs });
    expect(again.lastLsn).toBe(1);
    await again.close();
  });

  it('stats report syncs, batches, records per sync and latency percentiles', async () => {
    const wal = await Wal.open({ dir: '/s', fs: new MemoryFileSystem() });
    await Promise.all(Array.from({ length: 50 }, () => wal.waitDurable(wal.append(new Uint8Array(16)))));
    const s = wal.stats();
    expect(s.appends).toBe(50);
    expect(s.syncs).toBeGreaterThanOrEqual(1);
    expect(s.recordsPerSync).toBe(50 / s.syncs);
    expect(s.syncLatency.count).toBe(s.syncs);
    expect(s.syncLatency.p99Ms).toBeGreaterThanOrEqual(s.syncLatency.p50Ms);
    expect(s.durableLsn).toBe(50);
    await wal.close();
  });
});
