/**
 * FaultFileSystem: wraps another FileSystem and injects faults driven by small rules:
 *
 *   fs.inject({ op: 'datasync', path: /\.wal$/, nth: 3, error: 'EIO' })      // the 3rd matching datasync fails
 *   fs.inject({ op: ['writev', 'datasync'], error: 'ENOSPC', times: Infinity }) // every one from now on fails
 *   fs.inject({ op: 'writev', tornBytes: 100 })                                 // the next writev writes 100 B, then EIO
 *   fs.inject({ op: 'datasync', hold: gate.promise })                           // the next datasync waits for the gate
 *   fs.inject({ op: 'rename', delayMs: 5 })
 *
 * It also counts every call by operation (`counts`), which is how tests count syncs. commit() runs as
 * writev then datasync/sync through this wrapper, so their rules and counts apply to it; so do the
 * synchronous calls (writevSync, datasyncSync, syncSync: counted as writev, datasync, sync), except that
 * a delay or hold rule cannot apply to a call that blocks its thread (it throws instead).
 */
import { fsError, type FileHandle, type FileLock, type FileStat, type FileSystem, type OpenFlags, type SyncMethod } from './file-system.js';

export type FsOp =
  | 'open'
  | 'writev'
  | 'read'
  | 'datasync'
  | 'sync'
  | 'truncate'
  | 'fstat'
  | 'close'
  | 'rename'
  | 'unlink'
  | 'rmdir'
  | 'readdir'
  | 'mkdir'
  | 'syncDir'
  | 'stat'
  | 'lock'
  | 'writeBack';

export interface FaultRule {
  op: FsOp | readonly FsOp[];
  /** Matches the path (substring or RegExp). Default: every path. */
  path?: string | RegExp;
  /** Fire at the nth matching call counted from when the rule was added (1-based). Default 1. */
  nth?: number;
  /** How many consecutive matching calls fire, from the nth on. Default 1; Infinity for sticky. */
  times?: number;
  /** Fail with this error code (EIO, ENOSPC, ...). */
  error?: string;
  /** For writev: write only the first tornBytes bytes, then fail with `error` (default EIO). */
  tornBytes?: number;
  /** Wait this long before the call runs. */
  delayMs?: number;
  /** Wait for this promise before the call runs (to hold an operation open). */
  hold?: Promise<unknown>;
}

interface ActiveRule {
  rule: FaultRule;
  ops: ReadonlySet<FsOp>;
  seen: number;
  fired: number;
}

export class FaultFileSystem implements FileSystem {
  readonly inner: FileSystem;
  readonly counts: Record<FsOp, number> = {
    open: 0, writev: 0, read: 0, datasync: 0, sync: 0, truncate: 0, fstat: 0, close: 0,
    rename: 0, unlink: 0, rmdir: 0, readdir: 0, mkdir: 0, syncDir: 0, stat: 0, lock: 0, writeBack: 0,
  };
  #rules: ActiveRule[] = [];

  constructor(inner: FileSystem) {
    this.inner = inner;
  }

  inject(rule: FaultRule): void {
    const ops = new Set<FsOp>(typeof rule.op === 'string' ? [rule.op] : rule.op);
    this.#rules.push({ rule, ops, seen: 0, fired: 0 });
  }

  /** Removes every rule (faults "clear"). Counts are kept. */
  clearFaults(): void {
    this.#rules = [];
  }

  resetCounts(): void {
    for (const k of Object.keys(this.counts) as FsOp[]) this.counts[k] = 0;
  }

  /** Counts one call and returns the rules that fire for it, in the order they were added. */
  #firing(op: FsOp, path: string): FaultRule[] {
    this.counts[op]++;
    const firing: FaultRule[] = [];
    for (const active of this.#rules) {
      const { rule } = active;
      if (!active.ops.has(op)) continue;
      if (rule.path !== undefined && !(typeof rule.path === 'string' ? path.includes(rule.path) : rule.path.test(path))) continue;
      active.seen++;
      const nth = rule.nth ?? 1;
      const times = rule.times ?? 1;
      if (active.seen < nth || active.fired >= times) continue;
      active.fired++;
      firing.push(rule);
    }
    return firing;
  }

  /** Runs the matching rules for one call; returns a torn-write rule if one fires. */
  async before(op: FsOp, path: string): Promise<FaultRule | null> {
    let torn: FaultRule | null = null;
    for (const rule of this.#firing(op, path)) {
      if (rule.delayMs !== undefined) await new Promise((r) => setTimeout(r, rule.delayMs));
      if (rule.hold !== undefined) await rule.hold;
      if (rule.tornBytes !== undefined && op === 'writev') torn = rule;
      else if (rule.error !== undefined) throw fsError(rule.error, op, path, 'injected fault');
    }
    return torn;
  }

  /**
   * As before(), for a synchronous call (writevSync, datasyncSync, syncSync): errors and torn writes
   * apply; a delay or hold cannot (the call blocks its thread), so a rule asking for one throws.
   */
  beforeSync(op: FsOp, path: string): FaultRule | null {
    let torn: FaultRule | null = null;
    for (const rule of this.#firing(op, path)) {
      if (rule.delayMs !== undefined || rule.hold !== undefined) throw new Error(`FaultFileSystem: a delay or hold rule cannot apply to a synchronous ${op} (${path})`);
      if (rule.tornBytes !== undefined && op === 'writev') torn = rule;
      else if (rule.error !== undefined) throw fsError(rule.error, op, path, 'injected fault');
    }
    return torn;
  }

  /** Drops cache exactly when the wrapped file system does (its dropCache calls pass through, without faults). */
  get dropsCache(): boolean {
    return this.inner.dropsCache === true;
  }

  /** Writes back exactly when the wrapped file system does (its writeBack calls count as 'writeBack' and take its rules). */
  get writesBack(): boolean {
    return this.inner.writesBack === true;
  }

  /** Synchronous calls exactly when the wrapped file system has them. */
  get syncCalls(): boolean {
    return this.inner.syncCalls === true;
  }

  async warmUp(): Promise<void> {
    await this.inner.warmUp?.();
  }

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    await this.before('open', path);
    return new FaultFileHandle(this, await this.inner.open(path, flags));
  }

  async rename(from: string, to: string): Promise<void> {
    await this.before('rename', from);
    return this.inner.rename(from, to);
  }

  async unlink(path: string): Promise<void> {
    await this.before('unlink', path);
    return this.inner.unlink(path);
  }

  async rmdir(path: string): Promise<void> {
    await this.before('rmdir', path);
    if (this.inner.rmdir === undefined) throw fsError('ENOSYS', 'rmdir', path, 'the wrapped file system cannot remove a directory');
    return this.inner.rmdir(path);
  }

  async readdir(path: string): Promise<string[]> {
    await this.before('readdir', path);
    return this.inner.readdir(path);
  }

  async mkdir(path: string): Promise<void> {
    await this.before('mkdir', path);
    return this.inner.mkdir(path);
  }

  async syncDir(path: string): Promise<void> {
    await this.before('syncDir', path);
    return this.inner.syncDir(path);
  }

  async stat(path: string): Promise<FileStat> {
    await this.before('stat', path);
    return this.inner.stat(path);
  }

  async lock(path: string): Promise<FileLock> {
    await this.before('lock', path);
    return this.inner.lock(path);
  }
}

/** The first tornBytes bytes of buffers: what a torn write leaves behind. */
function tornPart(buffers: readonly Uint8Array[], torn: FaultRule): Uint8Array[] {
  let left = torn.tornBytes ?? 0;
  const part: Uint8Array[] = [];
  for (const b of buffers) {
    if (left <= 0) break;
    part.push(b.subarray(0, Math.min(left, b.byteLength)));
    left -= b.byteLength;
  }
  return part;
}

class FaultFileHandle implements FileHandle {
  readonly #owner: FaultFileSystem;
  readonly #inner: FileHandle;

  constructor(owner: FaultFileSystem, inner: FileHandle) {
    this.#owner = owner;
    this.#inner = inner;
  }

  get path(): string {
    return this.#inner.path;
  }

  async writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    const torn = await this.#owner.before('writev', this.path);
    if (torn) {
      const part = tornPart(buffers, torn);
      if (part.length > 0) await this.#inner.writev(part, position);
      throw fsError(torn.error ?? 'EIO', 'writev', this.path, 'injected torn write');
    }
    return this.#inner.writev(buffers, position);
  }

  writevSync(buffers: readonly Uint8Array[], position: number): number {
    const inner = this.#syncInner('writevSync');
    const torn = this.#owner.beforeSync('writev', this.path);
    if (torn) {
      const part = tornPart(buffers, torn);
      if (part.length > 0) inner.writevSync(part, position);
      throw fsError(torn.error ?? 'EIO', 'writev', this.path, 'injected torn write');
    }
    return inner.writevSync(buffers, position);
  }

  datasyncSync(): void {
    const inner = this.#syncInner('datasyncSync');
    this.#owner.beforeSync('datasync', this.path);
    inner.datasyncSync();
  }

  syncSync(): void {
    const inner = this.#syncInner('syncSync');
    this.#owner.beforeSync('sync', this.path);
    inner.syncSync();
  }

  #syncInner(call: string): Required<Pick<FileHandle, 'writevSync' | 'datasyncSync' | 'syncSync'>> {
    const inner = this.#inner;
    if (inner.writevSync === undefined || inner.datasyncSync === undefined || inner.syncSync === undefined) {
      throw new TypeError(`FaultFileSystem: the wrapped file system has no synchronous calls (${call} on ${this.path})`);
    }
    return inner as Required<Pick<FileHandle, 'writevSync' | 'datasyncSync' | 'syncSync'>>;
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    await this.#owner.before('read', this.path);
    return this.#inner.read(buffer, offset, length, position);
  }

  async datasync(): Promise<void> {
    await this.#owner.before('datasync', this.path);
    return this.#inner.datasync();
  }

  async sync(): Promise<void> {
    await this.#owner.before('sync', this.path);
    return this.#inner.sync();
  }

  async truncate(lengthBytes: number): Promise<void> {
    await this.#owner.before('truncate', this.path);
    return this.#inner.truncate(lengthBytes);
  }

  async stat(): Promise<FileStat> {
    await this.#owner.before('fstat', this.path);
    return this.#inner.stat();
  }

  /** An injected close error still closes the inner handle (as close(2) frees the descriptor even when it fails). */
  async close(): Promise<void> {
    try {
      await this.#owner.before('close', this.path);
    } catch (err) {
      await this.#inner.close();
      throw err;
    }
    return this.#inner.close();
  }

  /** A hint, passed on as it is: no fault is injected into it (a caller ignores its failure anyway). */
  async dropCache(offset: number, lengthBytes: number): Promise<void> {
    await this.#inner.dropCache?.(offset, lengthBytes);
  }

  async writeBack(offset: number, lengthBytes: number): Promise<void> {
    await this.#owner.before('writeBack', this.path);
    await this.#inner.writeBack?.(offset, lengthBytes);
  }

  async commit(buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod): Promise<void> {
    await this.writev(buffers, position);
    if (syncMethod === 'fsync') await this.sync();
    else await this.datasync();
  }
}
