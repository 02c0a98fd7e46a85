/**
 * The WAL's syncMode 'inline' through the engine's `wal` option (decisions.md "Engine put path, second
 * round"): it reaches the WAL, with and without the admin endpoint (whose fsync timer wraps the WAL's
 * file system and must keep its synchronous calls), commits go through the synchronous datasync, and an
 * acknowledged put survives a power loss.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { MemoryFileSystem, type FileHandle, type FileSystem } from '../fs/index.js';
import { request, tempDir } from './admin-fixtures.js';

const LOCATION = '/db';

/** `inner` with a count of the synchronous datasyncs made on files under /db/wal/. */
function countingSyncCalls(inner: MemoryFileSystem): { fs: FileSystem; walDatasyncSyncCount: () => number } {
  let count = 0;
  const wrapHandle = (h: FileHandle): FileHandle =>
    new Proxy(h, {
      get(target, prop) {
        if (prop === 'datasyncSync') {
          return () => {
            if (target.path.startsWith(`${LOCATION}/wal/`)) count++;
            (target.datasyncSync as () => void).call(target);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  const fs = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'open') return async (p: string, flags: Parameters<FileSystem['open']>[1]) => wrapHandle(await target.open(p, flags));
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { fs, walDatasyncSyncCount: () => count };
}

const open: Engine[] = [];
afterEach(async () => {
  for (const db of open.splice(0)) await db.close().catch(() => {});
});

describe("engine with the WAL's syncMode 'inline'", () => {
  it('reaches the WAL: commits use the synchronous datasync, and acknowledged puts survive a power loss', async () => {
    const mem = new MemoryFileSystem();
    const spy = countingSyncCalls(mem);
    const db = new Engine(LOCATION, { fs: spy.fs, wal: { syncMode: 'inline', segmentSizeBytes: 64 * 1024 } });
    open.push(db);
    await db.open();
    await Promise.all(Array.from({ length: 20 }, (_, i) => db.put(`k${i}`, `v${i}`)));
    await db.put('last', 'x');
    expect(spy.walDatasyncSyncCount()).toBeGreaterThanOrEqual(2);
    expect(await db.get('last')).toBe('x');
    const image = mem.crash();
    const after = new Engine(LOCATION, { fs: image });
    open.push(after);
    expect(await after.get('k7')).toBe('v7');
    expect(await after.get('last')).toBe('x');
  });

  it('works with the admin endpoint, whose fsync histogram then counts each synchronous commit', async () => {
    const dir = await tempDir();
    const mem = new MemoryFileSystem();
    const spy = countingSyncCalls(mem);
    const socketPath = path.join(dir, 'i.sock');
    const db = new Engine(LOCATION, { fs: spy.fs, wal: { syncMode: 'inline', segmentSizeBytes: 64 * 1024 }, admin: { socketPath } });
    open.push(db);
    await db.open();
    for (let i = 0; i < 5; i++) await db.put(`k${i}`, `v${i}`);
    const syncs = spy.walDatasyncSyncCount();
    expect(syncs).toBeGreaterThanOrEqual(5);
    const m = await request(socketPath, 'GET', '/metrics');
    const counted = Number(/^flushpoint_wal_fsync_seconds_count\{op="commit"\} (\d+)/m.exec(m.text)?.[1]);
    expect(counted).toBe(syncs);
  });
});
