/**
 * restoreBackup appends in bounded batches: no commit of the restored WAL holds much more than
 * RESTORE_SYNC_EVERY_BYTES, however large one backup file is (a commit spanning a whole 64 MiB backup
 * file is what reached the WAL's staging-buffer livelock, issue 8 item 1, through `backup restore`).
 */
import { describe, expect, it } from 'vitest';
import type { FileHandle, FileSystem, OpenFlags, SyncMethod } from '../fs/file-system.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { Wal } from '../wal/wal.js';
import { BackupSink } from '../backup/sink.js';
import { RESTORE_SYNC_EVERY_BYTES, restoreBackup } from '../backup/restore.js';
import { payloadFor, readAll } from './helpers/wal-fixtures.js';

/** A FileSystem that records the size of every commit (writev + sync) made to files under `prefix`. */
class CommitSizes implements FileSystem {
  readonly sizesBytes: number[] = [];
  constructor(
    readonly inner: FileSystem,
    readonly prefix: string,
  ) {}
  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const handle = await this.inner.open(path, flags);
    if (!path.startsWith(this.prefix)) return handle;
    const sizes = this.sizesBytes;
    return {
      path: handle.path,
      writev: (buffers, position) => handle.writev(buffers, position),
      read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
      datasync: () => handle.datasync(),
      sync: () => handle.sync(),
      truncate: (lengthBytes) => handle.truncate(lengthBytes),
      stat: () => handle.stat(),
      close: () => handle.close(),
      commit(buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod): Promise<void> {
        sizes.push(buffers.reduce((n, b) => n + b.byteLength, 0));
        return handle.commit(buffers, position, syncMethod);
      },
    };
  }
  rename = (from: string, to: string): Promise<void> => this.inner.rename(from, to);
  unlink = (path: string): Promise<void> => this.inner.unlink(path);
  readdir = (path: string): Promise<string[]> => this.inner.readdir(path);
  mkdir = (path: string): Promise<void> => this.inner.mkdir(path);
  syncDir = (path: string): Promise<void> => this.inner.syncDir(path);
  stat: FileSystem['stat'] = (path) => this.inner.stat(path);
  lock: FileSystem['lock'] = (path) => this.inner.lock(path);
}

describe('restore batches', () => {
  it('one 20 MiB backup file is restored in commits of at most RESTORE_SYNC_EVERY_BYTES plus one record', async () => {
    const fs = new MemoryFileSystem();
    const recordBytes = 512 * 1024;
    const count = 40;
    const wal = await Wal.open({ dir: '/wal', fs });
    const sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000 });
    for (let lsn = 1; lsn <= count; lsn++) wal.append(payloadFor(lsn, recordBytes));
    await sink.forceFlush();
    await sink.close();
    await wal.close();
    expect((await fs.readdir('/bk')).filter((n) => n.endsWith('.fpb'))).toHaveLength(1);
    const recording = new CommitSizes(fs, '/restored');
    const r = await restoreBackup({ from: '/bk', to: '/restored', fs: recording });
    expect(r).toEqual({ lastLsn: count, records: count, files: 1 });
    const total = recording.sizesBytes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(count * recordBytes);
    expect(recording.sizesBytes.length).toBeGreaterThanOrEqual(Math.ceil((count * recordBytes) / (RESTORE_SYNC_EVERY_BYTES + recordBytes)));
    expect(Math.max(...recording.sizesBytes)).toBeLessThanOrEqual(RESTORE_SYNC_EVERY_BYTES + recordBytes + 4096);
    const restored = await Wal.open({ dir: '/restored', fs });
    expect((await readAll(restored)).map((x) => x.lsn)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    await restored.close();
  });
});
