/**
 * The FileSystem implementations and the fs helpers close what they open on every error path (issue 8
 * item 6, fs side). On the real disk the test counts this process's descriptors (/proc/self/fd); on the
 * in-memory one, MemoryFileSystem.openHandlePaths lists the handles not closed.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultFileSystem, MemoryFileSystem, NodeFileSystem, publishFileDurably, readWholeFile, type FileSystem } from '../fs/index.js';
import { recoverSegments } from '../wal/recovery.js';
import { Wal } from '../wal/index.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-fds-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('descriptors on error paths', () => {
  it('an injected close error still closes the real descriptor (FaultFileSystem over NodeFileSystem)', async () => {
    const fault = new FaultFileSystem(new NodeFileSystem());
    const before = fdCount();
    for (let i = 0; i < 20; i++) {
      const h = await fault.open(path.join(dir, `close-${i}`), 'w+');
      fault.inject({ op: 'close', error: 'EIO' });
      await expect(h.close()).rejects.toMatchObject({ code: 'EIO' });
    }
    expect(fdCount()).toBe(before);
  });

  it('an injected close error still closes the in-memory handle', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const h = await fault.open('/f', 'w+');
    expect(mem.openHandlePaths).toEqual(['/f']);
    fault.inject({ op: 'close', error: 'EIO' });
    await expect(h.close()).rejects.toMatchObject({ code: 'EIO' });
    expect(mem.openHandlePaths).toEqual([]);
  });

  it('NodeFileSystem: a refused lock, a failed syncDir and a failed open leave no descriptor', async () => {
    const nfs = new NodeFileSystem();
    const lockPath = path.join(dir, 'lockfile');
    const held = await nfs.lock(lockPath);
    const before = fdCount();
    for (let i = 0; i < 20; i++) {
      await expect(nfs.lock(lockPath)).rejects.toMatchObject({ code: 'EWOULDBLOCK' });
      await expect(nfs.syncDir(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(nfs.open(path.join(dir, 'missing', 'f'), 'w+')).rejects.toMatchObject({ code: 'ENOENT' });
    }
    expect(fdCount()).toBe(before);
    await held.release();
  });

  const implementations: Array<[string, () => { fs: FileSystem; openCount: () => number; root: string }]> = [
    ['NodeFileSystem', () => ({ fs: new NodeFileSystem(), openCount: fdCount, root: dir })],
    [
      'MemoryFileSystem',
      () => {
        const mem = new MemoryFileSystem();
        return { fs: mem, openCount: () => mem.openHandlePaths.length, root: '' };
      },
    ],
  ];
  for (const [name, make] of implementations) {
    it(`${name}: readWholeFile, publishFileDurably and recovery close their handle when a read, write or sync fails`, async () => {
      const { fs: inner, openCount, root } = make();
      const fault = new FaultFileSystem(inner);
      const base = `${root}/helpers-${name}`;
      await inner.mkdir(base);
      await publishFileDurably(inner, base, 'whole', [new Uint8Array(100)]);
      const before = openCount();
      fault.inject({ op: 'read', error: 'EIO' });
      await expect(readWholeFile(fault, `${base}/whole`)).rejects.toMatchObject({ code: 'EIO' });
      fault.inject({ op: 'datasync', error: 'EIO' });
      await expect(publishFileDurably(fault, base, 'other', [new Uint8Array(10)])).rejects.toMatchObject({ code: 'EIO' });
      fault.inject({ op: 'writev', error: 'ENOSPC' });
      await expect(publishFileDurably(fault, base, 'other', [new Uint8Array(10)])).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(openCount()).toBe(before);

      // Recovery reads every segment: a read error in any of them closes that segment's handle.
      const walDir = `${base}/wal`;
      const wal = await Wal.open({ dir: walDir, fs: inner, segmentSizeBytes: 4096 });
      for (let i = 0; i < 100; i++) wal.append(new Uint8Array(100).fill(i));
      await wal.sync();
      await wal.close();
      const names = (await inner.readdir(walDir)).filter((n) => n.endsWith('.wal')).sort();
      expect(names.length).toBeGreaterThan(2);
      const beforeRecovery = openCount();
      for (let nth = 1; nth <= names.length; nth++) {
        const f = new FaultFileSystem(inner);
        f.inject({ op: 'read', path: '.wal', nth, error: 'EIO' });
        await expect(recoverSegments(f, walDir, names, false)).rejects.toMatchObject({ code: 'EIO' });
        f.inject({ op: 'fstat', path: '.wal', nth, error: 'EIO' });
        await expect(recoverSegments(f, walDir, names, false)).rejects.toMatchObject({ code: 'EIO' });
      }
      expect(openCount()).toBe(beforeRecovery);
      if (inner instanceof NodeFileSystem) await inner.dispose();
    });
  }
});
