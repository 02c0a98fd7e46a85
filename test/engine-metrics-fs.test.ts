/**
 * The engine's timing wrapper (engine/metrics-fs.ts, SyncTimer.wrap, used when `admin` is set) must
 * hand every call and capability of the file system through: a dropped `commitWait` or writeBack made
 * an engine with admin wait and fill differently from one without, and nothing said so (review of the
 * 2026-12-04 evening session).
 */
import { describe, expect, it } from 'vitest';
import type { CommitWait, FileHandle, SyncMethod } from '../fs/index.js';
import { MemoryFileSystem } from '../fs/index.js';
import { SyncTimer } from '../engine/metrics-fs.js';

describe('SyncTimer.wrap', () => {
  it("passes commit's wait, writeBack and the capabilities (writesBack, dropsCache, syncCalls) through", async () => {
    const mem = new MemoryFileSystem();
    mem.writesBack = true;
    mem.dropsCache = true;
    const seen: Array<{ call: string; args: unknown[] }> = [];
    const spied = new Proxy(mem, {
      get(target, key) {
        if (key !== 'open') {
          const v = Reflect.get(target, key, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        }
        return async (path: string, flags: Parameters<MemoryFileSystem['open']>[1]) => {
          const h = await target.open(path, flags);
          return new Proxy(h, {
            get(t, k) {
              const v = Reflect.get(t, k, t) as unknown;
              if (typeof v !== 'function') return v;
              if (k === 'commit' || k === 'writeBack' || k === 'dropCache') {
                return (...args: unknown[]) => {
                  seen.push({ call: String(k), args });
                  return (v as (...a: unknown[]) => unknown).apply(t, args);
                };
              }
              return (v as (...a: unknown[]) => unknown).bind(t);
            },
          }) as FileHandle;
        };
      },
    });
    const wrapped = new SyncTimer().wrap(spied);
    expect(wrapped.writesBack).toBe(true);
    expect(wrapped.dropsCache).toBe(true);
    expect(wrapped.syncCalls).toBe(true);
    await wrapped.mkdir('/d');
    const h = await wrapped.open('/d/f', 'w+');
    const method: SyncMethod = 'fdatasync';
    const wait: CommitWait = 'poll';
    await h.commit([new Uint8Array([1, 2, 3])], 0, method, wait);
    await h.writeBack?.(0, 4096);
    await h.dropCache?.(0, 4096);
    await h.close();
    expect(seen.map((s) => s.call)).toEqual(['commit', 'writeBack', 'dropCache']);
    expect(seen[0]?.args[3], "commit's wait").toBe('poll');
    expect(seen[1]?.args).toEqual([0, 4096]);
  });
});
