/**
 * Power loss at every step of the backup's publish sequence (temp file, write, fdatasync, close, rename,
 * directory fsync; then the same for CHECKPOINT). Before every file-system call the sink makes, the
 * disk is copied as a power loss at that instant would leave it (only synced data and synced directory
 * entries, or that plus a seeded random part of the rest). For every such image: the checkpoint never
 * exceeds what is durable in the backup and records the backup's start (LSN 1), whose file is durable
 * (verify checks it), restore yields exactly LSNs 1..checkpoint with exact payloads,
 * and a sink reopened on it adopts or removes what the crash left and completes the backup.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/wal.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { FaultFileSystem, type FsOp } from '../fs/fault-file-system.js';
import { BackupSink } from '../backup/sink.js';
import { verifyBackup } from '../backup/verify.js';
import { restoreBackup } from '../backup/restore.js';
import { equalBytes, payloadFor, readAll } from './helpers/wal-fixtures.js';

class SnapshottingFileSystem extends FaultFileSystem {
  readonly images: Array<{ step: number; op: FsOp; path: string; fs: MemoryFileSystem; mode: string }> = [];
  constructor(readonly mem: MemoryFileSystem, readonly seeds: readonly number[]) {
    super(mem);
  }
  override async before(op: FsOp, path: string): Promise<ReturnType<FaultFileSystem['before']> extends Promise<infer R> ? R : never> {
    if (path.startsWith('/backup')) {
      const step = this.images.length;
      this.images.push({ step, op, path, fs: this.mem.crash(), mode: 'synced only' });
      for (const seed of this.seeds) this.images.push({ step, op, path, fs: this.mem.crash({ keepUnsynced: 'random', seed: seed * 1000 + step }), mode: `random seed ${seed * 1000 + step}` });
    }
    return super.before(op, path);
  }
}

describe('backup under power loss', () => {
  it('keeps the checkpoint within what is durable at every step of the publish sequence', async () => {
    const wal = await Wal.open({ dir: '/wal', fs: new MemoryFileSystem(), segmentSizeBytes: 16 * 1024 });
    const sfs = new SnapshottingFileSystem(new MemoryFileSystem(), [1, 2, 3]);
    const lengths = new Map<number, number>();
    const append = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const lsn = wal.lastLsn + 1;
        const len = (lsn * 37) % 300;
        lengths.set(lsn, len);
        wal.append(payloadFor(lsn, len));
      }
      await wal.sync();
    };
    // segmentSizeBytesMax small enough that one flush writes several files.
    const sink = await BackupSink.open({ wal, dir: '/backup', fs: sfs, flushIntervalMs: 3_600_000, segmentSizeBytesMax: 4096 });
    await append(5);
    await sink.forceFlush();
    await append(60);
    await sink.forceFlush();
    await append(1);
    await sink.forceFlush();
    await sink.close();
    const total = wal.lastLsn;
    expect(sink.checkpointLsn).toBe(total);
    expect(sfs.images.length).toBeGreaterThan(100);

    const seenCheckpoints = new Set<number>();
    let adopted = 0;
    for (const image of sfs.images) {
      const where = `step ${image.step} (before ${image.op} ${image.path}), ${image.mode}`;
      const exists = await image.fs.stat('/backup').then(
        () => true,
        () => false,
      );
      const v = exists ? await verifyBackup('/backup', { fs: image.fs }) : { checkpointLsn: 0, lastLsn: 0, problems: [] };
      const fatal = v.problems.filter((p) => p.code === 'BACKUP_CORRUPT' || p.code === 'BACKUP_GAP');
      expect(fatal, where).toEqual([]);
      expect(v.checkpointLsn, where).toBeLessThanOrEqual(v.lastLsn);
      seenCheckpoints.add(v.checkpointLsn);
      if (v.checkpointLsn > 0) {
        // Every published checkpoint records where the backup starts, and that file is durable.
        expect(v, where).toMatchObject({ firstLsn: 1, firstLsnRecorded: true });
        const r = await restoreBackup({ from: '/backup', to: '/restored', fs: image.fs, segmentSizeBytes: 16 * 1024 });
        expect(r.lastLsn, where).toBe(v.checkpointLsn);
        const restored = await Wal.open({ dir: '/restored', fs: image.fs, segmentSizeBytes: 16 * 1024 });
        const records = await readAll(restored);
        await restored.close();
        expect(records.length, where).toBe(v.checkpointLsn);
        for (const rec of records) {
          if (!equalBytes(rec.payload, payloadFor(rec.lsn, lengths.get(rec.lsn) as number))) throw new Error(`${where}: LSN ${rec.lsn} restored with wrong bytes`);
        }
      }
      // A sink reopened on the image picks up where the durable state says and completes the backup.
      const reopened = await BackupSink.open({ wal, dir: '/backup', fs: image.fs, flushIntervalMs: 3_600_000, holdName: 'check' });
      expect(reopened.checkpointLsn, where).toBeGreaterThanOrEqual(v.checkpointLsn);
      adopted += reopened.stats().adoptedOnOpen;
      const done = await reopened.forceFlush();
      expect(done.checkpointLsn, where).toBe(total);
      await reopened.close();
      const after = await verifyBackup('/backup', { fs: image.fs });
      expect(after.ok, where).toBe(true);
      expect(after, where).toMatchObject({ firstLsn: 1, firstLsnRecorded: true, lastLsn: total });
    }
    // The images really span the sequence: before the first checkpoint, between, and at the end.
    expect([...seenCheckpoints].sort((a, b) => a - b)).toEqual([0, 5, 65, 66]);
    // Some images held files a crash left beyond the checkpoint: the reopened sink adopted those that
    // verified and continued the checkpoint (files published, checkpoint not yet).
    expect(adopted).toBeGreaterThan(0);
    await wal.close();
  });
});
