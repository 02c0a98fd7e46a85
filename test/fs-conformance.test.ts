/**
 * One FileSystem conformance suite, run against all three implementations: NodeFileSystem on a temp
 * directory, MemoryFileSystem, and FaultFileSystem with no rules (over the real disk). Every method of
 * the interface, its success and its error codes (ENOENT, EEXIST, EISDIR, ENOTDIR, EBADF, EWOULDBLOCK).
 * A behaviour the in-memory disk models differently from the real one is a bug in the model.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FaultFileSystem, MemoryFileSystem, NodeFileSystem, type FileHandle, type FileSystem } from '../fs/index.js';

interface Subject {
  fs: FileSystem;
  /** A fresh, empty directory for one test. */
  dir: () => Promise<string>;
  dispose: () => Promise<void>;
}

const tempRoots: string[] = [];
async function tempRoot(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-conformance-'));
  tempRoots.push(d);
  return d;
}
afterAll(async () => {
  for (const d of tempRoots) await rm(d, { recursive: true, force: true });
});

let dirCount = 0;
const SUBJECTS: Array<[string, () => Promise<Subject>]> = [
  [
    'NodeFileSystem',
    async () => {
      const root = await tempRoot();
      const fs = new NodeFileSystem();
      return { fs, dir: async () => mk(fs, `${root}/t${dirCount++}`), dispose: () => fs.dispose() };
    },
  ],
  [
    'MemoryFileSystem',
    async () => {
      const fs = new MemoryFileSystem();
      return { fs, dir: async () => mk(fs, `/t${dirCount++}`), dispose: async () => {} };
    },
  ],
  [
    'FaultFileSystem (no rules, over the real disk)',
    async () => {
      const root = await tempRoot();
      const inner = new NodeFileSystem();
      const fs = new FaultFileSystem(inner);
      return { fs, dir: async () => mk(fs, `${root}/t${dirCount++}`), dispose: () => inner.dispose() };
    },
  ],
];

async function mk(fs: FileSystem, dir: string): Promise<string> {
  await fs.mkdir(dir);
  return dir;
}

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text));

async function readText(fs: FileSystem, file: string): Promise<string> {
  const h = await fs.open(file, 'r');
  try {
    const { sizeBytes } = await h.stat();
    const out = new Uint8Array(sizeBytes);
    const n = await h.read(out, 0, sizeBytes, 0);
    return Buffer.from(out.subarray(0, n)).toString();
  } finally {
    await h.close();
  }
}

async function writeFile(fs: FileSystem, file: string, text: string): Promise<void> {
  const h = await fs.open(file, 'w+');
  await h.commit([bytes(text)], 0, 'fdatasync');
  await h.close();
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e.code,
  );
}

for (const [name, make] of SUBJECTS) {
  describe(`FileSystem conformance: ${name}`, () => {
    const withSubject = (title: string, body: (s: Subject, dir: string) => Promise<void>): void => {
      it(title, async () => {
        const s = await make();
        try {
          await body(s, await s.dir());
        } finally {
          await s.dispose();
        }
      });
    };

    withSubject('open: each flag creates, truncates, keeps or refuses as node:fs does', async ({ fs }, dir) => {
      const f = `${dir}/a`;
      expect(await code(fs.open(f, 'r'))).toBe('ENOENT');
      expect(await code(fs.open(f, 'r+'))).toBe('ENOENT');
      const created = await fs.open(f, 'wx+');
      await created.writev([bytes('hello')], 0);
      await created.close();
      expect(await code(fs.open(f, 'wx+'))).toBe('EEXIST');
      const rw = await fs.open(f, 'r+'); // keeps the content
      expect((await rw.stat()).sizeBytes).toBe(5);
      await rw.close();
      const trunc = await fs.open(f, 'w+'); // truncates
      expect((await trunc.stat()).sizeBytes).toBe(0);
      await trunc.close();
      expect(await code(fs.open(`${dir}/missing/a`, 'w+'))).toBe('ENOENT');
      expect(await code(fs.open(dir, 'w+'))).toBe('EISDIR');
      expect(await code(fs.open(dir, 'r+'))).toBe('EISDIR');
    });

    withSubject('handle: writev in order at a position, read, stat, truncate, datasync, sync, commit', async ({ fs }, dir) => {
      const h: FileHandle = await fs.open(`${dir}/b`, 'w+');
      expect(h.path).toBe(`${dir}/b`);
      expect(await h.writev([bytes('ab'), bytes('cd'), bytes('')], 2)).toBe(4);
      const st = await h.stat();
      expect(st).toEqual({ sizeBytes: 6, isFile: true, isDirectory: false });
      const out = new Uint8Array(10).fill(9);
      expect(await h.read(out, 1, 10 - 1, 0)).toBe(6); // short read at the end of the file
      expect([...out.subarray(0, 7)]).toEqual([9, 0, 0, ...bytes('abcd')]);
      expect(await h.read(out, 0, 4, 100)).toBe(0); // past the end
      await h.datasync();
      await h.sync();
      await h.truncate(3);
      expect((await h.stat()).sizeBytes).toBe(3);
      await h.truncate(8); // extends with zeros
      const grown = new Uint8Array(8);
      expect(await h.read(grown, 0, 8, 0)).toBe(8);
      expect([...grown]).toEqual([0, 0, 97, 0, 0, 0, 0, 0]);
      await h.commit([bytes('xy'), bytes('z')], 8, 'fdatasync');
      await h.commit([bytes('!')], 0, 'fsync');
      await h.close();
      expect(await readText(fs, `${dir}/b`)).toBe('!\0a\0\0\0\0\0xyz');
    });

    withSubject('a read-only handle refuses writes with EBADF', async ({ fs }, dir) => {
      await writeFile(fs, `${dir}/c`, 'data');
      const h = await fs.open(`${dir}/c`, 'r');
      expect(await code(h.writev([bytes('x')], 0))).toBe('EBADF');
      expect(await code(h.commit([bytes('x')], 0, 'fdatasync'))).toBe('EBADF');
      await h.close();
      expect(await readText(fs, `${dir}/c`)).toBe('data');
    });

    withSubject('rename: moves, replaces an existing file, refuses a missing source', async ({ fs }, dir) => {
      await writeFile(fs, `${dir}/from`, 'one');
      await writeFile(fs, `${dir}/to`, 'two');
      await fs.rename(`${dir}/from`, `${dir}/to`);
      expect(await readText(fs, `${dir}/to`)).toBe('one');
      expect(await code(fs.stat(`${dir}/from`))).toBe('ENOENT');
      expect(await code(fs.rename(`${dir}/from`, `${dir}/x`))).toBe('ENOENT');
      expect(await code(fs.rename(`${dir}/to`, `${dir}/missing/x`))).toBe('ENOENT');
      await fs.mkdir(`${dir}/sub`);
      await fs.rename(`${dir}/to`, `${dir}/sub/moved`); // into another directory
      expect(await readText(fs, `${dir}/sub/moved`)).toBe('one');
      await fs.mkdir(`${dir}/empty`);
      expect(await code(fs.rename(`${dir}/sub/moved`, `${dir}/empty`))).toBe('EISDIR');
      await fs.rename(`${dir}/sub`, `${dir}/sub2`); // a directory, with what it holds
      expect(await fs.readdir(`${dir}/sub2`)).toEqual(['moved']);
      expect(await code(fs.stat(`${dir}/sub`))).toBe('ENOENT');
    });

    withSubject('unlink: removes a file; ENOENT when missing, EISDIR on a directory', async ({ fs }, dir) => {
      await writeFile(fs, `${dir}/gone`, 'x');
      await fs.unlink(`${dir}/gone`);
      expect(await code(fs.stat(`${dir}/gone`))).toBe('ENOENT');
      expect(await code(fs.unlink(`${dir}/gone`))).toBe('ENOENT');
      await fs.mkdir(`${dir}/d`);
      expect(await code(fs.unlink(`${dir}/d`))).toBe('EISDIR');
    });

    withSubject('readdir: names of files and directories; ENOENT when missing, ENOTDIR on a file', async ({ fs }, dir) => {
      expect(await fs.readdir(dir)).toEqual([]);
      await writeFile(fs, `${dir}/f`, 'x');
      await fs.mkdir(`${dir}/d/e`);
      expect((await fs.readdir(dir)).sort()).toEqual(['d', 'f']);
      expect(await fs.readdir(`${dir}/d`)).toEqual(['e']);
      expect(await code(fs.readdir(`${dir}/missing`))).toBe('ENOENT');
      expect(await code(fs.readdir(`${dir}/f`))).toBe('ENOTDIR');
    });

    withSubject('mkdir: creates parents, accepts an existing directory, refuses a file in the way', async ({ fs }, dir) => {
      await fs.mkdir(`${dir}/p/q/r`);
      await fs.mkdir(`${dir}/p/q/r`);
      expect((await fs.stat(`${dir}/p/q`)).isDirectory).toBe(true);
      await writeFile(fs, `${dir}/file`, 'x');
      expect(await code(fs.mkdir(`${dir}/file`))).toBe('EEXIST');
      expect(await code(fs.mkdir(`${dir}/file/sub`))).toBe('ENOTDIR');
    });

    withSubject('rmdir: removes an empty directory; ENOTEMPTY, ENOENT, ENOTDIR otherwise', async ({ fs }, dir) => {
      const rmdir = fs.rmdir?.bind(fs) as (p: string) => Promise<void>;
      expect(rmdir).toBeDefined();
      await fs.mkdir(`${dir}/e/f`);
      expect(await code(rmdir(`${dir}/e`))).toBe('ENOTEMPTY');
      await rmdir(`${dir}/e/f`);
      await rmdir(`${dir}/e`);
      expect(await code(fs.stat(`${dir}/e`))).toBe('ENOENT');
      expect(await code(rmdir(`${dir}/e`))).toBe('ENOENT');
      await writeFile(fs, `${dir}/file`, 'x');
      expect(await code(rmdir(`${dir}/file`))).toBe('ENOTDIR');
    });

    withSubject('syncDir: syncs a directory; ENOENT when missing', async ({ fs }, dir) => {
      await fs.syncDir(dir);
      expect(await code(fs.syncDir(`${dir}/missing`))).toBe('ENOENT');
    });

    withSubject('stat: files and directories; ENOENT when missing', async ({ fs }, dir) => {
      await writeFile(fs, `${dir}/s`, 'abc');
      expect(await fs.stat(`${dir}/s`)).toEqual({ sizeBytes: 3, isFile: true, isDirectory: false });
      expect(await fs.stat(dir)).toMatchObject({ isFile: false, isDirectory: true });
      expect(await code(fs.stat(`${dir}/missing`))).toBe('ENOENT');
      expect(await code(fs.stat(`${dir}/missing/deeper`))).toBe('ENOENT');
    });

    withSubject('lock: exclusive (EWOULDBLOCK), creates the file, free again after release', async ({ fs }, dir) => {
      const lock = await fs.lock(`${dir}/LOCK`);
      expect((await fs.stat(`${dir}/LOCK`)).isFile).toBe(true);
      expect(await code(fs.lock(`${dir}/LOCK`))).toBe('EWOULDBLOCK');
      await lock.release();
      await lock.release(); // once
      const again = await fs.lock(`${dir}/LOCK`);
      await again.release();
      expect(await code(fs.lock(`${dir}/missing/LOCK`))).toBe('ENOENT');
    });

    withSubject('warmUp, where there is one, resolves', async ({ fs }) => {
      await fs.warmUp?.();
    });
  });
}

describe('NodeFileSystem.mkdir where a parent refuses to create (review of 2026-12-05)', () => {
  it.runIf(process.platform === 'linux')('settles with the error under /proc, where Node 20\'s own recursive mkdir never settles (it spun a core)', async () => {
    const { settledWithin } = await import('./helpers/async.js');
    const outcome = await settledWithin(new NodeFileSystem().mkdir('/proc/flushpoint-test-dir/x'), 5_000);
    expect(outcome).toMatchObject({ state: 'rejected', reason: { code: 'ENOENT' } });
  });
});
