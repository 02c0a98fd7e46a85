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
import { seededRandom, type Random } from '../random.js';

type PendingOp = { kind: 'write'; position: number; bytes: Uint8Array } | { kind: 'truncate'; lengthBytes: number };

class Inode {
  data: Uint8Array = new Uint8Array(0);
  sizeBytes = 0;
  durable: Uint8Array = new Uint8Array(0);
  durableSizeBytes = 0;
  pending: PendingOp[] = [];

  write(position: number, bytes: Uint8Array): void {
    const end = position + bytes.byteLength;
    this.data = ensureCapacity(this.data, end);
    this.data.set(bytes, position);
    if (end > this.sizeBytes) this.sizeBytes = end;
    this.pending.push({ kind: 'write', position, bytes: bytes.slice() });
  }

  truncate(lengthBytes: number): void {
    this.data = ensureCapacity(this.data, lengthBytes);
    if (lengthBytes < this.sizeBytes) this.data.fill(0, lengthBytes, this.sizeBytes);
    this.sizeBytes = lengthBytes;
    this.pending.push({ kind: 'truncate', lengthBytes });
  }

  sync(): void {
    for (const op of this.pending) this.#applyDurable(op);
    this.pending = [];
  }

  #applyDurable(op: PendingOp): void {
    if (op.kind === 'write') {
      const end = op.position + op.bytes.byteLength;
      this.durable = ensureCapacity(this.durable, end);
      this.durable.set(op.bytes, op.position);
      if (end > this.durableSizeBytes) this.durableSizeBytes = end;
    } else {
      this.durable = ensureCapacity(this.durable, op.lengthBytes);
      if (op.lengthBytes < this.durableSizeBytes) this.durable.fill(0, op.lengthBytes, this.durableSizeBytes);
      this.durableSizeBytes = op.lengthBytes;
    }
  }

  /** The content after a power loss. */
  afterCrash(random: Random | null, sectorBytes: number): Inode {
    const out = new Inode();
    out.durable = this.durable.slice(0, this.durableSizeBytes);
    out.durableSizeBytes = this.durableSizeBytes;
    if (random) {
      for (const op of this.pending) {
        const choice = random.int(3);
        if (choice === 0) continue; // lost
        if (choice === 1 || op.kind === 'truncate') {
          out.#applyDurable(op);
          continue;
        }
        // torn: a random subset of its sectors reach the disk
        for (let s = 0; s < op.bytes.byteLength; s += sectorBytes) {
          if (random.int(2) === 0) continue;
          out.#applyDurable({ kind: 'write', position: op.position + s, bytes: op.bytes.subarray(s, Math.min(s + sectorBytes, op.bytes.byteLength)) });
        }
      }
    }
    out.data = out.durable.slice(0, out.durableSizeBytes);
    out.sizeBytes = out.durableSizeBytes;
    return out;
  }
}

function ensureCapacity(buf: Uint8Array, need: number): Uint8Array {
  if (buf.byteLength >= need) return buf;
  const grown = new Uint8Array(Math.max(need, buf.byteLength * 2, 4096));
  grown.set(buf);
  return grown;
}

type DirOp = { kind: 'set'; name: string; inode: Inode } | { kind: 'delete'; name: string };

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
    const n = Math.max(0, Math.min(length, this.#inode.sizeBytes - position));
    buffer.set(this.#inode.data.subarray(position, position + n), offset);
    return n;
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
    const a = splitPath(from);
    const b = splitPath(to);
    const da = this.#dir(a.dir, 'rename');
    const db = this.#dir(b.dir, 'rename');
    const inode = da.entries.get(a.name);
    if (!inode) throw fsError('ENOENT', 'rename', from, 'no such file or directory');
    da.delete(a.name);
    db.set(b.name, inode);
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
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.#locks.delete(norm);
      },
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
          else entries.delete(op.name);
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
    return inode.data.slice(0, inode.sizeBytes);
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
