/**
 * The engine's write contract (engine/engine.ts module comment, docs/decisions.md "Engine"):
 * when a write resolves, when it becomes visible, that a batch is one WAL record, that writes share
 * group commits, and that bad input is a typed error with nothing written.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { decodeRecord } from '../engine/record.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { deferred, track, turns, until } from './helpers/async.js';

const LOCATION = '/db';

async function openMemory(options: ConstructorParameters<typeof Engine>[1] = {}): Promise<{ db: Engine; mem: MemoryFileSystem; fault: FaultFileSystem }> {
  const mem = new MemoryFileSystem();
  const fault = new FaultFileSystem(mem);
  const db = new Engine(LOCATION, { fs: fault, wal: { segmentSizeBytes: 64 * 1024 }, ...options });
  await db.open();
  return { db, mem, fault };
}

/** Holds every WAL datasync until the returned release() is called. */
function holdWalSyncs(fault: FaultFileSystem): () => void {
  const gate = deferred();
  fault.inject({ op: 'datasync', path: '/wal/', hold: gate.promise, times: Number.POSITIVE_INFINITY });
  return () => {
    fault.clearFaults();
    gate.resolve();
  };
}

describe('engine writes', () => {
  it('a sync:true put is neither visible nor resolved before its fdatasync returned', async () => {
    const { db, fault } = await openMemory();
    await db.put('a', '1');
    const release = holdWalSyncs(fault);
    const put = track(db.put('a', '2'));
    await turns(20);
    expect(put.outcome.state).toBe('pending');
    expect(await db.get('a')).toBe('1');
    expect(await db.keys().all()).toEqual(['a']);
    expect(db.wal?.durableLsn).toBe(1);
    release();
    await put.promise;
    expect(put.outcome.state).toBe('resolved');
    expect(db.wal?.durableLsn).toBeGreaterThanOrEqual(2);
    expect(await db.get('a')).toBe('2');
    await db.close();
  });

  it('sync:false resolves and is visible before the fsync; a power loss before it may lose it', async () => {
    const { db, fault, mem } = await openMemory();
    await db.put('a', '1');
    const release = holdWalSyncs(fault);
    await db.put('b', '2', { sync: false });
    expect(await db.get('b')).toBe('2');
    expect(db.wal?.durableLsn).toBe(1);
    const image = mem.crash();
    release();
    await db.close();
    const after = new Engine(LOCATION, { fs: image });
    expect(await after.get('a')).toBe('1');
    expect(await after.get('b')).toBeUndefined();
    await after.close();
  });

  it('sync:false behind a pending sync:true write becomes visible right after it (LSN order)', async () => {
    const { db, fault } = await openMemory();
    const release = holdWalSyncs(fault);
    const first = track(db.put('k', 'sync'));
    const second = track(db.put('k', 'nosync', { sync: false }));
    await turns(20);
    expect(first.outcome.state).toBe('pending');
    expect(second.outcome.state).toBe('pending');
    expect(await db.get('k')).toBeUndefined();
    release();
    await Promise.all([first.promise, second.promise]);
    expect(await db.get('k')).toBe('nosync');
    await db.close();
  });

  it('a batch (array or chained) and a clear are each one WAL record', async () => {
    const { db } = await openMemory();
    const before = db.wal!.lastLsn;
    await db.batch([
      { type: 'put', key: 'a', value: '1' },
      { type: 'put', key: 'b', value: '2' },
      { type: 'del', key: 'a' },
    ]);
    expect(db.wal!.lastLsn).toBe(before + 1);
    await db.batch().put('c', '3').put('d', '4').del('b').write();
    expect(db.wal!.lastLsn).toBe(before + 2);
    await db.clear({ gte: 'd' });
    expect(db.wal!.lastLsn).toBe(before + 3);
    const records = [];
    for await (const r of db.wal!.read({ fromLsn: before + 1 })) records.push(decodeRecord(r.payload, r.lsn));
    expect(records.map((ops) => ops.map((o) => o.type))).toEqual([['put', 'put', 'del'], ['put', 'put', 'del'], ['clear']]);
    expect(await db.iterator().all()).toEqual([['c', '3']]);
    await db.close();
  });

  it('concurrent writers share group commits: 64 puts cost far fewer than 64 fdatasyncs', async () => {
    const { db, fault } = await openMemory();
    await db.put('warm', 'x');
    const release = holdWalSyncs(fault);
    const first = track(db.put('k0', 'v'));
    await until(() => fault.counts.datasync > 0 || db.wal!.stats().waiters > 0, 'the first commit to start');
    const rest = Array.from({ length: 63 }, (_, i) => db.put(`k${i + 1}`, 'v'));
    const syncsBefore = db.wal!.stats().syncs;
    release();
    await Promise.all([first.promise, ...rest]);
    // The held commit, then one commit for the 63 that arrived meanwhile.
    expect(db.wal!.stats().syncs - syncsBefore).toBeLessThanOrEqual(2);
    expect((await db.keys().all()).length).toBe(65);
    await db.close();
  });

  it('a clear covers writes appended before it that were not yet visible', async () => {
    const { db, fault } = await openMemory();
    const release = holdWalSyncs(fault);
    const put = db.put('x', '1');
    const clear = db.clear();
    release();
    await Promise.all([put, clear]);
    expect(await db.get('x')).toBeUndefined();
    await db.close();
  });
});

describe('bad input: a typed error, nothing written', () => {
  it('a value the encoding cannot encode', async () => {
    const { db } = await openMemory({ valueEncoding: 'json' });
    const before = db.wal!.lastLsn;
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(db.put('k', cyclic as never)).rejects.toThrow(/circular/i);
    await expect(db.put('k', 1n as never)).rejects.toThrow(/BigInt/i);
    expect(db.wal!.lastLsn).toBe(before);
    expect(await db.get('k')).toBeUndefined();
    await db.close();
  });

  it('a record over the WAL limit is RECORD_TOO_LARGE, and the engine goes on', async () => {
    const { db } = await openMemory({ valueEncoding: 'buffer' });
    const before = db.wal!.lastLsn;
    await expect(db.put('big', Buffer.alloc(128 * 1024) as never)).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    await expect(db.batch(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: Buffer.alloc(1024) as never })))).rejects.toMatchObject({
      code: 'RECORD_TOO_LARGE',
    });
    expect(db.wal!.lastLsn).toBe(before);
    expect(await db.keys().all()).toEqual([]);
    await db.put('small', Buffer.from('ok') as never);
    expect(await db.keys().all()).toEqual(['small']);
    await db.close();
  });

  it('operations after close are refused with LEVEL_DATABASE_NOT_OPEN', async () => {
    const { db, mem } = await openMemory();
    await db.put('a', '1');
    await db.close();
    await expect(db.put('b', '2')).rejects.toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN' });
    await expect(db.get('a')).rejects.toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN' });
    await expect(db.checkpoint()).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    const again = new Engine(LOCATION, { fs: mem });
    expect(await again.keys().all()).toEqual(['a']);
    await again.close();
  });

  it('a second engine on the location: WAL_LOCKED as the open error cause, the first unharmed', async () => {
    const { db, fault } = await openMemory();
    await db.put('a', '1');
    const second = new Engine(LOCATION, { fs: fault });
    const err = await second.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN', cause: { code: 'WAL_LOCKED' } });
    await db.put('b', '2');
    expect(await db.keys().all()).toEqual(['a', 'b']);
    await db.close();
  });

  it('wrong options are TypeError / RangeError at construction', () => {
    expect(() => new Engine('', {})).toThrow(TypeError);
    expect(() => new Engine('/x', { checkpointEveryBytes: 10 })).toThrow(RangeError);
    expect(() => new Engine('/x', { wal: { dir: '/y' } as never })).toThrow(TypeError);
  });
});

describe("the built-in 'msgpack' encoding", () => {
  it('stores any msgpack value, by name in the constructor and per call', async () => {
    const { db, mem } = await openMemory({ valueEncoding: 'msgpack' } as never);
    const value = { n: 1, s: 'é', list: [1, 2, { deep: true }], bin: Buffer.from([1, 2, 3]) };
    await db.put('k', value as never);
    expect(await db.get('k')).toEqual(value);
    await db.put('j', 'plain', { valueEncoding: 'utf8' });
    expect(await db.get('j', { valueEncoding: 'utf8' })).toBe('plain');
    await db.close();
    const again = new Engine(LOCATION, { fs: mem });
    expect(await again.get('k', { valueEncoding: 'msgpack' } as never)).toEqual(value);
    await again.close();
  });

  it('refuses a value msgpack cannot carry with a TypeError (LEVEL_INVALID_VALUE), put and batch alike, nothing written (review of 2026-12-05)', async () => {
    const { db } = await openMemory({ valueEncoding: 'msgpack' } as never);
    await db.put('before', 1 as never);
    const lsn = db.visibleLsn;
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: Array<[string, unknown, RegExp]> = [
      ['symbol', Symbol('s'), /cannot encode this value: Unknown type: symbol/],
      ['cyclic', cyclic, /cannot encode this value/],
      ['bigint', 2n ** 70n, /cannot encode this value: .*too large/],
      ['function', () => 1, /cannot encode a function: it would read back as undefined/],
    ];
    for (const [what, value, message] of bad) {
      await expect(db.put(what, value as never), what).rejects.toMatchObject({ name: 'TypeError', code: 'LEVEL_INVALID_VALUE', message: expect.stringMatching(message) });
      await expect(db.batch([{ type: 'put', key: 'ok', value: 2 as never }, { type: 'put', key: what, value: value as never }]), what).rejects.toMatchObject({ code: 'LEVEL_INVALID_VALUE' });
    }
    expect(db.visibleLsn).toBe(lsn);
    expect(await db.keys().all()).toEqual(['before']);
    await db.close();
  });

  it("is accepted by name in a sublevel's options, per call on a sublevel, and in a sublevel of a sublevel", async () => {
    const { db, mem } = await openMemory();
    const value = { n: 2, list: ['a', { deep: [1, 2] }], bin: Buffer.from([9, 8]) };
    const sub = db.sublevel<string, unknown>('docs', { valueEncoding: 'msgpack' } as never);
    await sub.put('k', value);
    expect(await sub.get('k')).toEqual(value);
    expect(await sub.values().all()).toEqual([value]);
    await sub.batch([{ type: 'put', key: 'b', value: [1, 'two'] }]);
    expect(await sub.get('b')).toEqual([1, 'two']);
    const plain = db.sublevel('plain');
    await plain.put('p', 'x', { valueEncoding: 'msgpack' } as never);
    expect(await plain.get('p', { valueEncoding: 'msgpack' } as never)).toBe('x');
    const nested = sub.sublevel<string, unknown>('inner', { valueEncoding: 'msgpack' } as never);
    await nested.put('n', { nested: true });
    expect(await nested.get('n')).toEqual({ nested: true });
    await db.close();
    // Stored as msgpack bytes under the sublevel's prefix: a fresh engine reads them back.
    const again = new Engine(LOCATION, { fs: mem });
    expect(await again.sublevel('docs', { valueEncoding: 'msgpack' } as never).get('k')).toEqual(value);
    expect(await again.get('!docs!k', { valueEncoding: 'msgpack' } as never)).toEqual(value);
    await again.close();
  });
});
