/**
 * The file system's errors name their file, in one line: node:fs's errors on a descriptor name none
 * (`ENOSPC: no space left on device, write`), so a full disk's error said neither which file nor, once
 * wrapped, anything but `ENOSPC: ENOSPC: no space left on device, write, write '...'`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeFileSystem } from '../fs/index.js';
import { fsError } from '../fs/file-system.js';

describe('fsError', () => {
  it('says the code and the syscall once, whether given a description or a whole node:fs message', () => {
    expect(fsError('ENOSPC', 'write', '/d/f', 'no space left on device').message).toBe("ENOSPC: no space left on device, write '/d/f'");
    expect(fsError('ENOSPC', 'write', '/d/f', 'ENOSPC: no space left on device, write').message).toBe("ENOSPC: no space left on device, write '/d/f'");
    expect(fsError('ENOENT', 'open', '/d/f', "ENOENT: no such file or directory, open '/d/g'").message).toBe("ENOENT: no such file or directory, open '/d/f'");
    expect(fsError('EIO', 'fdatasync', '/d/f').message).toBe("EIO: eio, fdatasync '/d/f'");
    // A description that merely contains the syscall's name keeps it.
    expect(fsError('EIO', 'write', '/d/f', 'injected fault, write torn').message).toBe("EIO: injected fault, write torn, write '/d/f'");
  });
});

describe("NodeFileSystem: a descriptor's errors name the file", () => {
  let dir: string;
  const nodeFs = new NodeFileSystem();
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-fs-errors-'));
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writev, ftruncate and read on a descriptor that cannot do them', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    const readOnly = await nodeFs.open(file, 'r');
    try {
      const writeErr = await readOnly.writev([Buffer.from('y')], 0).catch((e: NodeJS.ErrnoException) => e);
      expect(writeErr).toMatchObject({ code: 'EBADF', path: file, syscall: 'write' });
      expect((writeErr as Error).message).toBe(`EBADF: bad file descriptor, write '${file}'`);
      await expect(readOnly.truncate(0)).rejects.toMatchObject({ path: file, syscall: 'ftruncate' });
    } finally {
      await readOnly.close();
    }
    // (No call after close: the descriptor's number may belong to another file by then.)
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    const directory = await nodeFs.open(sub, 'r');
    try {
      const readErr = await directory.read(Buffer.alloc(1), 0, 1, 0).catch((e: NodeJS.ErrnoException) => e);
      expect(readErr).toMatchObject({ code: 'EISDIR', path: sub, syscall: 'read' });
      expect((readErr as Error).message).toBe(`EISDIR: illegal operation on a directory, read '${sub}'`);
    } finally {
      await directory.close();
    }
  });
});
