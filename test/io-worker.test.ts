import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IoWorker, IoWorkerPool } from '../fs/io-worker.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-ioworker-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sharedBytes(text: string): Uint8Array {
  const b = new Uint8Array(new SharedArrayBuffer(text.length));
  b.set(Buffer.from(text));
  return b;
}

describe('commit worker', () => {
  it('writes shared and unshared buffers in order at the position, then syncs', async () => {
    const file = path.join(dir, 'a');
    const fd = fs.openSync(file, 'w+');
    const w = new IoWorker();
    try {
      await w.commit(fd, file, [sharedBytes('hello '), Buffer.from('plain '), sharedBytes('world')], 3, 'fdatasync');
      await w.commit(fd, file, [sharedBytes('!')], 20, 'fsync');
      const got = fs.readFileSync(file);
      expect(got.subarray(3, 20).toString()).toBe('hello plain world');
      expect(got.subarray(20).toString()).toBe('!');
      expect(got.subarray(0, 3)).toEqual(Buffer.alloc(3));
    } finally {
      fs.closeSync(fd);
      await w.terminate();
    }
  });

  it('many buffers, many shared buffers (past its registry), and a queue of concurrent commits', async () => {
    const file = path.join(dir, 'b');
    const fd = fs.openSync(file, 'w+');
    const pool = new IoWorkerPool(1);
    try {
      const parts = Array.from({ length: 300 }, (_, i) => sharedBytes(String.fromCharCode(65 + (i % 26))));
      await pool.commit(fd, file, parts, 0, 'fdatasync'); // 300 > the iovec limit: copied
      // 100 distinct shared buffers, concurrently: more than the worker remembers at once.
      await Promise.all(Array.from({ length: 100 }, (_, i) => pool.commit(fd, file, [sharedBytes(String(i % 10))], 300 + i, 'fdatasync')));
      const got = fs.readFileSync(file).toString();
      expect(got.slice(0, 300)).toBe(parts.map((p) => Buffer.from(p).toString()).join(''));
      expect(got.slice(300)).toBe(Array.from({ length: 100 }, (_, i) => String(i % 10)).join(''));
    } finally {
      fs.closeSync(fd);
      await pool.terminate();
    }
  });

  it('reports the system call error with its code and the path, and keeps working after it', async () => {
    const file = path.join(dir, 'c');
    fs.writeFileSync(file, 'x');
    const readOnly = fs.openSync(file, 'r');
    const w = new IoWorker();
    try {
      const err = (await w.commit(readOnly, file, [sharedBytes('nope')], 0, 'fdatasync').catch((e: unknown) => e)) as NodeJS.ErrnoException;
      expect(err.code).toBe('EBADF');
      expect(err.path).toBe(file);
      const rw = fs.openSync(file, 'r+');
      await w.commit(rw, file, [sharedBytes('ok')], 0, 'fdatasync');
      fs.closeSync(rw);
      expect(fs.readFileSync(file).toString()).toBe('ok');
    } finally {
      fs.closeSync(readOnly);
      await w.terminate();
    }
  });
});
