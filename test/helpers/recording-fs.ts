/**
 * A MemoryFileSystem that records the calls the WAL's fill makes: every write (path, position, length,
 * whether it is all zeros) and, per file, which bytes some read or write covered before it.
 */
import type { FileHandle, FileSystem } from '../../fs/file-system.js';
import { MemoryFileSystem } from '../../fs/index.js';

/** Byte ranges [from, to) of one file that some read or write covered, merged. */
class Touched {
  ranges: Array<[number, number]> = [];
  /** Some write of other bytes than zeros (a commit) was made to the file. */
  committed = false;

  add(from: number, to: number): void {
    if (to <= from) return;
    const next: Array<[number, number]> = [];
    let [a, b] = [from, to];
    for (const [x, y] of this.ranges) {
      if (y < a || x > b) next.push([x, y]);
      else [a, b] = [Math.min(a, x), Math.max(b, y)];
    }
    next.push([a, b]);
    next.sort((p, q) => p[0] - q[0]);
    this.ranges = next;
  }

  /** Bytes of [from, to) no range covers. */
  freshBytes(from: number, to: number): number {
    let covered = 0;
    for (const [x, y] of this.ranges) covered += Math.max(0, Math.min(to, y) - Math.max(from, x));
    return to - from - covered;
  }
}

export interface FreshWrite {
  path: string;
  position: number;
  lengthBytes: number;
  freshBytes: number;
  allZero: boolean;
  /** The file had a write of other bytes than zeros (a commit) before this one: a segment being written. */
  inCommittedFile: boolean;
}

function byteLength(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}

/** A MemoryFileSystem whose handles record, per file, the bytes read or written, and every write (freshBytes: those it landed on never read or written before). */
/** One call in the order made: a write (allZero: of zeros only), a writeBack, or a datasync (no range). */
export interface RecordedCall {
  op: 'write' | 'writeBack' | 'datasync';
  path: string;
  position: number;
  lengthBytes: number;
  allZero: boolean;
}

export function recordingFs(): { fs: FileSystem; mem: MemoryFileSystem; freshWrites: FreshWrite[]; writes: FreshWrite[]; calls: RecordedCall[] } {
  const mem = new MemoryFileSystem();
  const touched = new Map<string, Touched>();
  const freshWrites: FreshWrite[] = [];
  const writes: FreshWrite[] = [];
  const calls: RecordedCall[] = [];
  const of = (path: string): Touched => {
    let t = touched.get(path);
    if (t === undefined) touched.set(path, (t = new Touched()));
    return t;
  };
  const wrote = (path: string, buffers: readonly Uint8Array[], position: number): void => {
    const lengthBytes = byteLength(buffers);
    const t = of(path);
    const w = { path, position, lengthBytes, freshBytes: t.freshBytes(position, position + lengthBytes), allZero: buffers.every((b) => b.every((x) => x === 0)), inCommittedFile: t.committed };
    if (!w.allZero) t.committed = true;
    writes.push(w);
    calls.push({ op: 'write', path, position, lengthBytes, allZero: w.allZero });
    if (w.freshBytes > 0) freshWrites.push(w);
    t.add(position, position + lengthBytes);
  };
  const wrap = (inner: FileHandle): FileHandle =>
    new Proxy(inner, {
      get(target, key) {
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof value !== 'function') return value;
        if (key === 'writev' || key === 'writevSync' || key === 'commit') {
          return (buffers: readonly Uint8Array[], position: number, ...rest: unknown[]) => {
            wrote(target.path, buffers, position);
            return (value as (...args: unknown[]) => unknown).call(target, buffers, position, ...rest);
          };
        }
        if (key === 'writeBack') {
          return (offset: number, lengthBytes: number) => {
            calls.push({ op: 'writeBack', path: target.path, position: offset, lengthBytes, allZero: false });
            return target.writeBack?.(offset, lengthBytes);
          };
        }
        if (key === 'datasync') {
          return () => {
            calls.push({ op: 'datasync', path: target.path, position: 0, lengthBytes: 0, allZero: false });
            return target.datasync();
          };
        }
        if (key === 'read') {
          return (buffer: Uint8Array, offset: number, length: number, position: number) => {
            of(target.path).add(position, position + length);
            return target.read(buffer, offset, length, position);
          };
        }
        return (value as (...args: unknown[]) => unknown).bind(target);
      },
    });
  const fs = new Proxy(mem, {
    get(target, key) {
      if (key === 'open') {
        return async (path: string, flags: Parameters<FileSystem['open']>[1]) => {
          if (flags === 'w+') touched.delete(path); // created or truncated: nothing of it is cached
          return wrap(await target.open(path, flags));
        };
      }
      if (key === 'rename') {
        return async (from: string, to: string) => {
          await target.rename(from, to);
          touched.set(to, of(from));
          touched.delete(from);
        };
      }
      if (key === 'unlink') {
        return async (path: string) => {
          await target.unlink(path);
          touched.delete(path);
        };
      }
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { fs, mem, freshWrites, writes, calls };
}
