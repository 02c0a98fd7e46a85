/**
 * A directory of another kind than the one asked for (review of 2026-12-05): an engine opened on a WAL
 * directory (what restoreBackup writes) started an empty database inside it, beside the restored data;
 * a WAL opened on an engine's location or on a backup started an empty log there. Each is now refused
 * with WRONG_DIRECTORY before anything is created, and the right directory still opens.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { BackupSink } from '../backup/index.js';
import { MemoryFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';

async function tree(fs: MemoryFileSystem, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await fs.readdir(dir)).sort()) {
    out.push(name);
    const sub = await fs.readdir(`${dir}/${name}`).catch(() => null);
    if (sub !== null) out.push(...sub.sort().map((n) => `${name}/${n}`));
  }
  return out;
}

describe('a directory of another kind', () => {
  it('an engine on a WAL directory is refused (the error names it), nothing written; at <location>/wal it opens', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/restored', fs });
    wal.append(new Uint8Array([1]));
    await wal.sync();
    await wal.close();
    const before = await tree(fs, '/restored');
    const db = new Engine('/restored', { fs });
    const err = await db.open().catch((e: unknown) => e);
    expect((err as { cause?: unknown }).cause).toMatchObject({ code: 'WRONG_DIRECTORY', message: expect.stringMatching(/is not an engine's location: it holds WAL segments/) });
    expect(await tree(fs, '/restored')).toEqual(before);
  });

  it('an engine on a backup is refused; a WAL on an engine location or on a backup too; nothing written', async () => {
    const fs = new MemoryFileSystem();
    const engine = new Engine('/db', { fs });
    await engine.open();
    await engine.put('k', 'v');
    await engine.close();
    const wal = await Wal.open({ dir: '/w', fs });
    const sink = await BackupSink.open({ wal, fs, dir: '/bk', flushIntervalMs: 3_600_000 });
    wal.append(new Uint8Array([1]));
    await sink.forceFlush();
    await sink.close();
    await wal.close();
    const dbBefore = await tree(fs, '/db');
    const bkBefore = await tree(fs, '/bk');
    await expect(Wal.open({ dir: '/db', fs })).rejects.toMatchObject({ code: 'WRONG_DIRECTORY', message: expect.stringMatching(/an engine's location/) });
    await expect(Wal.open({ dir: '/bk', fs })).rejects.toMatchObject({ code: 'WRONG_DIRECTORY', message: expect.stringMatching(/a backup/) });
    const onBackup = await new Engine('/bk', { fs }).open().catch((e: unknown) => e);
    expect((onBackup as { cause?: unknown }).cause).toMatchObject({ code: 'WRONG_DIRECTORY' });
    expect(await tree(fs, '/db')).toEqual(dbBefore);
    expect(await tree(fs, '/bk')).toEqual(bkBefore);
    // The engine itself still opens, and its WAL at /db/wal too.
    const again = new Engine('/db', { fs });
    await again.open();
    expect(await again.get('k')).toBe('v');
    await again.close();
    const inner = await Wal.open({ dir: '/db/wal', fs });
    expect(inner.lastLsn).toBeGreaterThan(0);
    await inner.close();
  });
});
