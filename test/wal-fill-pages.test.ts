/**
 * The zero-fill never makes a large write to bytes the page cache does not hold (wal/segment-preparer.ts,
 * fillStep): on Linux 6.x with ext4's large folios, a 1 MiB write to such bytes allocated 1 MiB folios
 * under the inode's lock, 2-16 ms per step here, and every commit's writev waited behind it. Each step
 * now extends the file with a small write at its end, reads the rest (pages of a hole), and only then
 * writes its zeros over it. The rule is checked on the calls the fill makes, through a file system that
 * records which bytes of each file were read or written before (renames carry them along).
 */
import { describe, expect, it } from 'vitest';
import type { FileHandle, FileSystem } from '../fs/file-system.js';
import { MemoryFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { turns } from './helpers/async.js';
import { FILL_COMMIT_BYTES_MAX, FILL_EXTEND_BYTES, PREALLOC_STEP_BYTES } from '../wal/segment-preparer.js';

const DIR = '/data/wal';
const KiB = 1024;
const MiB = 1024 * KiB;
/** The largest write the test lets land on bytes no earlier call read or wrote. */
const FRESH_WRITE_BYTES_MAX = 64 * KiB;

/** Byte ranges [from, to) of one file that some read or write covered, merged. */
class Touched {
  ranges: Array<[number, number]> = [];

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

interface FreshWrite {
  path: string;
  position: number;
  lengthBytes: number;
  freshBytes: number;
  allZero: boolean;
}

function byteLength(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}

/** A MemoryFileSystem whose handles record, per file, the bytes read or written, and every write (freshBytes: those it landed on never read or written before). */
function recordingFs(): { fs: FileSystem; freshWrites: FreshWrite[]; writes: FreshWrite[] } {
  const mem = new MemoryFileSystem();
  const touched = new Map<string, Touched>();
  const freshWrites: FreshWrite[] = [];
  const writes: FreshWrite[] = [];
  const of = (path: string): Touched => {
    let t = touched.get(path);
    if (t === undefined) touched.set(path, (t = new Touched()));
    return t;
  };
  const wrote = (path: string, buffers: readonly Uint8Array[], position: number): void => {
    const lengthBytes = byteLength(buffers);
    const t = of(path);
    const w = { path, position, lengthBytes, freshBytes: t.freshBytes(position, position + lengthBytes), allZero: buffers.every((b) => b.every((x) => x === 0)) };
    writes.push(w);
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
  return { fs, freshWrites, writes };
}

describe('zero-fill and the page cache', () => {
  it('every zero-fill step extends the file with one small write and writes its zeros only over bytes read first, across segments', async () => {
    const { fs, freshWrites } = recordingFs();
    const segmentSizeBytes = 4 * MiB;
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes });
    const payload = new Uint8Array(4 * KiB).fill(7);
    // ~10 MiB in batches of 64 records: the fill runs ahead step by step, and two rolls start segments prepared in the background.
    for (let batch = 0; batch < 40; batch++) {
      let lsn = 0;
      for (let i = 0; i < 64; i++) lsn = wal.append(payload);
      await wal.waitDurable(lsn);
    }
    const stats = wal.stats();
    await wal.close();
    expect(stats.segmentsCreated, 'rolls happened').toBeGreaterThanOrEqual(3);
    expect(stats.preallocStalls, 'every segment was prepared').toBe(0);

    const zeroFills = freshWrites.filter((w) => w.allZero);
    // A prepared segment's first step and the steps that extend the segment being written.
    expect(zeroFills.length, 'zero-fill steps were made').toBeGreaterThanOrEqual(segmentSizeBytes / PREALLOC_STEP_BYTES);
    for (const w of zeroFills) {
      expect(w.freshBytes, `zeros at ${w.path} [${w.position}, +${w.lengthBytes}) on bytes never read or written`).toBeLessThanOrEqual(FRESH_WRITE_BYTES_MAX);
      expect(w.lengthBytes, 'the write that extends a step is its last FILL_EXTEND_BYTES').toBeLessThanOrEqual(FILL_EXTEND_BYTES);
    }
  });

  it('commits of FILL_COMMIT_BYTES_MAX or more grow their file (no fill step while they come); steps of PREALLOC_STEP_BYTES start again once small commits follow', async () => {
    const { fs, writes } = recordingFs();
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 64 * MiB });
    const payload = new Uint8Array(4 * KiB - 24).fill(3); // 4 KiB on disk with the record header
    const commit = async (records: number): Promise<void> => {
      let lsn = 0;
      for (let i = 0; i < records; i++) lsn = wal.append(payload);
      await wal.waitDurable(lsn);
    };
    // A step is its extending write: FILL_EXTEND_BYTES of zeros on fresh bytes.
    const steps = (): number => writes.filter((w) => w.allZero && w.lengthBytes === FILL_EXTEND_BYTES && w.freshBytes > 0).length;
    const bigRecords = Math.ceil(FILL_COMMIT_BYTES_MAX / (4 * KiB)) * 4; // 4x the limit: 512 KiB commits
    await commit(bigRecords); // the first crosses the prepared file's first step
    await turns(20);
    const before = steps();
    for (let i = 0; i < 12; i++) await commit(bigRecords); // 6 MiB more, past every step made so far
    await turns(20);
    expect(steps(), 'no fill step while large commits come').toBe(before);
    const dataEnd = Math.max(...writes.filter((w) => !w.allZero).map((w) => w.position + w.lengthBytes));
    for (let i = 0; i < 64; i++) await commit(4); // 16 KiB commits
    await turns(20);
    const stepWrites = writes.filter((w) => w.allZero && w.lengthBytes === FILL_EXTEND_BYTES && w.freshBytes > 0).slice(before);
    expect(stepWrites.length, 'steps start again after small commits').toBeGreaterThan(0);
    // The large commits earned no longer lead: 1 MiB of small commits takes a few steps, not a string of them to a 16 MiB lead.
    expect(stepWrites.length, `${stepWrites.length} steps after 1 MiB of small commits`).toBeLessThanOrEqual(3);
    // Each new step ends a PREALLOC_STEP_BYTES step that begins at or past the data the large commits wrote.
    for (const w of stepWrites) expect(w.position + w.lengthBytes - PREALLOC_STEP_BYTES).toBeGreaterThanOrEqual(dataEnd);
    await wal.close();
  });
});
