/**
 * A backup given to an engine that ran without one (its WAL no longer begins at LSN 1) starts with a base:
 * the engine's whole state written into its WAL at open (engine/base.ts). A restore to any LSN from the
 * base's end on opens as an engine with exactly that state; to an earlier LSN it is ENGINE_CORRUPT naming
 * why. A base cut short by a failure changes nothing in the state, and writes after it are kept.
 */
import { describe, expect, it } from 'vitest';
import { restoreBackup } from '../backup/index.js';
import { Engine } from '../engine/index.js';
import { BASE_MARKER_NAME } from '../engine/base.js';
import { MemoryFileSystem, type FileSystem } from '../fs/index.js';
import { encodeBaseBegin, encodeBaseChunk } from '../engine/record.js';

const WAL = { segmentSizeBytes: 4096 };

function open(fs: FileSystem, location: string, backup = false): Engine<string, string> {
  return new Engine<string, string>(location, { fs, wal: WAL, valueEncoding: 'utf8', ...(backup ? { backup: { dir: '/bk', fs, flushIntervalMs: 3_600_000 } } : {}) });
}

/** An engine at /db that ran without a backup: 600 writes and two checkpoints, so its WAL starts after LSN 1. */
async function historyWithoutBackup(fs: FileSystem): Promise<Array<[string, string]>> {
  const db = open(fs, '/db');
  await db.open();
  for (let i = 0; i < 300; i++) await db.put(`k${String(i % 120).padStart(3, '0')}`, `a${i}-${'x'.repeat(30)}`);
  await db.checkpoint();
  for (let i = 0; i < 300; i++) {
    if (i % 7 === 0) await db.del(`k${String(i % 120).padStart(3, '0')}`);
    else await db.put(`k${String(i % 120).padStart(3, '0')}`, `b${i}-${'y'.repeat(30)}`);
  }
  await db.checkpoint();
  expect(db.wal?.firstLsn).toBeGreaterThan(1);
  const state = await db.iterator().all();
  await db.close();
  return state;
}

/** Restores /bk to /r and reads the engine there. */
async function restoredState(fs: FileSystem): Promise<Array<[string, string]>> {
  await restoreBackup({ from: '/bk', to: '/r/wal', fs });
  const restored = open(fs, '/r');
  await restored.open();
  const state = await restored.iterator().all();
  await restored.close();
  return state;
}

describe('engine base for a backup that begins after LSN 1', () => {
  it('restores at and after the base end open with the exact state; before it, ENGINE_CORRUPT; one base per backup', async () => {
    const mem = new MemoryFileSystem();
    const before = await historyWithoutBackup(mem);
    const db = open(mem, '/db', true);
    await db.open();
    const baseEndLsn = db.wal?.lastLsn ?? 0;
    expect(db.backup?.startLsn).toBeGreaterThan(1);
    expect(await mem.readdir('/db/checkpoints')).toContain(BASE_MARKER_NAME);
    expect(await db.iterator().all()).toEqual(before); // the base changes nothing
    await db.put('after', '1');
    await db.del('k000');
    const finalState = await db.iterator().all();
    const lastLsn = db.wal?.lastLsn ?? 0;
    await db.close();

    await restoreBackup({ from: '/bk', to: '/full/wal', fs: mem });
    const full = open(mem, '/full');
    await full.open();
    expect(full.stats().visibleLsn).toBe(lastLsn);
    expect(await full.iterator().all()).toEqual(finalState);
    await full.close();

    await restoreBackup({ from: '/bk', to: '/atbase/wal', fs: mem, untilLsn: baseEndLsn });
    const atBase = open(mem, '/atbase');
    await atBase.open();
    expect(await atBase.iterator().all()).toEqual(before);
    await atBase.close();

    await restoreBackup({ from: '/bk', to: '/early/wal', fs: mem, untilLsn: baseEndLsn - 1 });
    const early = open(mem, '/early');
    const err = (await early.open().then(
      () => null,
      (e: unknown) => e,
    )) as { cause?: { code?: string; message?: string } } | null;
    expect(err?.cause?.code).toBe('ENGINE_CORRUPT');
    expect(err?.cause?.message).toContain('no complete base');

    // The same backup again: no second base.
    const again = open(mem, '/db', true);
    await again.open();
    expect(again.wal?.lastLsn).toBe(lastLsn);
    await again.close();
  });

  it('a base cut short (its end never written) changes nothing; writes after it are kept; the next open writes a whole base', async () => {
    const mem = new MemoryFileSystem();
    const before = await historyWithoutBackup(mem);
    // What a crash in the middle of appending a base leaves: its begin and some chunks, durable, no end.
    const cut = open(mem, '/db');
    await cut.open();
    const wal = cut.wal as NonNullable<typeof cut.wal>;
    const beginLsn = wal.append(encodeBaseBegin(wal.lastLsn));
    wal.append(encodeBaseChunk(beginLsn, [['k001', Buffer.from('only in the cut base')]]));
    await wal.sync();
    await cut.close();
    const plain = open(mem, '/db');
    await plain.open();
    expect(await plain.iterator().all()).toEqual(before);
    await plain.put('k002', 'written after the cut base');
    const withWrite = await plain.iterator().all();
    await plain.close();
    const reopened = open(mem, '/db');
    await reopened.open();
    expect(await reopened.iterator().all()).toEqual(withWrite);
    await reopened.close();
    // With the backup: a whole base now, and a restore of it holds the state.
    const backed = open(mem, '/db', true);
    await backed.open();
    await backed.close();
    expect(await restoredState(mem)).toEqual(withWrite);
  });

  it('a base of many chunks (waits for the log between rounds) restores whole', async () => {
    const mem = new MemoryFileSystem();
    const db = open(mem, '/db');
    await db.open();
    for (let i = 0; i < 3000; i++) await db.put(`key${String(i).padStart(5, '0')}`, `v${i}-${'z'.repeat(40)}`);
    await db.checkpoint();
    for (let i = 0; i < 10; i++) await db.del(`key${String(i).padStart(5, '0')}`);
    await db.checkpoint(); // truncates the WAL back to the first
    const state = await db.iterator().all();
    await db.close();
    const backed = open(mem, '/db', true);
    await backed.open();
    expect(backed.backup?.startLsn).toBeGreaterThan(1);
    expect((backed.wal?.lastLsn ?? 0) - 3010).toBeGreaterThan(17); // begin, more than 16 chunks, end
    await backed.close();
    expect(await restoredState(mem)).toEqual(state);
  });

  it('values near the WAL payload limit, and larger than a base chunk, go into the base in parts and restore whole', async () => {
    const mem = new MemoryFileSystem();
    const db = open(mem, '/db');
    await db.open();
    const limit = db.wal?.payloadBytesMax ?? 0;
    // The largest value the WAL takes under this key: its put record fits; a chunk holding it would not.
    let near = '';
    for (let bytes = limit; near === ''; bytes--) {
      const candidate = Buffer.alloc(bytes, 7).toString('latin1');
      if (await db.put('near', candidate).then(() => true, () => false)) near = candidate;
    }
    expect(near.length).toBeGreaterThan(limit - 16);
    await db.put('small', 'v');
    for (let i = 0; i < 60; i++) await db.put(`k${i}`, 'x'.repeat(60));
    await db.checkpoint();
    for (let i = 0; i < 60; i++) await db.put(`k${i}`, 'y'.repeat(60));
    await db.checkpoint();
    const state = await db.iterator().all();
    await db.close();
    const backed = open(mem, '/db', true);
    await backed.open();
    expect(backed.backup?.startLsn).toBeGreaterThan(1);
    await backed.close();
    expect(await restoredState(mem)).toEqual(state);
  });

  it('a value of several MiB (larger than BASE_CHUNK_BYTES) goes into the base in parts', async () => {
    const mem = new MemoryFileSystem();
    const db = new Engine<string, Buffer>('/db', { fs: mem, valueEncoding: 'buffer', wal: { segmentSizeBytes: 4 * 1024 * 1024 } });
    await db.open();
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await db.put('big', big); // about a segment each: the checkpoints then truncate the WAL past LSN 1
    await db.put('filler', Buffer.alloc(3 * 1024 * 1024, 1));
    await db.checkpoint();
    await db.put('filler', Buffer.alloc(3 * 1024 * 1024, 2));
    await db.checkpoint();
    await db.close();
    const backed = new Engine<string, Buffer>('/db', { fs: mem, valueEncoding: 'buffer', wal: { segmentSizeBytes: 4 * 1024 * 1024 }, backup: { dir: '/bk', fs: mem } });
    await backed.open();
    expect(backed.backup?.startLsn).toBeGreaterThan(1);
    await backed.close();
    await restoreBackup({ from: '/bk', to: '/r/wal', fs: mem });
    const restored = new Engine<string, Buffer>('/r', { fs: mem, valueEncoding: 'buffer' });
    await restored.open();
    expect(Buffer.compare((await restored.get('big')) as Buffer, big)).toBe(0);
    await restored.close();
  });
});
