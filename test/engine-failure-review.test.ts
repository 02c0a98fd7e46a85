/**
 * Engine failures found by the review of 2026-12-05: a record appended to the engine's WAL from outside
 * hung every later durable write (the wait was never armed again); close() after a failure released
 * everything but left the status 'open' (reads served a state whose lock was gone, open() did nothing);
 * and one failed segment free made every later checkpoint reject after publishing, the automatic one
 * rewriting the state about once a second while the log grew.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';

const LOCATION = '/db';

/** What `p` settles to within `ms`: 'resolved', the rejection's code, or 'pending'. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('pending'), ms);
  });
  try {
    return await Promise.race([p.then(() => 'resolved', (err: unknown) => String((err as { code?: unknown })?.code ?? err)), pending]);
  } finally {
    clearTimeout(timer);
  }
}

describe('engine failures (review of 2026-12-05)', () => {
  it('a record appended through db.wal fails the engine with ENGINE_CORRUPT; later writes reject at once, none hangs', async () => {
    const db = new Engine<string, string>(LOCATION, { fs: new MemoryFileSystem(), valueEncoding: 'utf8' });
    await db.open();
    await db.put('a', '1');
    const b = db.put('b', '2');
    db.wal?.append(new Uint8Array([1, 2, 3]));
    expect(await settleWithin(b, 2000)).toBe('resolved'); // its LSN is before the foreign one
    const c = db.put('c', '3');
    expect(await settleWithin(c, 2000)).toBe('ENGINE_CORRUPT');
    expect(await settleWithin(db.put('d', '4'), 2000)).toBe('ENGINE_CORRUPT');
    expect(await db.get('b')).toBe('2');
    expect(await db.get('c')).toBeUndefined();
    await db.close();
  });

  it('close() of an engine whose WAL and backup both failed (one full disk) rejects with the WAL_FAILED, not the backup\'s error (full-disk review)', async () => {
    const mem = new MemoryFileSystem();
    const fs = new FaultFileSystem(mem);
    const db = new Engine<string, string>(LOCATION, { fs, valueEncoding: 'utf8', backup: { dir: '/backup' } });
    await db.open();
    await db.put('a', '1');
    fs.inject({ op: 'writev', error: 'ENOSPC', times: Number.POSITIVE_INFINITY });
    await expect(db.put('b', '2')).rejects.toMatchObject({ code: 'WAL_FAILED', cause: { code: 'ENOSPC' } });
    const closed = await db.close().then(
      () => null,
      (err: unknown) => err,
    );
    expect(closed).toMatchObject({ name: 'FlushpointError', code: 'WAL_FAILED', cause: { code: 'ENOSPC' } });
    expect(db.status).toBe('closed');
  });

  it('close() after a WAL failure rejects with the failure and leaves the engine closed; open() then reopens it', async () => {
    const mem = new MemoryFileSystem();
    const fs = new FaultFileSystem(mem);
    const db = new Engine<string, string>(LOCATION, { fs, valueEncoding: 'utf8' });
    await db.open();
    await db.put('a', '1');
    fs.inject({ op: 'datasync', path: `${LOCATION}/wal/`, error: 'EIO', times: Number.POSITIVE_INFINITY });
    await expect(db.put('b', '2')).rejects.toMatchObject({ code: 'WAL_FAILED' });
    const events: string[] = [];
    for (const e of ['closing', 'closed'] as const) db.on(e, () => events.push(e));
    await expect(db.close()).rejects.toMatchObject({ name: 'FlushpointError', code: 'WAL_FAILED' });
    expect(db.status).toBe('closed');
    expect(events).toEqual(['closing', 'closed']); // one of each (review of 2026-12-05 evening: 'closing' came twice)
    expect(db.wal).toBeNull();
    await expect(db.get('a')).rejects.toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN' });
    fs.clearFaults();
    await db.open();
    expect(db.status).toBe('open');
    expect(await db.get('a')).toBe('1');
    await db.put('c', '3');
    expect(await db.get('c')).toBe('3');
    await db.close();
    expect(db.status).toBe('closed');
  });

  it('close() after only sync:false writes and a failure reports the failure, and closes', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    const db = new Engine<string, string>(LOCATION, { fs, valueEncoding: 'utf8' });
    await db.open();
    await db.put('a', '1');
    fs.inject({ op: 'datasync', path: `${LOCATION}/wal/`, error: 'EIO', times: Number.POSITIVE_INFINITY });
    await db.put('b', '2', { sync: false });
    await new Promise((resolve) => setTimeout(resolve, 20)); // its commit fails meanwhile; nobody waits for it
    expect(db.wal?.status).toBe('failed');
    await expect(db.close()).rejects.toMatchObject({ code: 'WAL_FAILED' });
    expect(db.status).toBe('closed');
  });

  it('a failure met first by close itself (its final sync) gets abstract-level\'s answer; writes are refused and a second close() closes', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    const db = new Engine<string, string>(LOCATION, { fs, valueEncoding: 'utf8' });
    await db.open();
    await db.put('a', '1');
    // Held open so the write is still in staging at close: its commit is the final sync.
    let release = (): void => {};
    fs.inject({ op: 'datasync', path: `${LOCATION}/wal/`, hold: new Promise<void>((r) => (release = r)) });
    const pending = db.put('b', '2', { sync: false });
    fs.inject({ op: 'datasync', path: `${LOCATION}/wal/`, error: 'EIO', times: Number.POSITIVE_INFINITY });
    const closing = db.close();
    release();
    await pending;
    await expect(closing).rejects.toMatchObject({ code: 'LEVEL_DATABASE_NOT_CLOSED', cause: { code: 'WAL_FAILED' } });
    expect(db.status).toBe('open');
    expect(db.wal).toBeNull();
    await expect(db.put('c', '3')).rejects.toMatchObject({ code: 'WAL_FAILED' });
    await db.close();
    expect(db.status).toBe('closed');
  });

  it('a segment that cannot be freed does not fail later checkpoints: they are written and counted, the error is in stats()', async () => {
    const mem = new MemoryFileSystem();
    const fs = new FaultFileSystem(mem);
    const db = new Engine<string, string>(LOCATION, { fs, wal: { segmentSizeBytes: 64 * 1024 }, checkpointEveryBytes: 1 << 30, valueEncoding: 'utf8' });
    await db.open();
    const v = 'x'.repeat(2000);
    const writeRound = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) await db.put(`k${i}`, v);
    };
    await writeRound();
    await db.checkpoint();
    await writeRound();
    fs.inject({ op: ['unlink', 'rename'], path: /\/db\/wal\/[0-9a-f]{16}/, error: 'EIO', times: 1 });
    const second = await db.checkpoint();
    fs.clearFaults();
    expect(db.stats().walTruncationError).toMatch(/EIO/);
    expect(db.stats().checkpointsWritten).toBe(2);
    expect(db.stats().lastCheckpoint?.lsn).toBe(second.lsn);
    for (let round = 0; round < 3; round++) {
      await writeRound();
      const r = await db.checkpoint();
      expect(r.lsn).toBe(db.visibleLsn);
    }
    expect(db.stats().checkpointsWritten).toBe(5);
    expect(db.stats().checkpointError).toBeNull();
    expect(db.stats().walTruncationError).toMatch(/EIO/);
    expect(db.wal?.status).toBe('open');
    await db.close();
    // Reopened, the WAL truncates again and the error is gone.
    await db.open();
    await writeRound();
    await db.checkpoint();
    await writeRound();
    await db.checkpoint();
    expect(db.stats().walTruncationError).toBeNull();
    expect(db.wal?.firstLsn).toBeGreaterThan(1);
    expect(await db.get('k99')).toBe(v);
    await db.close();
  });
});
