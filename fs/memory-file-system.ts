/**
 * MemoryFileSystem: a file system in memory that can hand back "the disk after a power loss".
 *
 * It tracks two states of everything: what a reader sees now, and what is durable. File data becomes
 * durable at datasync/sync (all writes to that file before the call); a directory's entries (files
 * and subdirectories alike) become durable at syncDir on that directory. crash() returns a new
 * MemoryFileSystem holding only the durable state, or, with `keepUnsynced: 'random'`, the durable state
 * plus a seeded random part of the rest: each unsynced write kept whole, dropped, or torn at sector
 * granularity (sectors kept in any order), and of each directory's unsynced operations (create, unlink,
 * rename, mkdir) either a random prefix or a random subset (not only a prefix), applied in order. A directory made by mkdir is
 * lost in a crash unless its parent was synced after it (or the random subset kept it); a lost
 * directory takes everything in it along, synced files included. Locks die with the "process": the
 * crashed image has none.
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

  /**
   * Whether a write not yet synced touches [offset, offset + lengthBytes) (0: to the end). A pending
   * size change is not page data: an ftruncate (or zeros written past the end, which this model keeps
   * as one) has nothing a page-cache drop could write back early.
   */
  pendingIn(offset: number, lengthBytes: number): boolean {
    const end = lengthBytes === 0 ? Number.POSITIVE_INFINITY : offset + lengthBytes;
    return this.pending.some((op) => op.kind === 'write' && op.position < end && op.position + op.bytes.byteLength > offset);
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

type DirOp =
  | { kind: 'set'; name: string; inode: Inode }
  | { kind: 'delete'; name: string }
  | { kind: 'rename'; from: string; to: string; inode: Inode }
  | { kind: 'mkdir'; name: string; dir: Dir }
  | { kind: 'rmdir'; name: string }
  | { kind: 'renameDir'; from: string; to: string; dir: Dir };

/** A directory's entries: files by name, and subdirectories by name. */
interface DirState {
  files: Map<string, Inode>;
  dirs: Map<string, Dir>;
}

function applyDirOp(state: DirState, op: DirOp): void {
  switch (op.kind) {
    case 'set':
      state.files.set(op.name, op.inode);
      break;
    case 'delete':
      state.files.delete(op.name);
      break;
    case 'rename':
      state.files.delete(op.from);
      state.files.set(op.to, op.inode);
      break;
    case 'mkdir':
      state.dirs.set(op.name, op.dir);
      break;
    case 'rmdir':
      state.dirs.delete(op.name);
      break;
    case 'renameDir':
      state.dirs.delete(op.from);
      state.dirs.set(op.to, op.dir);
      break;
  }
}

class Dir {
  entries = new Map<string, Inode>();
  subdirs = new Map<string, Dir>();
  durable: DirState = { files: new Map(), dirs: new Map() };
  ops: DirOp[] = [];

  /** Applies an operation now; it becomes durable at the next sync() (a rename is one operation, atomic across a crash, as rename(2) is). */
  op(op: DirOp): void {
    applyDirOp({ files: this.entries, dirs: this.subdirs }, op);
    this.ops.push(op);
  }

  sync(): void {
    this.durable = { files: new Map(this.entries), dirs: new Map(this.subdirs) };
    this.ops = [];
  }

  /** What a crash leaves of its entries: the durable ones, plus a random part of the rest if asked. */
  afterCrash(random: Random | null, report: CrashReport): DirState {
    const state: DirState = { files: new Map(this.durable.files), dirs: new Map(this.durable.dirs) };
    report.dirOpsUnsynced += this.ops.length;
    if (random && this.ops.length > 0) {
      // Half the time a prefix (a file system that journals metadata in order, as ext4 does), half the
      // time any subset, applied in order (one that does not promise an order).
      let kept: boolean[];
      if (random.int(2) === 0) {
        const keepCount = random.int(this.ops.length + 1);
        kept = this.ops.map((_, i) => i < keepCount);
      } else kept = this.ops.map(() => random.int(2) === 1);
      let lostBefore = false;
      let nonPrefix = false;
      for (const [i, op] of this.ops.entries()) {
        if (!kept[i]) {
          lostBefore = true;
          continue;
        }
        if (lostBefore) nonPrefix = true;
        applyDirOp(state, op);
        report.dirOpsKept++;
      }
      if (nonPrefix) report.dirsWithNonPrefixKept++;
    }
    return state;
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
  readonly #open: Set<MemoryFileHandle>;
  #closed = false;

  readonly #drops: CacheDrop[];

  constructor(path: string, inode: Inode, writable: boolean, open: Set<MemoryFileHandle>, drops: CacheDrop[]) {
    this.path = path;
    this.#inode = inode;
    this.#writable = writable;
    this.#open = open;
    this.#drops = drops;
    open.add(this);
  }

  #check(syscall: string, write = false): void {
    if (this.#closed) throw fsError('EBADF', syscall, this.path, 'bad file descriptor');
    if (write && !this.#writable) throw fsError('EBADF', syscall, this.path, 'not open for writing');
  }

  async writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    return this.writevSync(buffers, position);
  }

  writevSync(buffers: readonly Uint8Array[], position: number): number {
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
    this.datasyncSync();
  }

  datasyncSync(): void {
    this.#check('fdatasync');
    this.#inode.sync();
  }

  async sync(): Promise<void> {
    this.syncSync();
  }

  syncSync(): void {
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
    this.#open.delete(this);
  }

  async commit(buffers: readonly Uint8Array[], position: number, _syncMethod: SyncMethod): Promise<void> {
    await this.writev(buffers, position);
    await this.datasync();
  }

  /** Nothing is cached here, and written bytes stay unsynced until a sync: nothing to do (sync_file_range makes nothing durable). */
  async writeBack(_offset: number, _lengthBytes: number): Promise<void> {
    this.#check('sync_file_range');
  }

  /** Nothing is cached here: the call is recorded (MemoryFileSystem.cacheDrops), with whether unsynced bytes were in the range. */
  async dropCache(offset: number, lengthBytes: number): Promise<void> {
    this.#check('fadvise');
    this.#drops.push({ path: this.path, offset, lengthBytes, unsynced: this.#inode.pendingIn(offset, lengthBytes) });
  }
}

/** One dropCache call on a MemoryFileSystem handle. */
export interface CacheDrop {
  path: string;
  offset: number;
  lengthBytes: number;
  /** The range held written bytes not yet synced when the call came (a caller should never drop those). */
  unsynced: boolean;
}

export interface CrashOptions {
  /** 'none' (default): only synced state survives. 'random': plus a seeded random part of the rest. */
  keepUnsynced?: 'none' | 'random';
  seed?: number;
  /** Granularity of torn writes. Default 512. */
  sectorBytes?: number;
}

/** What a crash() did to directories (for tests that must show they exercised the model). */
export interface CrashReport {
  /** Unsynced directory operations at the crash (in directories that survived the walk). */
  dirOpsUnsynced: number;
  /** Of those, the ones the image kept. */
  dirOpsKept: number;
  /** Directories where the image kept an operation after losing an earlier one (not a prefix). */
  dirsWithNonPrefixKept: number;
}

export class MemoryFileSystem implements FileSystem {
  /** Its handles have writevSync, datasyncSync and syncSync (the WAL's syncMode 'inline'). */
  readonly syncCalls = true;
  /** Set on an image returned by crash(): what it did to directories. */
  crashReport: CrashReport | null = null;
  #root = new Dir();
  readonly #openHandles = new Set<MemoryFileHandle>();
  /** Whether callers should drop cache (FileSystem.dropsCache): off unless a test turns it on; the calls are recorded either way. */
  dropsCache = false;
  /** Whether callers should write pages back (FileSystem.writesBack): off unless a test turns it on. writeBack changes nothing here. */
  writesBack = false;
  /** Every dropCache call on its handles, in order (tests check what a caller dropped, and when). */
  readonly cacheDrops: CacheDrop[] = [];

  /** Paths of the handles opened and not closed yet, one entry per handle (tests find leaks with it). */
  get openHandlePaths(): string[] {
    return [...this.#openHandles].map((h) => h.path).sort();
  }
  #locks = new Set<string>();

  /** The directory at `path`, or undefined. */
  #find(path: string): Dir | undefined {
    let d: Dir | undefined = this.#root;
    for (const part of normalize(path).split('/')) {
      if (part === '' || d === undefined) continue;
      d = d.subdirs.get(part);
    }
    return d;
  }

  #dir(path: string, syscall: string): Dir {
    const d = this.#find(path);
    if (!d) throw fsError('ENOENT', syscall, path, 'no such file or directory');
    return d;
  }

  #inode(path: string): Inode | undefined {
    const { dir, name } = splitPath(path);
    return this.#find(dir)?.entries.get(name);
  }

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const { dir, name } = splitPath(path);
    const d = this.#dir(dir, 'open');
    if (d.subdirs.has(name) || normalize(path) === '/') throw fsError('EISDIR', 'open', path, 'illegal operation on a directory');
    let inode = d.entries.get(name);
    if (flags === 'r' || flags === 'r+') {
      if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    } else if (flags === 'wx+') {
      if (inode) throw fsError('EEXIST', 'open', path, 'file already exists');
      inode = new Inode();
      d.op({ kind: 'set', name, inode: inode });
    } else {
      if (inode) inode.truncate(0);
      else {
        inode = new Inode();
        d.op({ kind: 'set', name, inode: inode });
      }
    }
    return new MemoryFileHandle(normalize(path), inode, flags !== 'r', this.#openHandles, this.cacheDrops);
  }

  async rename(from: string, to: string): Promise<void> {
    const a = splitPath(from);
    const b = splitPath(to);
    const da = this.#dir(a.dir, 'rename');
    const db = this.#dir(b.dir, 'rename');
    const moved = da.subdirs.get(a.name);
    if (moved) {
      // A directory: onto a missing name or an empty directory (rename(2) refuses the rest).
      if (db.entries.has(b.name)) throw fsError('ENOTDIR', 'rename', to, 'not a directory');
      const target = db.subdirs.get(b.name);
      if (target && (target.entries.size > 0 || target.subdirs.size > 0)) throw fsError('ENOTEMPTY', 'rename', to, 'directory not empty');
      if (normalize(to).startsWith(normalize(from) + '/')) throw fsError('EINVAL', 'rename', to, 'invalid argument');
      if (da === db) da.op({ kind: 'renameDir', from: a.name, to: b.name, dir: moved });
      else {
        da.op({ kind: 'rmdir', name: a.name });
        db.op({ kind: 'mkdir', name: b.name, dir: moved });
      }
      return;
    }
    const inode = da.entries.get(a.name);
    if (!inode) throw fsError('ENOENT', 'rename', from, 'no such file or directory');
    if (db.subdirs.has(b.name)) throw fsError('EISDIR', 'rename', to, 'illegal operation on a directory');
    if (da === db) da.op({ kind: 'rename', from: a.name, to: b.name, inode });
    else {
      da.op({ kind: 'delete', name: a.name });
      db.op({ kind: 'set', name: b.name, inode });
    }
  }

  async unlink(path: string): Promise<void> {
    const { dir, name } = splitPath(path);
    const d = this.#dir(dir, 'unlink');
    if (d.subdirs.has(name)) throw fsError('EISDIR', 'unlink', path, 'illegal operation on a directory');
    if (!d.entries.has(name)) throw fsError('ENOENT', 'unlink', path, 'no such file or directory');
    d.op({ kind: 'delete', name });
  }

  async rmdir(path: string): Promise<void> {
    const { dir, name } = splitPath(path);
    const d = this.#dir(dir, 'rmdir');
    const sub = d.subdirs.get(name);
    if (sub === undefined) throw d.entries.has(name) ? fsError('ENOTDIR', 'rmdir', path, 'not a directory') : fsError('ENOENT', 'rmdir', path, 'no such file or directory');
    if (sub.entries.size > 0 || sub.subdirs.size > 0) throw fsError('ENOTEMPTY', 'rmdir', path, 'directory not empty');
    d.op({ kind: 'rmdir', name });
  }

  async readdir(path: string): Promise<string[]> {
    const { dir, name } = splitPath(path);
    if (normalize(path) !== '/' && this.#find(dir)?.entries.has(name)) throw fsError('ENOTDIR', 'scandir', path, 'not a directory');
    const d = this.#dir(path, 'scandir');
    return [...d.entries.keys(), ...d.subdirs.keys()].sort();
  }

  async mkdir(path: string): Promise<void> {
    let d = this.#root;
    let at = '';
    const parts = normalize(path).split('/').filter(Boolean);
    for (const [i, part] of parts.entries()) {
      at += '/' + part;
      if (d.entries.has(part)) {
        if (i === parts.length - 1) throw fsError('EEXIST', 'mkdir', path, 'file already exists');
        throw fsError('ENOTDIR', 'mkdir', path, 'not a directory');
      }
      let next = d.subdirs.get(part);
      if (!next) {
        next = new Dir();
        d.op({ kind: 'mkdir', name: part, dir: next });
      }
      d = next;
    }
  }

  async syncDir(path: string): Promise<void> {
    const { dir, name } = splitPath(path);
    if (normalize(path) !== '/' && this.#find(dir)?.entries.has(name)) {
      // fsync on a file opened read-only: makes its data durable (Node allows it too).
      this.#find(dir)?.entries.get(name)?.sync();
      return;
    }
    this.#dir(path, 'fsync').sync();
  }

  async stat(path: string): Promise<FileStat> {
    if (this.#find(path)) return { sizeBytes: 0, isFile: false, isDirectory: true };
    const inode = this.#inode(path);
    if (!inode) throw fsError('ENOENT', 'stat', path, 'no such file or directory');
    return { sizeBytes: inode.sizeBytes, isFile: true, isDirectory: false };
  }

  async lock(path: string): Promise<FileLock> {
    const norm = normalize(path);
    if (this.#locks.has(norm)) throw fsError('EWOULDBLOCK', 'flock', path, 'resource temporarily unavailable');
    const { dir, name } = splitPath(norm);
    const d = this.#dir(dir, 'open');
    if (d.subdirs.has(name)) throw fsError('EISDIR', 'open', path, 'illegal operation on a directory');
    if (!d.entries.has(name)) d.op({ kind: 'set', name, inode: new Inode() });
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
    // Walk the tree as the disk holds it after the crash: a directory exists only where its parent's
    // crashed entries name it. Each directory is visited once (a kept rename cannot make a cycle).
    const seen = new Set<Dir>();
    const report: CrashReport = { dirOpsUnsynced: 0, dirOpsKept: 0, dirsWithNonPrefixKept: 0 };
    const copy = (from: Dir, to: Dir): void => {
      seen.add(from);
      const state = from.afterCrash(random, report);
      for (const [name, inode] of state.files) to.entries.set(name, crashed(inode));
      for (const [name, sub] of state.dirs) {
        if (seen.has(sub)) continue; // kept under two names by an unsynced rename: the first one wins
        const nd = new Dir();
        to.subdirs.set(name, nd);
        copy(sub, nd);
      }
      to.sync();
    };
    copy(this.#root, out.#root);
    out.crashReport = report;
    return out;
  }

  /** Test helper: the current bytes of a file (a copy). */
  readFileNow(path: string): Uint8Array {
    const inode = this.#inode(path);
    if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    return inode.readAll();
  }

  /** Test helper: overwrite bytes of a file in place, durably (simulates media corruption). */
  corrupt(path: string, position: number, bytes: Uint8Array): void {
    const inode = this.#inode(path);
    if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    inode.write(position, bytes);
    inode.sync();
  }

  /** Test helper: cut a file to a length, durably. */
  truncateNow(path: string, lengthBytes: number): void {
    const inode = this.#inode(path);
    if (!inode) throw fsError('ENOENT', 'open', path, 'no such file or directory');
    inode.truncate(lengthBytes);
    inode.sync();
  }
}
