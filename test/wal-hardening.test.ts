/**
 * Regression tests for the WAL items of issue 8 (3, 4, 6, 7, 8, 9, and 10's truncation) and the WAL's
 * part of issue 9 (logging, appendDurable). Each test names the defect it pins; each failed on the code
 * before its fix.
 */
import { describe, expect, it } from 'vitest';
import { Wal, type WalOptions } from '../wal/index.js';
import { FlushpointError, isFlushpointError } from '../core/errors.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import type { FileHandle, FileLock, FileStat, FileSystem, OpenFlags, SyncMethod } from '../fs/file-system.js';
import { PAYLOAD_BYTES_MAX, RECORD_BYTES_MAX, SEGMENT_SIZE_BYTES_MAX } from '../wal/limits.js';
import { payloadBytesMax } from '../wal/options.js';
import { recordBytes } from '../record/format.js';
import { deferred, track, turns, until } from './helpers/async.js';
import { payloadFor, readAll } from './helpers/wal-fixtures.js';
import { replayHint, seedList } from './helpers/seeds.js';
import { tempPathPattern } from '../fs/durable-publish.js';

/** A FileSystem layer that knows which handles are open right now (a descriptor leak shows as one left). */
class CountingFileSystem implements FileSystem {
  readonly live = new Set<FileHandle>();
  constructor(readonly inner: FileSystem) {}
  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const handle = new CountedHandle(this, await this.inner.open(path, flags));
    this.live.add(handle);
    return handle;
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  unlink(path: string): Promise<void> {
    return this.inner.unlink(path);
  }
  readdir(path: string): Promise<string[]> {
    return this.inner.readdir(path);
  }
  mkdir(path: string): Promise<void> {
    return this.inner.mkdir(path);
  }
  syncDir(path: string): Promise<void> {
    return this.inner.syncDir(path);
  }
  stat(path: string): Promise<FileStat> {
    return this.inner.stat(path);
  }
  lock(path: string): Promise<FileLock> {
    return this.inner.lock(path);
  }
  /** Paths of the handles still open. */
  get openPaths(): string[] {
    return [...this.live].map((h) => h.path);
  }
}

class CountedHandle implements FileHandle {
  constructor(
    readonly owner: CountingFileSystem,
    readonly inner: FileHandle,
  ) {}
  get path(): string {
    return this.inner.path;
  }
  writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    return this.inner.writev(buffers, position);
  }
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.inner.read(buffer, offset, length, position);
  }
  datasync(): Promise<void> {
    return this.inner.datasync();
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  truncate(lengthBytes: number): Promise<void> {
    return this.inner.truncate(lengthBytes);
  }
  stat(): Promise<FileStat> {
    return this.inner.stat();
  }
  commit(buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod): Promise<void> {
    return this.inner.commit(buffers, position, syncMethod);
  }
  async close(): Promise<void> {
    await this.inner.close();
    this.owner.live.delete(this);
  }
}

const DIR = '/data/wal';
const SEGMENT_BYTES = 4096;
/** 100-byte payloads: 128 bytes a record, 31 records a 4 KiB segment. */
const PAYLOAD_BYTES = 100;

/** Memory disk <- handle counter <- fault injector: the WAL sees the fault layer. */
function disks(): { mem: MemoryFileSystem; counting: CountingFileSystem; fault: FaultFileSystem } {
  const mem = new MemoryFileSystem();
  const counting = new CountingFileSystem(mem);
  return { mem, counting, fault: new FaultFileSystem(counting) };
}

function openWal(fs: FileSystem, more: Partial<WalOptions> = {}): Promise<Wal> {
  return Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, ...more });
}

async function appendBatch(wal: Wal, count: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i++) last = wal.append(payloadFor(wal.lastLsn + 1, PAYLOAD_BYTES));
  return wal.waitDurable(last);
}

function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('close() reports a final flush that failed (issue 8 item 3)', () => {
  it('append, EIO on the datasync, close() rejects with WAL_FAILED and still releases the lock and every file', async () => {
    const { mem, counting, fault } = disks();
    const wal = await openWal(fault);
    await appendBatch(wal, 3);
    fault.inject({ op: 'datasync', path: /\.wal$/, error: 'EIO' });
    wal.append(payloadFor(4, PAYLOAD_BYTES));
    const err = await rejection(wal.close());
    expect(isFlushpointError(err, 'WAL_FAILED'), `close must reject with WAL_FAILED, got ${String(err)}`).toBe(true);
    expect((err as FlushpointError).cause).toMatchObject({ code: 'EIO' });
    expect(wal.status).toBe('closed');
    expect(counting.openPaths, 'no file left open').toEqual([]);
    // The lock is free: a reopen works, and after a power loss the record close could not sync is gone.
    const again = await openWal(mem.crash());
    expect(again.lastLsn).toBe(3);
    await again.close();
  });

  it('close() after a failure that left records not durable rejects with that same failure', async () => {
    const { fault } = disks();
    const wal = await openWal(fault);
    fault.inject({ op: 'writev', error: 'ENOSPC' });
    wal.append(new Uint8Array(1));
    const first = await rejection(wal.sync());
    expect(isFlushpointError(first, 'WAL_FAILED')).toBe(true);
    await expect(wal.close()).rejects.toBe(first);
  });

  it('close() with everything durable resolves', async () => {
    const { fault, counting } = disks();
    const wal = await openWal(fault);
    wal.append(new Uint8Array(5));
    await expect(wal.close()).resolves.toBeUndefined();
    expect(counting.openPaths).toEqual([]);
  });
});

describe('file descriptors (issue 8 item 6)', () => {
  for (const op of ['datasync', 'syncDir'] as const) {
    it(`an EIO on the ${op} during open leaks no descriptor (3 failed opens, 0 handles left)`, async () => {
      const { counting, fault } = disks();
      const wal = await openWal(fault);
      await appendBatch(wal, 5);
      await wal.close();
      expect(counting.openPaths).toEqual([]);
      for (let i = 0; i < 3; i++) {
        fault.inject({ op, error: 'EIO' });
        await expect(openWal(fault)).rejects.toMatchObject({ code: 'WAL_FAILED' });
        fault.clearFaults();
      }
      expect(counting.openPaths, `handles left open: ${counting.openPaths.join(', ')}`).toEqual([]);
      const again = await openWal(fault);
      expect(again.lastLsn).toBe(5);
      await again.close();
      expect(counting.openPaths).toEqual([]);
    });
  }

  it('a new log whose first segment cannot be prepared fails to open with WAL_FAILED, leaving nothing open and the lock free', async () => {
    const { counting, fault } = disks();
    fault.inject({ op: 'writev', path: tempPathPattern(), error: 'ENOSPC' });
    await expect(openWal(fault)).rejects.toMatchObject({ code: 'WAL_FAILED', cause: { code: 'ENOSPC' } });
    expect(counting.openPaths).toEqual([]);
    const wal = await openWal(fault);
    await wal.appendDurable(new Uint8Array(1));
    await wal.close();
    expect(counting.openPaths).toEqual([]);
  });

  for (const op of ['writev', 'datasync', 'rename', 'syncDir'] as const) {
    it(`a failed commit into a new segment (${op}) leaks no handle once the WAL is closed`, async () => {
      const { counting, fault } = disks();
      const wal = await openWal(fault);
      await appendBatch(wal, 20);
      await turns(5);
      // The next batch does not fit the first segment: it goes into the prepared one, and fails there.
      fault.inject({ op, path: op === 'syncDir' ? DIR : tempPathPattern(), error: 'EIO' });
      wal.append(payloadFor(21, PAYLOAD_BYTES));
      for (let i = 0; i < 15; i++) wal.append(payloadFor(22 + i, PAYLOAD_BYTES));
      await expect(wal.sync()).rejects.toMatchObject({ code: 'WAL_FAILED' });
      await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_FAILED' });
      expect(counting.openPaths, `handles left open: ${counting.openPaths.join(', ')}`).toEqual([]);
    });
  }
});

describe('retention (issue 8 items 4 and 10)', () => {
  /** 200 records of 40 bytes in 1 KiB segments: many segments. */
  async function manySegments(fs: FileSystem, recycleSegments?: number): Promise<Wal> {
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 1024, recycleSegments });
    if (recycleSegments === undefined || recycleSegments === 0) {
      for (let i = 1; i <= 200; i++) wal.append(payloadFor(i, 40));
      await wal.sync();
    } else {
      // One commit per record, so every roll finds its next segment prepared (zero-filled to the full
      // size): only those are recycled, and these tests want each freed segment renamed.
      for (let i = 1; i <= 200; i++) await wal.appendDurable(payloadFor(i, 40));
      expect(wal.stats().preallocStalls).toBe(0);
    }
    expect(wal.stats().segments).toBeGreaterThan(5);
    return wal;
  }

  // Freeing a segment is an unlink (recycleSegments: 0) or a rename to a free name (segment-recycler.ts):
  // the same ordering rules hold for both.
  for (const mode of [
    { op: 'unlink', recycleSegments: 0 },
    { op: 'rename', recycleSegments: 64 },
  ] as const) {
    describe(`freeing by ${mode.op}`, () => {
      it('a hold taken while truncateBefore runs is honoured: no segment at or above it is deleted', async () => {
        const fault = new FaultFileSystem(new MemoryFileSystem());
        const wal = await manySegments(fault, mode.recycleSegments);
        const gate = deferred();
        const unlinksBefore = fault.counts[mode.op];
        fault.inject({ op: mode.op, path: /\.wal$/, hold: gate.promise });
        const truncation = wal.truncateBefore(10_000);
        await until(() => fault.counts[mode.op] > unlinksBefore, 'the first unlink to start');
        // A reader (a backup sink opening now) holds where the log begins at this moment.
        const heldLsn = wal.firstLsn;
        wal.hold('late', heldLsn);
        gate.resolve();
        expect(await truncation).toBe(1);
        expect(wal.firstLsn).toBe(heldLsn);
        const records = await readAll(wal);
        expect(records[0]?.lsn).toBe(heldLsn);
        expect(records[records.length - 1]?.lsn).toBe(200);
        await wal.close();
      });

      it(`truncateBefore frees oldest first (${mode.op}) and makes each ${mode.op} durable before the next starts`, async () => {
        const mem = new MemoryFileSystem();
        const fault = new FaultFileSystem(mem);
        const wal = await manySegments(fault, mode.recycleSegments);
        const names = (await mem.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
        const syncDirBefore = fault.counts.syncDir;
        const opsBefore = fault.counts[mode.op];
        const gate = deferred();
        fault.inject({ op: mode.op, path: /\.wal$/, nth: 2, hold: gate.promise });
        const truncation = wal.truncateBefore(10_000);
        await until(() => fault.counts[mode.op] >= opsBefore + 2, 'the second unlink to start');
        expect(fault.counts.syncDir - syncDirBefore, 'the first unlink was synced before the second began').toBe(1);
        // A power loss now keeps a contiguous log: the oldest segment gone, the rest in place.
        const after = mem.crash();
        expect((await after.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort()).toEqual(names.slice(1));
        const reopened = await Wal.open({ dir: DIR, fs: after, segmentSizeBytes: 1024, recycleSegments: mode.recycleSegments });
        expect(reopened.lastLsn).toBe(200);
        await reopened.close();
        gate.resolve();
        const deleted = await truncation;
        expect(deleted).toBe(names.length - 1);
        expect(fault.counts.syncDir - syncDirBefore, 'one directory sync per unlink').toBe(deleted);
        await wal.close();
      });

      const seeds = seedList(20);
      it(`a power loss at any ${mode.op} of a truncation leaves a log that opens with every record (${seeds.length} seeds, keepUnsynced 'random')`, async () => {
        // With fsyncs after each unlink this holds whatever subset of unsynced directory operations the
        // in-memory disk keeps (a prefix today; any subset once MemoryFileSystem models that).
        for (const seed of seeds) {
          const mem = new MemoryFileSystem();
          const fault = new FaultFileSystem(mem);
          const wal = await manySegments(fault, mode.recycleSegments);
          const segments = wal.stats().segments;
          const opsBefore = fault.counts[mode.op];
          const nth = 1 + (seed % (segments - 1));
          const gate = deferred();
          fault.inject({ op: mode.op, path: /\.wal$/, nth, hold: gate.promise });
          const truncation = wal.truncateBefore(10_000);
          await until(() => fault.counts[mode.op] >= opsBefore + nth, `${mode.op} ${nth} to start`);
          const after = mem.crash({ keepUnsynced: 'random', seed });
          try {
            const reopened = await Wal.open({ dir: DIR, fs: after, segmentSizeBytes: 1024, recycleSegments: mode.recycleSegments });
            const records = await readAll(reopened);
            expect(reopened.lastLsn).toBe(200);
            expect(records.map((r) => r.lsn)).toEqual(Array.from({ length: 201 - reopened.firstLsn }, (_, i) => reopened.firstLsn + i));
            await reopened.close();
          } catch (err) {
            console.log(replayHint(seed, 'test/wal-hardening.test.ts', `a power loss at any ${mode.op}`));
            throw err;
          }
          gate.resolve();
          await truncation;
          await wal.close();
        }
      });
    });
  }

  it('read() racing truncateBefore without a hold fails with WAL_TRUNCATED, not a raw ENOENT (item 9)', async () => {
    const wal = await manySegments(new MemoryFileSystem());
    const reader = wal.read()[Symbol.asyncIterator]();
    await wal.truncateBefore(10_000);
    const err = await rejection(reader.next());
    expect(isFlushpointError(err, 'WAL_TRUNCATED'), `expected WAL_TRUNCATED, got ${String(err)}`).toBe(true);
    expect((err as FlushpointError).message).toMatch(/0000000000000001\.wal/);
    await wal.close();
  });
});

describe('timeouts (issue 8 item 7)', () => {
  it('timeoutMs: Infinity means no timeout; above 2^31 - 1 is a RangeError, not a 1 ms timer', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault);
    const gate = deferred();
    fault.inject({ op: 'datasync', hold: gate.promise });
    const lsn = wal.append(new Uint8Array(8));
    const forever = track(wal.waitDurable(lsn, { timeoutMs: Number.POSITIVE_INFINITY }));
    const keyed = track(wal.waitDurable(lsn, { timeoutMs: Number.POSITIVE_INFINITY, signal: new AbortController().signal }));
    await expect(wal.waitDurable(lsn, { timeoutMs: 2 ** 31 })).rejects.toBeInstanceOf(RangeError);
    await expect(wal.appendDurable(new Uint8Array(1), { timeoutMs: 2 ** 40 })).rejects.toBeInstanceOf(RangeError);
    // Node clamps an out-of-range timer to 1 ms: give it far more than that to fire.
    await new Promise((r) => setTimeout(r, 30));
    expect(forever.outcome.state).toBe('pending');
    expect(keyed.outcome.state).toBe('pending');
    gate.resolve();
    await Promise.all([forever.promise, keyed.promise]);
    expect(forever.outcome).toEqual({ state: 'resolved', value: lsn });
    expect(keyed.outcome).toEqual({ state: 'resolved', value: lsn });
    await wal.close();
  });
});

describe('record size (issue 8 item 8)', () => {
  it('payloadBytesMax is true for the largest segments: a record and a segment header stay below 2^31 - 1 bytes (one fs call)', () => {
    expect(PAYLOAD_BYTES_MAX).toBe(2 ** 31 - 88);
    expect(RECORD_BYTES_MAX + 32).toBeLessThan(2 ** 31 - 1);
    expect(recordBytes(PAYLOAD_BYTES_MAX)).toBe(RECORD_BYTES_MAX);
    expect(payloadBytesMax(SEGMENT_SIZE_BYTES_MAX)).toBe(PAYLOAD_BYTES_MAX);
  });

  it('a payload of 2^31 - 31 bytes is refused with RECORD_TOO_LARGE and takes no LSN', async () => {
    const mem = new MemoryFileSystem();
    // A log made with small segments, reopened with the largest size: nothing is zero-filled at open.
    const small = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes: SEGMENT_BYTES });
    await small.appendDurable(new Uint8Array(1));
    await small.close();
    const wal = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes: SEGMENT_SIZE_BYTES_MAX });
    expect(wal.payloadBytesMax).toBe(2 ** 31 - 88);
    // Never written to, so the pages stay unallocated: this costs no memory.
    const huge = new Uint8Array(2 ** 31 - 31);
    const err = thrown(() => wal.append(huge));
    expect(isFlushpointError(err, 'RECORD_TOO_LARGE'), `expected RECORD_TOO_LARGE, got ${String(err)}`).toBe(true);
    expect(wal.lastLsn).toBe(1);
    await wal.close();
  });
});

describe('smaller inconsistencies (issue 8 item 9)', () => {
  it('a second torn-tail cut keeps the earlier .torn copy', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const copies: string[][] = [];
    for (let round = 0; round < 2; round++) {
      const wal = await openWal(fault);
      await appendBatch(wal, 3);
      fault.inject({ op: 'writev', path: /\.wal$/, tornBytes: 200 }); // the commit's, not a prepared file's fill
      for (let i = 0; i < 4; i++) wal.append(payloadFor(wal.lastLsn + 1, PAYLOAD_BYTES));
      await expect(wal.sync()).rejects.toMatchObject({ code: 'WAL_FAILED' });
      await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_FAILED' });
      fault.clearFaults();
      const reopened = await openWal(fault);
      expect(reopened.recovery.tornTail).not.toBeNull();
      await reopened.close();
      copies.push((await mem.readdir(DIR)).filter((n) => n.includes('.torn')).sort());
    }
    expect(copies[0]).toEqual(['0000000000000001.wal.torn']);
    expect(copies[1]).toEqual(['0000000000000001.wal.torn', '0000000000000001.wal.torn.2']);
    // Each copy holds the bytes its own cut removed (the records differ by LSN).
    const first = mem.readFileNow(`${DIR}/0000000000000001.wal.torn`);
    const second = mem.readFileNow(`${DIR}/0000000000000001.wal.torn.2`);
    expect(Buffer.compare(first, second)).not.toBe(0);
  });

  for (const [code, opens] of [['ENOSPC', true], ['EDQUOT', true], ['EIO', false]] as const) {
    it(`a torn tail whose copy meets ${code}: ${opens ? 'cut without the copy, every acknowledged record kept (a full disk)' : 'the open fails with WAL_FAILED, nothing cut'}`, async () => {
      const mem = new MemoryFileSystem();
      const fault = new FaultFileSystem(mem);
      const wal = await openWal(fault);
      await appendBatch(wal, 3);
      const acked = wal.durableLsn;
      fault.inject({ op: 'writev', path: /\.wal$/, tornBytes: 200 }); // the commit's, not a prepared file's fill
      for (let i = 0; i < 4; i++) wal.append(payloadFor(wal.lastLsn + 1, PAYLOAD_BYTES));
      await expect(wal.sync()).rejects.toMatchObject({ code: 'WAL_FAILED' });
      await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_FAILED' });
      fault.clearFaults();
      fault.inject({ op: 'writev', path: /\.torn/, error: code, times: Infinity });
      if (!opens) {
        await expect(openWal(fault)).rejects.toMatchObject({ code: 'WAL_FAILED', cause: { code } });
        fault.clearFaults();
        const after = await openWal(fault); // the tail is still there to cut, and is cut now
        expect(after.recovery.tornTail).not.toBeNull();
        await after.close();
        return;
      }
      const reopened = await openWal(fault);
      expect(reopened.recovery.tornTail).not.toBeNull();
      const end = reopened.lastLsn; // the torn write's whole records may survive, never acknowledged
      expect(end).toBeGreaterThanOrEqual(acked);
      expect((await readAll(reopened)).map((r) => r.lsn)).toEqual(Array.from({ length: end }, (_, i) => i + 1));
      await reopened.close();
      expect((await mem.readdir(DIR)).filter((n) => n.includes('.torn'))).toEqual([]); // no copy, no temp file
      fault.clearFaults();
      const again = await openWal(fault); // the cut was made: nothing torn is left
      expect(again.recovery.tornTail).toBeNull();
      expect(again.lastLsn).toBe(end);
      await again.close();
    });
  }

  it('a segment roll short of file descriptors for a moment (EMFILE at the directory sync and the reopen) retries instead of failing the log (EMFILE review)', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const wal = await openWal(fault);
    await appendBatch(wal, 2);
    const rollsBefore = wal.stats().segments;
    fault.inject({ op: 'syncDir', path: DIR, error: 'EMFILE', times: 3 });
    fault.inject({ op: 'open', path: /\.wal$/, error: 'ENFILE', times: 2 });
    let last = 0;
    while (wal.stats().segments < rollsBefore + 3) last = await appendBatch(wal, 8); // rolls through the faults
    expect(wal.status).toBe('open');
    expect(fault.counts.syncDir).toBeGreaterThan(3);
    await wal.close();
    const reopened = await openWal(mem);
    expect(reopened.lastLsn).toBe(last);
    await reopened.close();
  });

  it('a truncation short of file descriptors for a moment retries its directory sync; later truncations still work (EMFILE review)', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault);
    while (wal.stats().segments < 5) await appendBatch(wal, 8);
    const half = Math.floor(wal.durableLsn / 2);
    fault.inject({ op: 'syncDir', path: DIR, error: 'EMFILE', times: 2 });
    await wal.truncateBefore(half); // before: WAL_FAILED, and every later truncation refused until reopened
    expect(wal.firstLsn).toBeGreaterThan(1);
    await wal.truncateBefore(wal.durableLsn);
    expect(wal.stats().segments).toBe(1);
    await wal.close();
  });

  it('a shortage that outlasts the retries fails the roll as before: WAL_FAILED with the EMFILE as cause', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault);
    await appendBatch(wal, 2);
    fault.inject({ op: 'syncDir', path: DIR, error: 'EMFILE', times: Number.POSITIVE_INFINITY });
    const failed = await (async () => {
      for (;;) await appendBatch(wal, 8);
    })().catch((err: unknown) => err);
    expect(failed).toMatchObject({ code: 'WAL_FAILED', cause: { code: 'EMFILE' } });
    await wal.close().catch(() => {});
  });

  it('an already-aborted signal rejects with its reason even when nothing is pending', async () => {
    const wal = await openWal(new MemoryFileSystem());
    await wal.appendDurable(new Uint8Array(1));
    const signal = AbortSignal.abort(new Error('stopped'));
    await expect(wal.waitDurable(1, { signal })).rejects.toThrow('stopped');
    await expect(wal.sync({ signal })).rejects.toThrow('stopped');
    await expect(wal.nextDurable({ signal })).rejects.toThrow('stopped');
    await expect(wal.appendDurable(new Uint8Array(1), { signal })).rejects.toThrow('stopped');
    expect(wal.lastLsn, 'an aborted appendDurable appends nothing').toBe(1);
    await wal.close();
  });

  it('after close(), sync() and waitDurable() reject with WAL_CLOSED, as append() and read() throw it', async () => {
    const wal = await openWal(new MemoryFileSystem());
    await wal.appendDurable(new Uint8Array(1));
    await wal.close();
    expect(() => wal.append(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'WAL_CLOSED' }));
    expect(() => wal.read()).toThrow(expect.objectContaining({ code: 'WAL_CLOSED' }));
    await expect(wal.sync()).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await expect(wal.waitDurable(1)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await expect(wal.waitDurable(0)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await expect(wal.nextDurable()).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await expect(wal.truncateBefore(1)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
  });

  it('read(): fromLsn 0 and fromLsn past lastLsn + 1 are RangeErrors; the not-yet-durable tail yields nothing', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault);
    await appendBatch(wal, 3);
    expect(() => wal.read({ fromLsn: 0 })).toThrow(/fromLsn must be >= 1/);
    expect(() => wal.read({ fromLsn: 5 })).toThrow(RangeError);
    const gate = deferred();
    fault.inject({ op: 'datasync', hold: gate.promise });
    wal.append(new Uint8Array(1)); // LSN 4: assigned, not durable
    const tail: number[] = [];
    for await (const r of wal.read({ fromLsn: 4 })) tail.push(r.lsn);
    expect(tail).toEqual([]);
    expect(() => wal.read({ fromLsn: 6 })).toThrow(/past the end of the log/);
    gate.resolve();
    await wal.close();
  });

  it('unknown option names are refused with a TypeError naming the option', async () => {
    const mem = new MemoryFileSystem();
    await expect(Wal.open({ dir: DIR, fs: mem, segmentSize: 4096 } as never)).rejects.toThrow(/unknown option 'segmentSize'/);
    await expect(Wal.open({ dir: DIR, fs: mem, fsync: true } as never)).rejects.toThrow(TypeError);
    const wal = await openWal(mem);
    const lsn = wal.append(new Uint8Array(1));
    await expect(wal.waitDurable(lsn, { timeout: 5 } as never)).rejects.toThrow(/unknown option 'timeout'/);
    expect(() => wal.read({ from: 1 } as never)).toThrow(/unknown option 'from'/);
    expect(() => wal.readRaw({ chunkBytes: 64 } as never)).toThrow(/unknown option 'chunkBytes'/);
    await wal.close();
  });
});

describe('a failed WAL says so (issue 8 item 9, issue 9 logging)', () => {
  it("reports status 'failed' and logs one error-level line with the Error under err, through a { component: 'wal' } child", async () => {
    const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string | undefined; bindings: object }> = [];
    const makeLogger = (bindings: object): unknown => ({
      info: (obj: Record<string, unknown>, msg?: string) => lines.push({ level: 'info', obj, msg, bindings }),
      warn: (obj: Record<string, unknown>, msg?: string) => lines.push({ level: 'warn', obj, msg, bindings }),
      error: (obj: Record<string, unknown>, msg?: string) => lines.push({ level: 'error', obj, msg, bindings }),
      child: (more: object) => makeLogger({ ...bindings, ...more }),
    });
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault, { logger: makeLogger({}) as never });
    await wal.appendDurable(new Uint8Array(1));
    expect(wal.status).toBe('open');
    fault.inject({ op: 'datasync', path: /\.wal$/, error: 'EIO' });
    wal.append(new Uint8Array(1));
    const failure = await rejection(wal.sync());
    await expect(wal.waitDurable(2)).rejects.toBe(failure);
    expect(wal.status).toBe('failed');
    expect(wal.stats().status).toBe('failed');
    expect(() => wal.append(new Uint8Array(1))).toThrow(failure as Error);
    await expect(wal.truncateBefore(1)).rejects.toBe(failure);
    expect((await readAll(wal)).map((r) => r.lsn), 'what is durable can still be read').toEqual([1]);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.obj.err).toBe(failure);
    expect(errors[0]?.obj.err).toBeInstanceOf(Error);
    for (const l of lines) expect(l.bindings).toEqual({ component: 'wal' });
    await expect(wal.close()).rejects.toBe(failure);
    expect(wal.status).toBe('closed');
    expect(lines.filter((l) => l.level === 'error'), 'still one error line after close').toHaveLength(1);
  });
});

describe('slow commits (issue 9 logging)', () => {
  it("a commit slower than fsyncLatencyMsWarn is logged at warn with its duration, through the { component: 'wal' } child, and emitted", async () => {
    const warns: Array<{ obj: Record<string, unknown>; msg: string | undefined; bindings: object }> = [];
    const makeLogger = (bindings: object): unknown => ({
      info: () => {},
      warn: (obj: Record<string, unknown>, msg?: string) => warns.push({ obj, msg, bindings }),
      error: () => {},
      child: (more: object) => makeLogger({ ...bindings, ...more }),
    });
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault, { logger: makeLogger({}) as never, fsyncLatencyMsWarn: 1 });
    const events: number[] = [];
    wal.on('slowSync', (info) => events.push(info.durationMs));
    // The commit's sync waits 5 ms: at least the 1 ms threshold, whatever the machine's load.
    fault.inject({ op: 'datasync', path: tempPathPattern(), delayMs: 5 });
    await wal.appendDurable(new Uint8Array(10));
    await new Promise((resolve) => process.nextTick(resolve)); // observers run in the tick after the commit
    const slow = warns.filter((w) => w.msg === 'slow WAL commit');
    expect(slow).toHaveLength(1);
    expect(slow[0]?.obj.durationMs as number).toBeGreaterThanOrEqual(1);
    expect(slow[0]?.obj.bytes).toBeGreaterThan(0);
    expect(slow[0]?.bindings).toEqual({ component: 'wal' });
    expect(events).toEqual([slow[0]?.obj.durationMs]);
    expect(wal.stats().slowSyncs).toBe(1);
    await wal.close();
  });
});

describe('appendDurable and waitersCountMax (issue 9, issue 7)', () => {
  it('appendDurable resolves with the LSN once it is durable', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault);
    const gate = deferred();
    fault.inject({ op: 'datasync', hold: gate.promise });
    const p = track(wal.appendDurable(payloadFor(1, 10)));
    expect(wal.lastLsn).toBe(1);
    await until(() => fault.counts.datasync > 0, 'the commit to reach its sync');
    await turns(5);
    expect(p.outcome.state).toBe('pending');
    gate.resolve();
    await p.promise;
    expect(p.outcome).toEqual({ state: 'resolved', value: 1 });
    expect(wal.durableLsn).toBe(1);
    await wal.close();
  });

  it('waitersCountMax (a WalOptions field) bounds plain waitDurable calls too', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const wal = await openWal(fault, { waitersCountMax: 2 });
    const gate = deferred();
    fault.inject({ op: 'datasync', hold: gate.promise });
    const a = wal.append(new Uint8Array(1));
    const b = wal.append(new Uint8Array(1));
    const waits = [wal.waitDurable(a), wal.waitDurable(b)];
    await expect(wal.sync()).rejects.toThrow(/waitersCountMax 2/);
    await expect(Wal.open({ dir: '/other', fs: fault, waitersCountMax: 0 })).rejects.toBeInstanceOf(RangeError);
    gate.resolve();
    expect(await Promise.all(waits)).toEqual([2, 2]);
    await wal.close();
  });
});
