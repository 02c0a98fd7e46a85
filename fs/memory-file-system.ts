/**
 * MemoryFileSystem: a file system in memory that can hand back "the disk after a power loss".
 *
 * It tracks two states of everything: what a reader sees now, and what is durable. File data becomes
 * durable at datasync/sync (all writes to that file before the call); a directory's entries become
 * durable at syncDir on that directory. crash() returns a new MemoryFileSystem holding only the durable
 * state, or, with `keepUnsynced: 'random'`, the durable state plus a seeded random part of the rest:
 * each unsynced write kept whole, dropped, or torn at sector granularity (sectors kept in any order),
 * and a random prefix of each directory's unsynced operations. Directories made by mkdir are durable at
 * once. Locks die with the "process": the crashed image has none.
 */
import { fsError, type FileHandle, type FileLock, type FileStat, type FileSystem, type OpenFlags, type SyncMethod } from './file-system.js';
import { once } from '../core/check.js';
import { seededRandom, type Random } from '../core/random.js';

type PendingOp = { kind: 'write'; position: number; bytes: Uint8Array } | { kind: 'truncate'; lengthBytes: number };

const PAGE_BYTES = 16 * 1024;

/** File bytes as sparse pages: absent pages read as zeros, so a preallocated 64 MiB file costs nothing. */
class PagedBytes {
  pages = new Map<number, Uint8Array>();
  sizeBytes = 0;

  write(position: number, bytes: Uint8Array): void {
    let at = position;
    let from = 0;
    while (from < bytes.byteLength) {
      const index = Math.floor(at / PAGE_BYTES);
      const inPage = at - index * PAGE_BYTES;
      const n = Math.min(PAGE_BYTES - inPage, bytes.byteLength - from);
      let page = this.pages.get(index);
      if (!page) {
        page = new Uint8Array(PAGE_BYTES);
        this.pages.set(index, page);
      }
      page.set(bytes.subarray(from, from + n), inPage);
      at += n;
      from += n;
    }
    if (at > this.sizeBytes) this.sizeBytes = at;
  }

  read(position: number, out: Uint8Array, outOffset: number, length: number): number {
    const n = Math.max(0, Math.min(length, this.sizeBytes - position));
    let done = 0;
    while (done < n) {
      const at = position + done;
      const index = Math.floor(at / PAGE_BYTES);
      const inPage = at - index * PAGE_BYTES;
      const m = Math.min(PAGE_BYTES - inPage, n - done);
      const page = this.pages.get(index);
      if (page) out.set(page.subarray(inPage, inPage + m), outOffset + done);
      else out.fill(0, outOffset + done, outOffset + done + m);
      done += m;
    }
    return n;
  }

  truncate(lengthBytes: number): void {
    if (lengthBytes < this.sizeBytes) {
      const lastIndex = Math.floor(lengthBytes / PAGE_BYTES);
      for (const index of [...this.pages.keys()]) if (index > lastIndex) this.pages.delete(index);
      this.pages.get(lastIndex)?.fill(0, lengthBytes - lastIndex * PAGE_BYTES);
    }
    this.sizeBytes = lengthBytes;
  }

  clone(): PagedBytes {
    const out = new PagedBytes();
    for (const [i, page] of this.pages) out.pages.set(i, page.slice());
    out.sizeBytes = this.sizeBytes;
    return out;
  }

  apply(op: PendingOp): void {
    if (op.kind === 'write') this.write(op.position, op.bytes);
    else this.truncate(op.lengthBytes);
  }
}

class Inode {
  data = new PagedBytes();
  durable = new PagedBytes();
  pending: PendingOp[] = [];

  get sizeBytes(): number {
    return this.data.sizeBytes;
  }

  write(position: number, bytes: Uint8Array): void {
    if (position >= this.data.sizeBytes && isAllZero(bytes)) {
      // Zeros written past the end (preallocation) are the same as extending the file: cheaper to model.
      this.truncate(position + bytes.byteLength);
      return;
    }
    this.data.write(position, bytes);
    this.pending.push({ kind: 'write', position, bytes: bytes.slice() });
  }

  truncate(lengthBytes: number): void {
    this.data.truncate(lengthBytes);
    this.pending.push({ kind: 'truncate', lengthBytes });
  }

  sync(): void {
    for (const op of this.pending) this.durable.apply(op);
    this.pending = [];
  }

  /** The content after a power loss. */
  afterCrash(random: Random | null, sectorBytes: number): Inode {
    const out = new Inode();
    out.durable = this.durable.clone();
    if (random) {
      for (const op of this.pending) {
        const choice = random.int(3);
        if (choice === 0) continue; // lost
        if (choice === 1 || op.kind === 'truncate') {
          out.durable.apply(op);
          continue;
        }
        // torn: a random subset of its sectors reach the disk
        for (let s = 0; s < op.bytes.byteLength; s += sectorBytes) {
          if (random.int(2) === 0) continue;
          out.durable.write(op.position + s, op.bytes.subarray(s, Math.min(s + sectorBytes, op.bytes.byteLength)));
        }
      }
    }
    out.data = out.durable.clone();
    return out;
  }

  readAll(): Uint8Array {
    const out = new Uint8Array(this.data.sizeBytes);
    this.data.read(0, out, 0, out.byteLength);
    return out;
  }
}

const ZEROS = new Uint8Array(64 * 1024);

function isAllZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.byteLength; i += ZEROS.byteLength) {
    const n = Math.min(ZEROS.byteLength, bytes.byteLength - i);
    if (Buffer.compare(bytes.subarray(i, i + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}

type DirOp = { kind: 'set'; name: string; inode: Inode } | { kind: 'delete'; name: string } | { kind: 'rename'; from: string; to: string; inode: Inode };

class Dir {
  entries = new Map<string, Inode>();
  durable = new Map<string, Inode>();
  ops: DirOp[] = [];

  set(name: string, inode: Inode): void {
    this.entries.set(name, inode);
    this.ops.push({ kind: 'set', name, inode });
  }

  delete(name: string): void {
    this.entries.delete(name);
    this.ops.push({ kind: 'delete', name });
  }

  /** A rename within this directory: one operation, atomic across a crash, as rename(2) is. */
  rename(from: string, to: string, inode: Inode): void {
    this.entries.delete(from);
    this.entries.set(to, inode);
    this.ops.push({ kind: 'rename', from, to, inode });
  }

  sync(): void {
    this.durable = new Map(this.entries);
    this.ops = [];
  }
}

function splitPath(path: string): { dir: string; name: string } {
  const norm = normalize(path);
  const i = norm.lastIndexOf('/');
  return { dir: i <= 0 ? '/' : norm.slice(0, i), name: norm.slice(i + 1) };
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return '/' + parts.join('/');
}

class MemoryFileHandle implements FileHandle {
  readonly path: string;
  readonly #inode: Inode;
  readonly #writable: boolean;
  #closed = false;

  constructor(path: string, inode: Inode, writable: boolean) {
    this.path = path;
    this.#inode = inode;
    this.#writable = writable;
  }

  #check(syscall: string, write = false): void {
    if (this.#closed) throw fsError('EBADF', syscall, this.path, 'bad file descriptor');
    if (write && !this.#writable) throw fsError('EBADF', syscall, this.path, 'not open for writing');
  }

  async writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    this.#check('writev', true);
    let at = position;
    for (const b of buffers) {
      this.#inode.write(at, b);
      at += b.byteLength;
    }
    return at - position;
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    this.#check('read');
    return this.#inode.data.read(position, buffer, offset, length);
  }

  async datasync(): Promise<void> {
    this.#check('fdatasync');
    this.#inode.sync();
  }

  async sync(): Promise<void> {
    this.#check('fsync');
    this.#inode.sync();
  }

  async truncate(lengthBytes: number): Promise<void> {
    this.#check('ftruncate', true);
    this.#inode.truncate(lengthBytes);
  }

  async stat(): Promise<FileStat> {
    this.#check('fstat');
    return { sizeBytes: this.#inode.sizeBytes, isFile: true, isDirectory: false };
  }

  async close(): Promise<void> {
    this.#check('close');
    this.#closed = true;
  }

  async commit(buffers: readonly Uint8Array[], position: number, _syncMethod: SyncMethod): Promise<void> {
    await this.writev(buffers, position);
    await this.datasync();
  }
}

export interface CrashOptions {
  /** 'none' (default): only synced state survives. 'random': plus a seeded random part of the rest. */
  keepUnsynced?: 'none' | 'random';
  seed?: number;
  /** Granularity of torn writes. Default 512. */
  sectorBytes?: number;
}

export class MemoryFileSystem implements FileSystem {
  #dirs = new Map<string, Dir>([['/', new Dir()]]);
  #locks = new Set<string>();

  #dir(path: string, syscall: string): Dir {
    const d = this.#dirs.get(normalize(path));
    if (!d) throw fsError('ENOENT', syscall, path, 'no such file or directory');
    return d;
  }

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const { dir, name } = splitPath(path);
    const d = this.#dir(dir, 'open');
    let inode = d.entries.get(name);
    if (this.#dirs.has(normalize(path))) throw fsError('EISDIR', 'open', path, 'illegal operation on a directory');
    if (flags === 'r' || flags === 'r+') {
      if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    } else if (flags === 'wx+') {
      if (inode) throw fsError('EEXIST', 'open', path, 'file already exists');
      inode = new Inode();
      d.set(name, inode);
    } else {
      if (inode) inode.truncate(0);
      else {
        inode = new Inode();
        d.set(name, inode);
      }
    }
    return new MemoryFileHandle(normalize(path), inode, flags !== 'r');
  }

  async rename(from: string, to: string): Promise<void> {
    if (this.#dirs.has(normalize(from))) return this.#renameDir(normalize(from), normalize(to));
    const a = splitPath(from);
    const b = splitPath(to);
    const da = this.#dir(a.dir, 'rename');
    const db = this.#dir(b.dir, 'rename');
    const inode = da.entries.get(a.name);
    if (!inode) throw fsError('ENOENT', 'rename', from, 'no such file or directory');
    if (da === db) da.rename(a.name, b.name, inode);
    else {
      da.delete(a.name);
      db.set(b.name, inode);
    }
  }

  /**
   * A directory rename, as rename(2): the target may be missing or an empty directory. Like mkdir here,
   * it is durable at once (the model does not track directories as entries of their parents).
   */
  #renameDir(from: string, to: string): void {
    if (from === '/' || to === from || to.startsWith(from + '/')) throw fsError('EINVAL', 'rename', from, 'invalid argument');
    const parent = splitPath(to);
    if (this.#dir(parent.dir, 'rename').entries.has(parent.name)) throw fsError('ENOTDIR', 'rename', to, 'not a directory');
    const target = this.#dirs.get(to);
    const inside = (p: string, root: string): boolean => p === root || p.startsWith(root + '/');
    if (target && (target.entries.size > 0 || [...this.#dirs.keys()].some((p) => p !== to && inside(p, to)))) throw fsError('ENOTEMPTY', 'rename', to, 'directory not empty');
    const moved = [...this.#dirs].filter(([p]) => inside(p, from));
    for (const [p] of moved) this.#dirs.delete(p);
    for (const [p, d] of moved) this.#dirs.set(to + p.slice(from.length), d);
  }

  async unlink(path: string): Promise<void> {
    const { dir, name } = splitPath(path);
    const d = this.#dir(dir, 'unlink');
    if (!d.entries.has(name)) throw fsError('ENOENT', 'unlink', path, 'no such file or directory');
    d.delete(name);
  }

  async readdir(path: string): Promise<string[]> {
    const norm = normalize(path);
    const d = this.#dir(norm, 'scandir');
    const names = [...d.entries.keys()];
    const prefix = norm === '/' ? '/' : norm + '/';
    for (const p of this.#dirs.keys()) {
      if (p !== norm && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) names.push(p.slice(prefix.length));
    }
    return names.sort();
  }

  async mkdir(path: string): Promise<void> {
    let at = '';
    for (const part of normalize(path).split('/').filter(Boolean)) {
      at += '/' + part;
      const parent = splitPath(at);
      if (this.#dirs.get(parent.dir)?.entries.has(parent.name)) throw fsError('EEXIST', 'mkdir', at, 'file already exists');
      if (!this.#dirs.has(at)) this.#dirs.set(at, new Dir());
    }
  }

  async syncDir(path: string): Promise<void> {
    this.#dir(path, 'fsync').sync();
  }

  async stat(path: string): Promise<FileStat> {
    const norm = normalize(path);
    if (this.#dirs.has(norm)) return { sizeBytes: 0, isFile: false, isDirectory: true };
    const { dir, name } = splitPath(norm);
    const inode = this.#dirs.get(dir)?.entries.get(name);
    if (!inode) throw fsError('ENOENT', 'stat', path, 'no such file or directory');
    return { sizeBytes: inode.sizeBytes, isFile: true, isDirectory: false };
  }

  async lock(path: string): Promise<FileLock> {
    const norm = normalize(path);
    if (this.#locks.has(norm)) throw fsError('EWOULDBLOCK', 'flock', path, 'resource temporarily unavailable');
    const { dir, name } = splitPath(norm);
    const d = this.#dir(dir, 'open');
    if (!d.entries.has(name)) d.set(name, new Inode());
    this.#locks.add(norm);
    return {
      release: once(async () => {
        this.#locks.delete(norm);
      }),
    };
  }

  /** The disk as a reboot after a power loss at this instant would find it. This instance is unchanged. */
  crash(options: CrashOptions = {}): MemoryFileSystem {
    const random = options.keepUnsynced === 'random' ? seededRandom(options.seed ?? 1) : null;
    const sectorBytes = options.sectorBytes ?? 512;
    const out = new MemoryFileSystem();
    const inodes = new Map<Inode, Inode>();
    const crashed = (inode: Inode): Inode => {
      let c = inodes.get(inode);
      if (!c) {
        c = inode.afterCrash(random, sectorBytes);
        inodes.set(inode, c);
      }
      return c;
    };
    for (const [path, dir] of this.#dirs) {
      const entries = new Map(dir.durable);
      if (random && dir.ops.length > 0) {
        const keep = random.int(dir.ops.length + 1);
        for (const op of dir.ops.slice(0, keep)) {
          if (op.kind === 'set') entries.set(op.name, op.inode);
          else if (op.kind === 'delete') entries.delete(op.name);
          else {
            entries.delete(op.from);
            entries.set(op.to, op.inode);
          }
        }
      }
      const nd = new Dir();
      for (const [name, inode] of entries) nd.entries.set(name, crashed(inode));
      nd.durable = new Map(nd.entries);
      out.#dirs.set(path, nd);
    }
    return out;
  }

  /** Test helper: the current bytes of a file (a copy). */
  readFileNow(path: string): Uint8Array {
    const { dir, name } = splitPath(path);
    const inode = this.#dirs.get(dir)?.entries.get(name);
    if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    return inode.readAll();
  }

  /** Test helper: overwrite bytes of a file in place, durably (simulates media corruption). */
  corrupt(path: string, position: number, bytes: Uint8Array): void {
    const { dir, name } = splitPath(path);
    const inode = this.#dirs.get(dir)?.entries.get(name);
    if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    inode.write(position, bytes);
    inode.sync();
  }

  /** Test helper: cut a file to a length, durably. */
  truncateNow(path: string, lengthBytes: number): void {
    const { dir, name } = splitPath(path);
    const inode = this.#dirs.get(dir)?.entries.get(name);
    if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    inode.truncate(lengthBytes);
    inode.sync();
  }
}
