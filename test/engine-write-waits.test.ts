/**
 * The engine waits on the WAL once per commit, not once per write: a burst of concurrent writes larger
 * than the WAL's waitersCountMax is acknowledged (it was rejected, and the engine failed for good while
 * the WAL was healthy), and writes riding successive commits become visible in LSN order.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { deferred, until } from './helpers/async.js';

describe('engine waits on the WAL', () => {
  it('a burst of writes past the WAL waitersCountMax is acknowledged and visible', async () => {
    const db = new Engine<string, string>('/db', { fs: new MemoryFileSystem(), valueEncoding: 'utf8', wal: { waitersCountMax: 4 } });
    await db.open();
    await Promise.all(Array.from({ length: 100 }, (_, i) => db.put(`k${i}`, `v${i}`)));
    expect(await db.get('k99')).toBe('v99');
    await db.put('after', 'x');
    expect(await db.keys().all()).toHaveLength(101);
    await db.close();
  });

  it('writes riding a commit that is held become visible only after it, in LSN order, with one wait re-armed per commit', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    const db = new Engine<string, string>('/db', { fs, valueEncoding: 'utf8' });
    await db.open();
    const held = deferred();
    let entered = false;
    // A thenable hold: it tells when the commit's datasync reached it.
    const hold = { then: (resolve: (v: unknown) => void, reject: (e: unknown) => void) => ((entered = true), held.promise.then(resolve, reject)) };
    fs.inject({ op: 'datasync', path: '/db/wal/', hold: hold as unknown as Promise<unknown>, times: 1 });
    const order: string[] = [];
    const first = db.put('a', '1').then(() => order.push('a'));
    await until(() => entered, 'the first commit to be held');
    // These ride the next commit, appended while the first is in flight.
    const later = [db.put('b', '2').then(() => order.push('b')), db.del('a').then(() => order.push('del a')), db.put('c', '3', { sync: false }).then(() => order.push('c'))];
    expect(await db.get('a')).toBeUndefined();
    held.resolve();
    await Promise.all([first, ...later]);
    expect(order).toEqual(['a', 'b', 'del a', 'c']);
    expect(await db.get('a')).toBeUndefined();
    expect(await db.get('b')).toBe('2');
    await db.close();
  });
});
