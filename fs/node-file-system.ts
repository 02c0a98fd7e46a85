/**
 * NodeFileSystem: the real disk through node:fs. Every call is a thin wrapper; commit() goes to a
 * commit worker (io-worker.ts) so the log pays one thread hop per batch. writevSync, datasyncSync and
 * syncSync run on the calling thread and block it (the WAL's syncMode 'inline').
 */
import fs from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { once } from '../core/check.js';
import { loadFlock } from './flock.js';
import { fsError, type FileHandle, type FileLock, type FileStat, type FileSystem, type OpenFlags, type SyncMethod, type CommitWait } from './file-system.js';
import { IoWorkerPool } from './io-worker.js';
import { COMMIT_WORKERS_COUNT_MAX } from './limits.js';
import { dropCachedPages, pageCacheDrop, pageWriteBack, writeBackPages } from './page-cache.js';

export interface NodeFileSystemOptions {
  /** Node flags of the commit workers. Default none (the host process's flags are not passed on). */
  commitWorkerExecArgv?: readonly string[];
  /**
   * CommitWait 'auto' polls a busy log's commits while they take at most this many ms on average on
   * the commit worker (writev + sync). Default COMMIT_POLL_MS_MAX (1 ms): polling saves one thread
   * wake-up (~30-40 us here), little beside slower syncs. Raise it to poll on a slower disk anyway.
   */
  commitPollAverageMsMax?: number;
}

const fsOpen = promisify(fs.open);
const fsClose = promisify(fs.close);

/**
 * A descriptor's call as a promise whose error names the file: node:fs's errors on a descriptor name
 * none (`ENOSPC: no space left on device, write`), which leaves a full disk's error without its file.
 */
function onFile<T>(path: string, syscall: string, call: (done: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((err, value) => (err ? reject(namedError(err, syscall, path)) : resolve(value as T))));
}

class NodeFileHandle implements FileHandle {
  readonly path: string;
  readonly #fd: number;
  readonly #owner: NodeFileSystem;

  constructor(owner: NodeFileSystem, path: string, fd: number) {
    this.#owner = owner;
    this.path = path;
    this.#fd = fd;
  }

  async writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    let total = 0;
    let rest = buffers.slice();
    while (rest.length > 0) {
      const n = await onFile<number>(this.path, 'write', (done) => fs.writev(this.#fd, rest as NodeJS.ArrayBufferView[], position + total, done));
      total += n;
      rest = advance(rest, n);
    }
    return total;
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return await onFile<number>(this.path, 'read', (done) => fs.read(this.#fd, buffer, offset, length, position, done));
  }

  datasync(): Promise<void> {
    return onFile<void>(this.path, 'fdatasync', (done) => fs.fdatasync(this.#fd, done));
  }

  sync(): Promise<void> {
    return onFile<void>(this.path, 'fsync', (done) => fs.fsync(this.#fd, done));
  }

  truncate(lengthBytes: number): Promise<void> {
    return onFile<void>(this.path, 'ftruncate', (done) => fs.ftruncate(this.#fd, lengthBytes, done));
  }

  async stat(): Promise<FileStat> {
    const s = await onFile<fs.Stats>(this.path, 'fstat', (done) => fs.fstat(this.#fd, done));
    return { sizeBytes: s.size, isFile: s.isFile(), isDirectory: s.isDirectory() };
  }

  close(): Promise<void> {
    return onFile<void>(this.path, 'close', (done) => fs.close(this.#fd, done));
  }

  dropCache(offset: number, lengthBytes: number): Promise<void> {
    return dropCachedPages(this.#fd, offset, lengthBytes);
  }

  writeBack(offset: number, lengthBytes: number): Promise<void> {
    return writeBackPages(this.#fd, offset, lengthBytes);
  }

  commit(buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod, wait: CommitWait = 'sleep'): Promise<void> {
    return this.#owner.ioWorker().commit(this.#fd, this.path, buffers, position, syncMethod, wait);
  }

  writevSync(buffers: readonly Uint8Array[], position: number): number {
    let total = 0;
    let rest: readonly Uint8Array[] = buffers;
    try {
      while (rest.length > 0) {
        const n = fs.writevSync(this.#fd, rest as NodeJS.ArrayBufferView[], position + total);
        total += n;
        rest = advance(rest, n);
      }
    } catch (err) {
      throw namedError(err, 'writev', this.path);
    }
    return total;
  }

  datasyncSync(): void {
    try {
      fs.fdatasyncSync(this.#fd);
    } catch (err) {
      throw namedError(err, 'fdatasync', this.path);
    }
  }

  syncSync(): void {
    try {
      fs.fsyncSync(this.#fd);
    } catch (err) {
      throw namedError(err, 'fsync', this.path);
    }
  }
}

/** A synchronous call's error on a descriptor names no file: name it, as the commit worker's errors do. */
function namedError(err: unknown, syscall: string, path: string): NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException;
  const named = fsError(e?.code ?? 'EIO', e?.syscall ?? syscall, path, e?.message);
  named.cause = err;
  return named;
}

function advance(buffers: readonly Uint8Array[], written: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let n = written;
  for (const b of buffers) {
    if (n >= b.byteLength) {
      n -= b.byteLength;
      continue;
    }
    rest.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return rest;
}

export class NodeFileSystem implements FileSystem {
  readonly hostPaths = true;
  /** Its handles have writevSync, datasyncSync and syncSync (the WAL's syncMode 'inline'). */
  readonly syncCalls = true;
  #workers: IoWorkerPool | null = null;
  readonly #options: NodeFileSystemOptions;

  constructor(options: NodeFileSystemOptions = {}) {
    const bound = options.commitPollAverageMsMax;
    if (bound !== undefined && !(typeof bound === 'number' && bound >= 0)) {
      throw new RangeError(`commitPollAverageMsMax must be a number of ms >= 0 (Infinity: no bound), got ${String(bound)}`);
    }
    this.#options = options;
  }

  /** True where flushpoint's native addon loaded (fs/page-cache.ts): then dropCache drops pages. */
  get dropsCache(): boolean {
    return pageCacheDrop().available;
  }

  /** True where the native addon loaded with its writeBack call (sync_file_range). */
  get writesBack(): boolean {
    return pageWriteBack();
  }

  /** @internal The commit workers, started on first use (NodeFileHandle uses them; not part of the API). */
  ioWorker(): IoWorkerPool {
    this.#workers ??= new IoWorkerPool(COMMIT_WORKERS_COUNT_MAX, { execArgv: this.#options.commitWorkerExecArgv ?? [], pollAverageMsMax: this.#options.commitPollAverageMsMax });
    return this.#workers;
  }

  async warmUp(): Promise<void> {
    await this.ioWorker().warmUp();
  }

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const fd = await fsOpen(path, flags, 0o644);
    return new NodeFileHandle(this, path, fd);
  }

  rename(from: string, to: string): Promise<void> {
    return fs.promises.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return fs.promises.unlink(path);
  }

  readdir(path: string): Promise<string[]> {
    return fs.promises.readdir(path);
  }

  rmdir(path: string): Promise<void> {
    return fs.promises.rmdir(path);
  }

  /**
   * One level at a time, parents first where missing: Node 20's own recursive mkdir never settles (it
   * spins a core) on a path whose parent refuses to create, as under /proc.
   */
  async mkdir(path: string): Promise<void> {
    try {
      await fs.promises.mkdir(path);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && (await isDirectory(path))) return;
      const parent = dirname(path);
      if (code !== 'ENOENT' || parent === path) throw err;
      await this.mkdir(parent);
    }
    try {
      await fs.promises.mkdir(path);
    } catch (err) {
      if (!((err as NodeJS.ErrnoException).code === 'EEXIST' && (await isDirectory(path)))) throw err;
    }
  }

  async syncDir(path: string): Promise<void> {
    const fd = await fsOpen(path, 'r');
    try {
      await onFile<void>(path, 'fsync', (done) => fs.fsync(fd, done));
    } finally {
      await fsClose(fd);
    }
  }

  async stat(path: string): Promise<FileStat> {
    const s = await fs.promises.stat(path);
    return { sizeBytes: s.size, isFile: s.isFile(), isDirectory: s.isDirectory() };
  }

  async lock(path: string): Promise<FileLock> {
    const flock = loadFlock(); // fs-ext's addon, loaded here only: see flock.ts
    const fd = await fsOpen(path, 'a+', 0o644);
    try {
      await flock(fd, 'exnb');
    } catch (err) {
      await fsClose(fd).catch(() => {}); // the flock error is the one to report
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') e.code = 'EWOULDBLOCK';
      throw e;
    }
    // Closing the descriptor drops the flock.
    return { release: once(() => fsClose(fd)) };
  }

  /** Stops the commit worker (tests and short-lived tools; a process that exits needs no call). */
  async dispose(): Promise<void> {
    const w = this.#workers;
    this.#workers = null;
    if (w) await w.terminate();
  }
}

/** One shared instance: production code uses it unless an options.fs is given. */
export const nodeFileSystem = new NodeFileSystem();

/** Whether `path` is a directory now (false where it is missing or anything else). */
async function isDirectory(path: string): Promise<boolean> {
  return (await fs.promises.stat(path).catch(() => null))?.isDirectory() ?? false;
}
