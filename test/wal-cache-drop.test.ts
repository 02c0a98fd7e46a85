/**
 * The page cache of durable log bytes is dropped behind the writer (wal/cache-dropper.ts): through a
 * MemoryFileSystem that records every dropCache call (with whether the range held unsynced bytes), and
 * through the real addon on the real disk (fs/page-cache.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MemoryFileSystem, NodeFileSystem, pageCacheDrop } from '../fs/index.js';
import { CACHE_DROP_CHUNK_BYTES, CACHE_DROP_LAG_BYTES } from '../wal/cache-dropper.js';
import { FORMAT_VERSION_RECYCLED, SEGMENT_HEADER_BYTES, decodeSegmentHeader } from '../wal/format.js';
import { Wal } from '../wal/index.js';
import { until } from './helpers/async.js';
import { withDropCache } from './helpers/drop-cache-fs.js';

const DIR = '/data/wal';
const KiB = 1024;
const MiB = 1024 * KiB;

/** Covered bytes per path, from the recorded drops (a range with length 0 runs to `ends[path]`). */
function coverage(mem: MemoryFileSystem, ends: Map<string, number>): Map<string, Array<[number, number]>> {
  const out = new Map<string, Array<[number, number]>>();
  for (const d of mem.cacheDrops) {
    const end = d.lengthBytes === 0 ? (ends.get(d.path) ?? d.offset) : d.offset + d.lengthBytes;
    const list = out.get(d.path) ?? [];
    list.push([d.offset, end]);
    out.set(d.path, list);
  }
  return out;
}

async function writeLog(mem: MemoryFileSystem, options: { segmentSizeBytes: number; recordBytes: number; records: number; perCommit: number; dropCacheBehind?: boolean }): Promise<Wal> {
  const wal = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes: options.segmentSizeBytes, ...(options.dropCacheBehind === undefined ? {} : { dropCacheBehind: options.dropCacheBehind }) });
  const payload = new Uint8Array(options.recordBytes).fill(7);
  for (let done = 0; done < options.records; ) {
    let lsn = 0;
    for (let i = 0; i < options.perCommit && done < options.records; i++, done++) lsn = wal.append(payload);
    await wal.waitDurable(lsn);
  }
  return wal;
}

describe('dropping the page cache behind the writer', () => {
  it('drops every finished segment once and the current one up to the lag, never an unsynced byte, in page-aligned ranges', async () => {
    const mem = new MemoryFileSystem();
    mem.dropsCache = true;
    const segmentSizeBytes = 64 * MiB;
    // 150 MiB of records: two finished segments and a third written ~22 MiB in.
    const wal = await writeLog(mem, { segmentSizeBytes, recordBytes: 64 * KiB - 24, records: 2400, perCommit: 8 });
    const segments = (await mem.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
    expect(segments.length).toBe(3);
    const ends = new Map<string, number>();
    for (const name of segments) ends.set(`${DIR}/${name}`, (await mem.stat(`${DIR}/${name}`)).sizeBytes);
    await until(() => wal.stats().pageCacheDroppedBytes >= 2 * segmentSizeBytes - 2 * MiB, 'drops of the finished segments');
    expect(mem.cacheDrops.length).toBeGreaterThan(10);
    for (const d of mem.cacheDrops) {
      expect(d.unsynced, `drop of ${d.path} at ${d.offset} held unsynced bytes`).toBe(false);
      expect(d.offset % 4096).toBe(0);
      expect(d.lengthBytes % 4096).toBe(0);
    }
    const cov = coverage(mem, ends);
    const [first, second, third] = segments.map((n) => `${DIR}/${n}`) as [string, string, string];
    for (const p of [first, second]) {
      // Contiguous from 0, no byte twice, to the end of the data.
      const ranges = cov.get(p) ?? [];
      let at = 0;
      for (const [from, to] of ranges) {
        expect(from, `${p}: ranges follow each other`).toBe(at);
        at = to;
      }
      expect(at, `${p} dropped to its end`).toBe(ends.get(p));
    }
    // The current segment: dropped from 0, in chunks of at least CACHE_DROP_CHUNK_BYTES, ending at least CACHE_DROP_LAG_BYTES below the data.
    const current = cov.get(third) ?? [];
    expect(current.length).toBeGreaterThan(0);
    expect(current[0]?.[0]).toBe(0);
    for (const [from, to] of current) expect(to - from).toBeGreaterThanOrEqual(CACHE_DROP_CHUNK_BYTES);
    const currentEnd = wal.stats().syncedBytes - 2 * segmentSizeBytes; // about: headers aside
    expect(Math.max(...current.map(([, to]) => to))).toBeLessThanOrEqual(currentEnd - CACHE_DROP_LAG_BYTES + 64 * KiB);
    // Every record reads back (dropping changes no byte).
    let n = 0;
    for await (const r of wal.read()) {
      expect(r.payload.byteLength).toBe(64 * KiB - 24);
      n++;
    }
    expect(n).toBe(2400);
    await wal.close();
  });

  it('drops nothing with dropCacheBehind: false, or where the file system cannot drop', async () => {
    const off = new MemoryFileSystem();
    off.dropsCache = true;
    await (await writeLog(off, { segmentSizeBytes: 8 * MiB, recordBytes: 32 * KiB, records: 800, perCommit: 4, dropCacheBehind: false })).close();
    expect(off.cacheDrops).toEqual([]);
    const cannot = new MemoryFileSystem(); // dropsCache false
    const wal = await writeLog(cannot, { segmentSizeBytes: 8 * MiB, recordBytes: 32 * KiB, records: 800, perCommit: 4 });
    expect(wal.stats().pageCacheDroppedBytes).toBe(0);
    await wal.close();
    expect(cannot.cacheDrops).toEqual([]);
    await expect(Wal.open({ dir: '/x', fs: new MemoryFileSystem(), dropCacheBehind: 1 as unknown as boolean })).rejects.toThrow(/dropCacheBehind must be a boolean/);
  });

  it('with small segments the lag and the chunk shrink to a quarter and an eighth of a segment, and a recycled segment is never dropped', async () => {
    const mem = new MemoryFileSystem();
    mem.dropsCache = true;
    const segmentSizeBytes = 1 * MiB;
    const wal = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes, recycleSegments: 2 });
    const payload = new Uint8Array(8 * KiB).fill(1);
    let lsn = 0;
    for (let i = 0; i < 600; i++) {
      lsn = wal.append(payload);
      if (i % 4 === 3) await wal.waitDurable(lsn);
      if (i === 300) await wal.truncateBefore(lsn - 10); // frees segments: later ones are recycled files
    }
    await wal.waitDurable(lsn);
    await until(() => wal.stats().segmentsRecycled > 0, 'a recycled segment');
    const recycledStart = wal.stats().segmentsCreated - wal.stats().segmentsRecycled;
    expect(mem.cacheDrops.length).toBeGreaterThan(0);
    for (const d of mem.cacheDrops) {
      expect(d.unsynced).toBe(false);
      if (d.lengthBytes > 0) expect(d.lengthBytes).toBeGreaterThanOrEqual(segmentSizeBytes / 8 - 4096);
    }
    await wal.close();
    // No drop touches a segment written over a recycled file (format version 3 in its header).
    const versions = new Map<string, number>();
    for (const name of (await mem.readdir(DIR)).filter((n) => n.endsWith('.wal'))) {
      const header = new Uint8Array(SEGMENT_HEADER_BYTES);
      const h = await mem.open(`${DIR}/${name}`, 'r');
      await h.read(header, 0, header.byteLength, 0);
      await h.close();
      const decoded = decodeSegmentHeader(header);
      versions.set(`${DIR}/${name}`, decoded.ok ? decoded.version : -1);
    }
    const recycledPaths = [...versions].filter(([, v]) => v === FORMAT_VERSION_RECYCLED).map(([p]) => p);
    expect(recycledPaths.length, 'recycled segments are on disk').toBeGreaterThan(0);
    for (const d of mem.cacheDrops) expect(recycledPaths.includes(d.path), `dropped ${d.path}, a recycled segment`).toBe(false);
  });

  it('close() waits for a drop in flight: no descriptor of the dropper outlives the log', async () => {
    const mem = new MemoryFileSystem();
    mem.dropsCache = true;
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = 0;
    const fs = withDropCache(mem, async (inner, offset, lengthBytes) => {
      held++;
      await gate;
      return inner.dropCache?.(offset, lengthBytes);
    });
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 1 * MiB });
    const payload = new Uint8Array(8 * KiB).fill(3);
    for (let i = 0; i < 80; i++) await wal.waitDurable(wal.append(payload)); // 640 KiB: past the lag (256 KiB) and a chunk (128 KiB)
    await until(() => held > 0, 'a drop under way');
    let closed = false;
    const closing = wal.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(closed, 'close() waits for the drop in flight').toBe(false);
    release();
    await closing;
    expect(mem.openHandlePaths).toEqual([]);
    expect(mem.cacheDrops.length).toBeGreaterThan(0);
  });
});

describe('the native addon (fs/native/page-cache.c)', () => {
  it.runIf(process.platform === 'linux')('is built and loads on Linux, drops a file\'s pages, and names a bad descriptor\'s error', async () => {
    expect(pageCacheDrop()).toEqual({ available: true, reason: null });
    const nfs = new NodeFileSystem();
    expect(nfs.dropsCache).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-drop-'));
    try {
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, Buffer.alloc(1 * MiB, 9));
      const h = await nfs.open(file, 'r+');
      await h.datasync();
      await h.dropCache?.(0, 0);
      await h.dropCache?.(4096, 65536);
      const back = new Uint8Array(1 * MiB);
      expect(await h.read(back, 0, back.byteLength, 0)).toBe(1 * MiB);
      expect(back.every((b) => b === 9)).toBe(true);
      await h.close();
      const { dropCachedPages } = await import('../fs/page-cache.js');
      await expect(dropCachedPages(1 << 30, 0, 0)).rejects.toMatchObject({ code: 'EBADF' });
      for (const bad of [[-1, 0, 0], [Number.NaN, 0, 0], [2 ** 32 + 3, 0, 0], [3, 0.5, 0], [3, 0, Number.POSITIVE_INFINITY]]) {
        await expect(dropCachedPages(...(bad as [number, number, number])), `dropCachedPages(${bad.join(', ')})`).rejects.toThrow(TypeError);
      }
      // The addon checks its arguments itself too (NaN is not fd 0, 2^32 + 3 is not fd 3, a fraction is no offset).
      const { createRequire } = await import('node:module');
      const addon = createRequire(import.meta.url)(fileURLToPath(new URL('../build/Release/flushpoint_native.node', import.meta.url))) as { dropCache: (...a: number[]) => Promise<void> };
      for (const bad of [[Number.NaN, 0, 0], [2 ** 32 + 3, 0, 0], [3, Number.NaN, Number.NaN], [3, 0.5, 0], [3, 0, -1]]) {
        expect(() => addon.dropCache(...bad), `addon.dropCache(${bad.join(', ')})`).toThrow(TypeError);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await nfs.dispose();
    }
  });

  it.runIf(process.platform === 'linux')('writes a range\'s dirty pages back (sync_file_range) and names a bad descriptor\'s error', async () => {
    const nfs = new NodeFileSystem();
    expect(nfs.writesBack).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-writeback-'));
    try {
      const file = path.join(dir, 'f');
      const h = await nfs.open(file, 'w+');
      await h.writev([new Uint8Array(256 * 1024).fill(7)], 0);
      await h.writeBack?.(0, 128 * 1024);
      await h.writeBack?.(128 * 1024, 128 * 1024);
      const back = new Uint8Array(256 * 1024);
      expect(await h.read(back, 0, back.byteLength, 0)).toBe(back.byteLength);
      expect(back.every((b) => b === 7)).toBe(true);
      await h.close();
      const { writeBackPages } = await import('../fs/page-cache.js');
      await expect(writeBackPages(1 << 30, 0, 4096)).rejects.toMatchObject({ code: 'EBADF' });
      for (const bad of [[-1, 0, 0], [Number.NaN, 0, 0], [3, 0.5, 0], [3, 0, Number.POSITIVE_INFINITY]]) {
        await expect(writeBackPages(...(bad as [number, number, number])), `writeBackPages(${bad.join(', ')})`).rejects.toThrow(TypeError);
      }
      const { createRequire } = await import('node:module');
      const addon = createRequire(import.meta.url)(fileURLToPath(new URL('../build/Release/flushpoint_native.node', import.meta.url))) as { writeBack: (...a: number[]) => Promise<void> };
      for (const bad of [[Number.NaN, 0, 0], [2 ** 32 + 3, 0, 0], [3, 0.5, 0], [3, 0, -1]]) {
        expect(() => addon.writeBack(...bad), `addon.writeBack(${bad.join(', ')})`).toThrow(TypeError);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await nfs.dispose();
    }
  });
});
