/**
 * The Engine with its admin option: drain refuses new writes with ENGINE_DRAINING until resume(), the
 * endpoint's status and metrics come from the engine, a second engine on the same socket path is
 * refused while the first lives, and close removes the socket.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/engine.js';
import { request, tempDir } from './admin-fixtures.js';

const open: Array<Engine<string, string>> = [];
afterEach(async () => {
  for (const db of open.splice(0)) await db.close().catch(() => {});
});

async function engine(dir: string, socketPath: string, name = 'db'): Promise<Engine<string, string>> {
  const db = new Engine<string, string>(path.join(dir, name), { valueEncoding: 'utf8', backup: { dir: path.join(dir, `${name}-backup`), flushIntervalMs: 3_600_000 }, admin: { socketPath } });
  open.push(db);
  await db.open();
  return db;
}

describe('Engine admin', () => {
  it('drain refuses new writes with ENGINE_DRAINING until resume(); the answer covers every acknowledged write', async () => {
    const dir = await tempDir();
    const db = await engine(dir, path.join(dir, 'a.sock'));
    await Promise.all(Array.from({ length: 50 }, (_, i) => db.put(`k${i}`, `v${i}`)));
    const d = await db.drain({ timeoutMs: 30_000 });
    expect(d.walDurableLsn).toBe(50);
    expect(d.backupCheckpointLsn).toBe(50);
    expect(db.draining).toBe(true);
    await expect(db.put('late', 'x')).rejects.toMatchObject({ code: 'ENGINE_DRAINING' });
    await expect(db.batch([{ type: 'put', key: 'late', value: 'x' }])).rejects.toMatchObject({ code: 'ENGINE_DRAINING' });
    expect(await db.get('late')).toBeUndefined();
    db.resume();
    await db.put('after', 'y');
    expect(await db.get('after')).toBe('y');
  });

  it('writes refused while draining keep nothing: no value slab is made for their values (clients that retry)', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 'r.sock');
    const db = new Engine<Buffer, Buffer>(path.join(dir, 'rb'), { keyEncoding: 'buffer', valueEncoding: 'buffer', admin: { socketPath } });
    open.push(db as never);
    await db.open();
    const value = Buffer.alloc(4096, 7); // slab-sized (VALUE_SLAB_VALUE_BYTES_MIN and up)
    await db.put(Buffer.from('before'), value);
    await db.drain({ timeoutMs: 30_000 });
    const slabsBefore = db.stats().valueSlabs.slabs;
    for (let i = 0; i < 2_000; i++) {
      const key = Buffer.from(`k${i}`);
      await expect(db.put(key, value)).rejects.toMatchObject({ code: 'ENGINE_DRAINING' });
      if (i % 10 === 0) await expect(db.batch([{ type: 'put', key, value }])).rejects.toMatchObject({ code: 'ENGINE_DRAINING' });
    }
    // 2,200 refused values of 4 KiB: ~9 MiB. On the old code they were copied into new slabs first (slabs 1 -> 14 here).
    expect(db.stats().valueSlabs.slabs).toBe(slabsBefore);
    db.resume();
    await db.put(Buffer.from('after'), value);
    expect(await db.get(Buffer.from('after'))).toEqual(value);
  });

  it('a drain refused for wrong arguments leaves the engine taking writes', async () => {
    const dir = await tempDir();
    const db = await engine(dir, path.join(dir, 'a.sock'));
    await expect(db.drain({ timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(db.drain({ bogus: 1 } as never)).rejects.toBeInstanceOf(TypeError);
    expect(db.draining).toBe(false);
    await db.put('k', 'v');
    expect(await db.get('k')).toBe('v');
  });

  it('force-flush on an engine without a backup answers 404 BACKUP_NOT_FOUND, not a server error', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 'n.sock');
    const db = new Engine<string, string>(path.join(dir, 'nb'), { valueEncoding: 'utf8', admin: { socketPath } });
    open.push(db);
    await db.open();
    const r = await request(socketPath, 'POST', '/force-flush', {});
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('BACKUP_NOT_FOUND');
  });

  it('serves status and metrics from the engine over a 0600 socket, refuses a second engine on the path, removes the socket on close', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 'a.sock');
    const db = await engine(dir, socketPath);
    expect((await fsp.lstat(socketPath)).mode & 0o777).toBe(0o600);
    await db.put('a', 'b');
    const s = await request(socketPath, 'GET', '/status');
    expect(s.json).toMatchObject({ status: 'open', draining: false, visibleLsn: 1, wal: { durableLsn: 1 } });
    const m = await request(socketPath, 'GET', '/metrics');
    expect(m.text).toMatch(/^flushpoint_wal_durable_lsn 1$/m);
    expect(m.text).toMatch(/^flushpoint_wal_fsync_seconds_count\{op="commit"\} [1-9]/m);
    // The engine's own figures: keys, checkpoints, value slabs (a 2 KiB value goes into one).
    await db.put('big', 'x'.repeat(2048));
    await db.checkpoint();
    const e = await request(socketPath, 'GET', '/metrics');
    expect(e.text).toMatch(/^flushpoint_engine_keys 2$/m);
    expect(e.text).toMatch(/^flushpoint_engine_checkpoints_total 1$/m);
    expect(e.text).toMatch(/^flushpoint_engine_wal_truncation_failed 0$/m);
    expect(e.text).toMatch(/^flushpoint_engine_value_slabs_total 1$/m);
    expect(e.text).toMatch(/^flushpoint_engine_values_relocated_total 0$/m);
    expect(e.text).toMatch(/^flushpoint_engine_value_slab_scans_total 1$/m); // the checkpoint's
    const second = new Engine(path.join(dir, 'other'), { admin: { socketPath } });
    const err = await second.open().catch((e: unknown) => e);
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err)) + String((err as Error).cause)).toContain('ADMIN_SOCKET_IN_USE');
    expect(second.status).toBe('closed');
    expect((await request(socketPath, 'POST', '/drain', {})).json).toMatchObject({ walDurableLsn: 2, backupCheckpointLsn: 2 });
    await db.close();
    await expect(fsp.lstat(socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
