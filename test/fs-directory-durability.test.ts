/**
 * Directory durability (issue 8 item 10): the in-memory file system loses an unsynced mkdir in a crash
 * and may keep any subset of a directory's unsynced operations; the WAL, the backup sink and restore
 * create their directories durably (makeDirDurable: create, then fsync the parent), so nothing
 * acknowledged in a new directory vanishes with it.
 */
import { describe, expect, it } from 'vitest';
import { FaultFileSystem, MemoryFileSystem, makeDirDurable } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { BackupSink } from '../backup/sink.js';
import { verifyBackup } from '../backup/verify.js';
import { restoreBackup } from '../backup/restore.js';

async function exists(fs: MemoryFileSystem, path: string): Promise<boolean> {
  return fs.stat(path).then(
    () => true,
    () => false,
  );
}

async function writeSynced(fs: MemoryFileSystem, path: string, text: string): Promise<void> {
  const h = await fs.open(path, 'w+');
  await h.commit([Buffer.from(text)], 0, 'fdatasync');
  await h.close();
}

describe('MemoryFileSystem: directories after a power loss', () => {
  it('an unsynced mkdir is lost, with everything in it, synced files included', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/a/b');
    await writeSynced(fs, '/a/b/f', 'data');
    await fs.syncDir('/a/b'); // f's entry is durable in b, but b and a are not
    const image = fs.crash();
    expect(await exists(image, '/a')).toBe(false);
    expect(await exists(image, '/a/b/f')).toBe(false);
  });

  it('a directory survives once its parent was synced after the mkdir, level by level', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/a/b');
    await writeSynced(fs, '/a/b/f', 'data');
    await fs.syncDir('/a/b');
    await fs.syncDir('/');
    const onlyA = fs.crash();
    expect(await exists(onlyA, '/a')).toBe(true);
    expect(await exists(onlyA, '/a/b')).toBe(false);
    await fs.syncDir('/a');
    const all = fs.crash();
    expect(Buffer.from(all.readFileNow('/a/b/f')).toString()).toBe('data');
  });

  it("keepUnsynced 'random' keeps prefixes and non-prefix subsets of a directory's unsynced operations", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    await fs.syncDir('/');
    const names = Array.from({ length: 8 }, (_, i) => `f${i}`);
    for (const n of names) await writeSynced(fs, `/d/${n}`, n);
    await fs.syncDir('/d');
    for (const n of names) await fs.unlink(`/d/${n}`); // eight unlinks, never synced
    let prefixes = 0;
    let nonPrefixes = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const image = fs.crash({ keepUnsynced: 'random', seed });
      const left = new Set(await image.readdir('/d'));
      // Unlink i was kept when f_i is gone. A prefix: no kept unlink after a lost one.
      const kept = names.map((n) => !left.has(n));
      const firstLost = kept.indexOf(false);
      if (firstLost === -1 || kept.slice(firstLost).every((k) => !k)) prefixes++;
      else nonPrefixes++;
      expect(image.crashReport?.dirsWithNonPrefixKept ?? 0).toBe(firstLost === -1 || kept.slice(firstLost).every((k) => !k) ? 0 : 1);
    }
    expect(prefixes).toBeGreaterThan(0);
    expect(nonPrefixes).toBeGreaterThan(0);
  });

  it("keepUnsynced 'random' sometimes keeps an unsynced mkdir and sometimes loses it", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/x');
    const seen = new Set<boolean>();
    for (let seed = 1; seed <= 50; seed++) seen.add(await exists(fs.crash({ keepUnsynced: 'random', seed }), '/x'));
    expect([...seen].sort()).toEqual([false, true]);
  });
});

describe('makeDirDurable', () => {
  it('creates each missing component and syncs its parent; an existing directory costs one parent sync', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    expect(await makeDirDurable(fault, '/p/q/r')).toEqual(['/p', '/p/q', '/p/q/r']);
    expect(fault.counts.syncDir).toBe(3);
    expect(await exists(mem.crash(), '/p/q/r')).toBe(true);
    fault.resetCounts();
    expect(await makeDirDurable(fault, '/p/q/r')).toEqual([]);
    expect(fault.counts.syncDir).toBe(1);
    fault.resetCounts();
    expect(await makeDirDurable(fault, '/p/q/s')).toEqual(['/p/q/s']);
    expect(fault.counts.syncDir).toBe(1);
  });

  it('makes an existing directory durable when a crash interrupted its creation before the parent sync', async () => {
    // A process created /db (plain mkdir: its entry in / is not synced yet) and died; the next open finds
    // /db and must not leave it undurable forever (records acknowledged inside it would die with it).
    const mem = new MemoryFileSystem();
    await mem.mkdir('/db');
    expect(await exists(mem.crash(), '/db')).toBe(false);
    expect(await makeDirDurable(mem, '/db')).toEqual([]);
    expect(await exists(mem.crash(), '/db')).toBe(true);
  });

  it('refuses a path where a file is in the way (ENOTDIR) and passes other errors on', async () => {
    const mem = new MemoryFileSystem();
    await writeSynced(mem, '/file', 'x');
    await expect(makeDirDurable(mem, '/file')).rejects.toMatchObject({ code: 'ENOTDIR' });
    const fault = new FaultFileSystem(mem);
    fault.inject({ op: 'syncDir', error: 'EIO' });
    await expect(makeDirDurable(fault, '/new/dir')).rejects.toMatchObject({ code: 'EIO' });
  });
});

/** A WAL with 3 records and a sink on `fs` at `dir` that backed them up (open: close both after). */
async function backedUp(fs: MemoryFileSystem, dir: string): Promise<{ wal: Wal; sink: BackupSink; checkpointLsn: number }> {
  const wal = await Wal.open({ dir: '/wal', fs: new MemoryFileSystem(), segmentSizeBytes: 4096 });
  const sink = await BackupSink.open({ wal, dir, fs, flushIntervalMs: 3_600_000 });
  for (let i = 0; i < 3; i++) wal.append(new Uint8Array([i]));
  await wal.sync();
  const { checkpointLsn } = await sink.forceFlush();
  return { wal, sink, checkpointLsn };
}

describe('the WAL, the backup sink and restore create their directories durably', () => {
  it('an acknowledged record in a WAL whose directory was just created survives a power loss', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/data/wal', fs, segmentSizeBytes: 4096 });
    await wal.waitDurable(wal.append(new Uint8Array([1, 2, 3])));
    const image = fs.crash();
    await wal.close();
    const again = await Wal.open({ dir: '/data/wal', fs: image, segmentSizeBytes: 4096 });
    expect(again.lastLsn).toBe(1);
    await again.close();
  });

  it("a backup checkpoint in a backup directory that was just created survives a power loss", async () => {
    const fs = new MemoryFileSystem();
    const { wal, sink, checkpointLsn } = await backedUp(fs, '/backups/one');
    expect(checkpointLsn).toBe(3);
    const image = fs.crash();
    await sink.close();
    await wal.close();
    const v = await verifyBackup('/backups/one', { fs: image });
    expect(v.checkpointLsn).toBe(3);
  });

  it('a restored WAL in a new directory survives a power loss', async () => {
    const fs = new MemoryFileSystem();
    const { wal, sink } = await backedUp(fs, '/backup');
    await sink.close();
    await wal.close();
    await fs.syncDir('/');
    const r = await restoreBackup({ from: '/backup', to: '/restored/deep/wal', fs, segmentSizeBytes: 4096 });
    expect(r.lastLsn).toBe(3);
    const image = fs.crash();
    const restored = await Wal.open({ dir: '/restored/deep/wal', fs: image, segmentSizeBytes: 4096 });
    expect(restored.lastLsn).toBe(3);
    await restored.close();
  });
});

describe('truncateBefore under a power loss that keeps any subset of directory operations', () => {
  it('never leaves an LSN gap: the reopened log is contiguous from its first LSN (120 seeds)', async () => {
    const { seededRandom } = await import('../core/random.js');
    const { deferred, until } = await import('./helpers/async.js');
    // With a directory sync after each unlink there is at most one unlinking in doubt at a crash; count
    // images where it (or another unsynced directory operation) was kept, and where it was lost.
    let kept = 0;
    let lost = 0;
    for (let seed = 1; seed <= 120; seed++) {
      const rng = seededRandom(seed);
      const mem = new MemoryFileSystem();
      const fault = new FaultFileSystem(mem);
      const wal = await Wal.open({ dir: '/wal', fs: fault, segmentSizeBytes: 1024 });
      for (let i = 1; i <= 80; i++) wal.append(new Uint8Array(100).fill(i)); // 7 records a segment: 12 segments
      await wal.sync();
      // Hold the nth unlink or directory sync of the truncation, and lose power there.
      const op = rng.int(2) === 0 ? 'unlink' : 'syncDir';
      const nth = 1 + rng.int(8);
      const gate = deferred();
      const base = fault.counts[op];
      fault.inject({ op, path: '/wal', nth, hold: gate.promise });
      const truncating = wal.truncateBefore(60);
      await Promise.race([until(() => fault.counts[op] - base >= nth, 'the held operation'), truncating]);
      const image = mem.crash({ keepUnsynced: 'random', seed });
      const report = image.crashReport;
      if (report !== null && report.dirOpsKept > 0) kept++;
      if (report !== null && report.dirOpsKept < report.dirOpsUnsynced) lost++;
      gate.resolve();
      await truncating;
      await wal.close();
      const after = await Wal.open({ dir: '/wal', fs: image, segmentSizeBytes: 1024 }).catch((err: unknown) => {
        throw new Error(`seed ${seed} (${op} #${nth}): ${String(err)}`);
      });
      expect(after.lastLsn, `seed ${seed}`).toBe(80);
      expect(after.firstLsn, `seed ${seed}`).toBeLessThanOrEqual(60);
      let lsn = after.firstLsn;
      for await (const r of after.read({ fromLsn: after.firstLsn })) {
        expect(r.lsn, `seed ${seed}`).toBe(lsn);
        expect(r.payload[0], `seed ${seed}`).toBe(lsn);
        lsn++;
      }
      expect(lsn - 1).toBe(80);
      await after.close();
    }
    expect(kept).toBeGreaterThan(10);
    expect(lost).toBeGreaterThan(10);
  });
});
