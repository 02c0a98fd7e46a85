/**
 * I/O faults, injected by FaultFileSystem over MemoryFileSystem, at every step of a commit: the batch's
 * write (failed, or torn short) and sync, into the current segment or into the preallocated next one;
 * the open of the preallocated segment; its rename into place and the directory sync after it. EIO and
 * ENOSPC each.
 *
 * For each: every pending waiter (the failed batch's and the next batch's, sync() and nextDurable())
 * gets the same WAL_FAILED with the errno code in its cause; nothing of the failed batch is acknowledged,
 * durableLsn does not move and no 'durable' event fires; later append() throws it and later waits reject
 * with it; the failed operation and the sync are never tried again (counted through `counts`); close()
 * still releases the lock; the disk after a power loss at that point, and a reopen with the faults
 * cleared, both recover every acknowledged record, byte for byte; the reopened WAL takes new writes.
 *
 * Also: a full disk (ENOSPC while preallocating the next segment) fails only the batch that needs that
 * segment; and nothing resolves early while a commit step is held open.
 */
import { describe, expect, it } from 'vitest';
import { Wal, type SyncMode } from '../wal/index.js';
import { FlushpointError, isFlushpointError } from '../core/errors.js';
import { FaultFileSystem, MemoryFileSystem, type FaultRule, type FsOp } from '../fs/index.js';
import { deferred, track, turns, until, type Tracked } from './helpers/async.js';
import { PREALLOC_SUFFIX } from '../wal/segment-preparer.js';
import { MemoryWal, MEMORY_WAL_DIR, RECORDS_PER_SEGMENT, SEGMENT_BYTES } from './helpers/memory-wal.js';
import { ExpectedLog, verifyLog } from './helpers/wal-log.js';
import { patternBytes } from './helpers/payload.js';
import { TEMP_SUFFIX, tempPathPattern } from '../fs/durable-publish.js';

const ERRNOS = ['EIO', 'ENOSPC'] as const;
type Errno = (typeof ERRNOS)[number];

/** Records in the first segment before the failing batch (fillFirstSegment). */
const FILLED = 20;
/** A batch that fits the rest of the first segment, and one that needs the next segment. */
const BATCH_IN_SEGMENT = 4;
const BATCH_ROLLING = 16;

interface FaultCase {
  name: string;
  op: FsOp;
  /** 'segment': the failing batch fits the current segment; 'roll': it needs the next one. */
  batch: 'segment' | 'roll';
  /** Rules injected before Wal.open (they must see the first preallocations). */
  beforeOpen?: (errno: Errno) => FaultRule;
  /** The rule injected just before the failing batch; `prepared` is the preallocated next segment. */
  beforeBatch?: (errno: Errno, prepared: string) => FaultRule;
  /** The failed write left part of a record behind: the reopen must cut it as a torn tail. */
  leavesTornTail?: boolean;
}

const CASES: readonly FaultCase[] = [
  { name: 'writev of a commit into the current segment', op: 'writev', batch: 'segment', beforeBatch: (error) => ({ op: 'writev', error }) },
  { name: 'writev of a commit into the preallocated next segment', op: 'writev', batch: 'roll', beforeBatch: (error, prepared) => ({ op: 'writev', path: prepared, error }) },
  // A short write: the first 200 bytes of the batch reach the file (one record and part of the next).
  { name: 'a torn writev of a commit into the current segment', op: 'writev', batch: 'segment', beforeBatch: (error) => ({ op: 'writev', tornBytes: 200, error }), leavesTornTail: true },
  { name: 'datasync of a commit into the current segment', op: 'datasync', batch: 'segment', beforeBatch: (error) => ({ op: 'datasync', error }) },
  { name: 'datasync of a commit into the preallocated next segment', op: 'datasync', batch: 'roll', beforeBatch: (error, prepared) => ({ op: 'datasync', path: prepared, error }) },
  // The first preallocation runs in open; the second, in the background after the first roll. When it has
  // failed, the roll starts the segment as a plain new file instead, so the fault must also hit that open
  // (any .tmp file) to fail the log.
  { name: 'open of the next segment\'s file', op: 'open', batch: 'roll', beforeOpen: (error) => ({ op: 'open', path: tempPathPattern(), nth: 2, times: 2, error }) },
  { name: 'rename of the new segment into place', op: 'rename', batch: 'roll', beforeBatch: (error) => ({ op: 'rename', error }) },
  { name: 'directory sync after the new segment is renamed', op: 'syncDir', batch: 'roll', beforeBatch: (error) => ({ op: 'syncDir', error }) },
];

/** Checks a WAL_FAILED whose cause is the injected fault: its errno, and the operation it was injected into. */
function expectWalFailed(reason: unknown, errno: string, op?: FsOp): FlushpointError {
  expect(isFlushpointError(reason, 'WAL_FAILED'), `expected WAL_FAILED, got ${String(reason)}`).toBe(true);
  const err = reason as FlushpointError;
  const cause = err.cause as NodeJS.ErrnoException | undefined;
  expect(cause?.code).toBe(errno);
  if (op !== undefined) expect(cause?.syscall, 'the fault came from the operation this case injects into').toBe(op);
  return err;
}

interface FailedBatch {
  /** The error every waiter got. */
  error: FlushpointError;
  durableBefore: number;
  datasyncBefore: number;
  /** counts of the op and of datasync once the failure had been delivered. */
  opAfter: number;
  datasyncAfter: number;
}

/**
 * Runs the failing batch (`size` records) with its first write held, appends a next batch and other
 * waiters meanwhile, then lets it go; checks that every waiter failed alike and nothing was acknowledged.
 */
async function failBatch(m: MemoryWal, size: number, op: FsOp, errno: string, beforeBatch?: FaultRule): Promise<FailedBatch> {
  const { wal, fault } = m;
  expect(wal.stats().failure).toBeNull();
  const durableBefore = wal.durableLsn;
  const datasyncBefore = fault.counts.datasync;
  const writevBefore = fault.counts.writev;
  const inline = m.syncMode === 'inline';
  const gate = deferred();
  // First, so that it holds the batch's first write before any error rule on the same call fires. An
  // inline commit blocks the event loop, so it cannot be held, and nothing is appended while it runs.
  if (!inline) fault.inject({ op: 'writev', hold: gate.promise });
  if (beforeBatch) fault.inject(beforeBatch);
  const durableEvents: number[] = [];
  wal.on('durable', (lsn) => durableEvents.push(lsn));
  const waiters: Array<{ what: string; t: Tracked<unknown> }> = [];
  const watch = (what: string, p: Promise<unknown>): void => {
    waiters.push({ what, t: track(p) });
  };
  watch('nextDurable()', wal.nextDurable());
  for (const lsn of m.append(size)) watch(`waitDurable(${lsn}) of the failing batch`, wal.waitDurable(lsn));
  if (!inline) {
    await until(() => fault.counts.writev > writevBefore, 'the failing batch to start its write');
    for (const lsn of m.append(4)) watch(`waitDurable(${lsn}) of the next batch`, wal.waitDurable(lsn));
  }
  watch('sync()', wal.sync());
  watch('waitDurable with a timeout', wal.waitDurable(wal.lastLsn, { timeoutMs: 60_000 }));
  gate.resolve();
  await Promise.all(waiters.map((w) => w.t.promise));
  expect(fault.counts.writev, 'the failing batch was written').toBeGreaterThan(writevBefore);

  const first = waiters[0]?.t.outcome;
  expect(first?.state).toBe('rejected');
  const error = expectWalFailed(first?.state === 'rejected' ? first.reason : undefined, errno, op);
  for (const { what, t } of waiters) {
    expect(t.outcome.state, `${what} must not resolve`).toBe('rejected');
    if (t.outcome.state === 'rejected') expect(t.outcome.reason, `${what} sees the same error`).toBe(error);
  }
  expect(durableEvents, "no 'durable' event for a failed batch").toEqual([]);
  expect(wal.durableLsn).toBe(durableBefore);
  expect(wal.stats().failure).toBe(error.message);
  return { error, durableBefore, datasyncBefore, opAfter: fault.counts[op], datasyncAfter: fault.counts.datasync };
}

/** After the failure: it is sticky, nothing is retried, close releases the lock, a reopen recovers. */
async function afterFailure(m: MemoryWal, op: FsOp, failed: FailedBatch, leavesTornTail = false): Promise<void> {
  const { wal, fault } = m;
  const { error } = failed;
  expect(() => wal.append(new Uint8Array(1))).toThrow(error);
  await expect(wal.waitDurable(wal.lastLsn)).rejects.toBe(error);
  await expect(wal.sync()).rejects.toBe(error);
  await expect(wal.nextDurable()).rejects.toBe(error);
  await turns(5);
  try {
    await wal.close();
  } catch (err) {
    // Closing a failed log may report the failure again, but nothing else.
    expect(err).toBe(error);
  }
  expect(wal.status).toBe('closed');
  expect(fault.counts.datasync, 'the sync is never retried').toBe(failed.datasyncAfter);
  expect(fault.counts[op], `the failed ${op} is never retried`).toBe(failed.opAfter);

  // Had the power gone out instead, the acknowledged records would be on the disk all the same.
  const afterPowerLoss = await Wal.open({ dir: MEMORY_WAL_DIR, fs: m.mem.crash({ keepUnsynced: 'none' }), segmentSizeBytes: SEGMENT_BYTES });
  await verifyLog(afterPowerLoss, (lsn) => m.log.get(lsn), { mustSurviveLsn: failed.durableBefore, lastAppendedLsn: m.log.lastLsn });
  await afterPowerLoss.close();

  fault.clearFaults();
  const reopened = await m.reopenAndVerify(failed.durableBefore);
  expect(reopened.recovery.tornTail !== null, 'a torn tail was cut on reopen').toBe(leavesTornTail);
  // The reopened log works: a new record is appended and made durable.
  const [lsn] = m.append(1);
  await expect(reopened.waitDurable(lsn as number)).resolves.toBeGreaterThanOrEqual(lsn as number);
  await reopened.close();
}

const SYNC_MODES = ['worker', 'inline'] as const satisfies readonly SyncMode[];

describe.each(SYNC_MODES)('WAL under injected I/O faults (FaultFileSystem over MemoryFileSystem), syncMode %s', (syncMode) => {
  for (const c of CASES) {
    for (const errno of ERRNOS) {
      it(`${errno} on ${c.name}: every waiter gets WAL_FAILED, nothing is acknowledged, nothing is retried, a reopen recovers`, async () => {
        expect(ERRNOS).toContain(errno);
        expect(CASES).toContain(c);
        const m = await MemoryWal.open((fault) => {
          if (c.beforeOpen) fault.inject(c.beforeOpen(errno));
        }, syncMode);
        expect(m.syncMode).toBe(syncMode);
        await m.fillFirstSegment();
        expect(m.wal.durableLsn).toBe(FILLED);
        const size = c.batch === 'roll' ? BATCH_ROLLING : BATCH_IN_SEGMENT;
        expect(FILLED + size > RECORDS_PER_SEGMENT).toBe(c.batch === 'roll');
        const [prepared] = await m.preparedPaths();
        const failed = await failBatch(m, size, c.op, errno, c.beforeBatch?.(errno, prepared ?? 'no prepared segment'));
        if (c.op === 'datasync') {
          // One sync for a batch in the segment; for a rolling batch, the old segment's part succeeded first.
          expect(failed.datasyncAfter - failed.datasyncBefore).toBe(c.batch === 'roll' ? 2 : 1);
        }
        await afterFailure(m, c.op, failed, c.leavesTornTail);
      });
    }
  }

  it('a full disk (ENOSPC while preallocating the next segment) fails the batch that needs that segment, and not before', async () => {
    const m = await MemoryWal.open(undefined, syncMode);
    await turns(5);
    const [first] = await m.preparedPaths();
    expect(first).toBeDefined();
    // Every later preallocation hits the full disk; the first one (already made) becomes segment 1.
    const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // (Any new file: the prepared next segment's zeros, and a plain new segment started in its place.)
    m.fault.inject({ op: 'writev', path: new RegExp(`^(?!${escape(first as string)}$).*${escape(TEMP_SUFFIX)}$`), error: 'ENOSPC', times: Infinity });
    const unlinksBefore = m.fault.counts.unlink;
    await m.appendDurable(8);
    // Not before: batches that fit segment 1 are still acknowledged.
    for (let i = 0; i < 3; i++) await m.appendDurable(4);
    expect(m.wal.durableLsn).toBe(FILLED);
    await turns(5);
    // Segment 1 is past half full, so segment 2's preallocation has run, failed, and removed its file.
    expect(await m.preparedPaths()).toHaveLength(0);
    expect(m.fault.counts.unlink).toBeGreaterThan(unlinksBefore);
    const failed = await failBatch(m, BATCH_ROLLING, 'writev', 'ENOSPC');
    await afterFailure(m, 'writev', failed);
  });

  it('a preallocation that failed in the background does not fail the roll: the segment starts as a plain file', async () => {
    const m = await MemoryWal.open(undefined, syncMode);
    m.fault.inject({ op: 'open', path: PREALLOC_SUFFIX, nth: 2, error: 'ENOSPC' }); // the next one, once
    await m.fillFirstSegment();
    await m.appendDurable(BATCH_ROLLING);
    expect(m.wal.durableLsn).toBe(FILLED + BATCH_ROLLING);
    expect(m.wal.stats().segments).toBe(2);
    expect(m.wal.stats().failure).toBeNull();
  });

  it('a failed commit names the segment file it was writing, not the temp name it was preallocated under', async () => {
    // Regression: the segment's handle used to keep its temp path after the rename, so this error named
    // `<pid>-<n>.prealloc.tmp`, a file that no longer exists, and a rule on /\.wal$/ missed its commits.
    const m = await MemoryWal.open(undefined, syncMode);
    await m.fillFirstSegment();
    m.fault.inject({ op: 'datasync', error: 'EIO' });
    m.append(1);
    const err = await m.wal.sync().then(
      () => null,
      (e: unknown) => e as FlushpointError,
    );
    expectWalFailed(err, 'EIO');
    expect(err?.file).toBe(`${MEMORY_WAL_DIR}/0000000000000001.wal`);
  });
});

/** Which commit step is held, and whether the held batch fits the current segment or rolls. */
const HOLDS: ReadonlyArray<{ op: FsOp; batch: 'segment' | 'roll'; nth: number }> = [
  { op: 'datasync', batch: 'segment', nth: 1 },
  // A rolling batch syncs its part in the old segment (1st datasync), then the new segment (2nd).
  { op: 'datasync', batch: 'roll', nth: 2 },
  { op: 'writev', batch: 'segment', nth: 1 },
  { op: 'rename', batch: 'roll', nth: 1 },
  { op: 'syncDir', batch: 'roll', nth: 1 },
];

describe.each(SYNC_MODES)('nothing resolves early, syncMode %s', (syncMode) => {
  // An inline commit's writev and sync block the event loop: nothing can observe them half done, and they
  // cannot be held. The steps after them (rename, directory sync) are asynchronous in both modes.
  for (const h of HOLDS.filter((hold) => syncMode === 'worker' || (hold.op !== 'writev' && hold.op !== 'datasync'))) {
    it(`while the ${h.nth === 1 ? '' : `${h.nth}nd `}${h.op} of a batch ${h.batch === 'roll' ? 'that rolls into a new segment' : 'in the current segment'} is held: no waiter, no durableLsn, no event, no read`, async () => {
      expect(HOLDS).toContain(h);
      const m = await MemoryWal.open(undefined, syncMode);
      expect(m.wal.stats().failure).toBeNull();
      const { wal, fault } = m;
      await m.fillFirstSegment();
      const durableBefore = wal.durableLsn;
      const gate = deferred();
      const opBefore = fault.counts[h.op];
      fault.inject({ op: h.op, nth: h.nth, hold: gate.promise });
      const events: number[] = [];
      wal.on('durable', (lsn) => events.push(lsn));
      const next = track(wal.nextDurable());
      const batch = m.append(h.batch === 'roll' ? BATCH_ROLLING : BATCH_IN_SEGMENT);
      const batchWaiters = batch.map((lsn) => track(wal.waitDurable(lsn)));
      await until(() => fault.counts[h.op] - opBefore >= h.nth, `the ${h.op} to be held`);
      const queued = m.append(4);
      const queuedWaiters = queued.map((lsn) => track(wal.waitDurable(lsn)));
      const syncAll = track(wal.sync());

      await turns(20);
      await new Promise((r) => setTimeout(r, 20));
      for (const t of [...batchWaiters, ...queuedWaiters, syncAll, next]) expect(t.outcome.state).toBe('pending');
      expect(wal.durableLsn).toBe(durableBefore);
      expect(events).toEqual([]);
      let readable = 0;
      for await (const r of wal.read()) readable = r.lsn;
      expect(readable, 'read() shows durable records only').toBe(durableBefore);

      gate.resolve();
      await Promise.all([...batchWaiters, ...queuedWaiters, syncAll, next].map((t) => t.promise));
      const batchLast = batch[batch.length - 1] as number;
      batchWaiters.forEach((t, i) => {
        expect(t.outcome).toMatchObject({ state: 'resolved' });
        if (t.outcome.state === 'resolved') expect(t.outcome.value).toBeGreaterThanOrEqual(batch[i] as number);
      });
      expect(next.outcome).toEqual({ state: 'resolved', value: batchLast });
      expect(events[0]).toBe(batchLast);
      expect(events[events.length - 1]).toBe(queued[queued.length - 1]);
      expect(wal.durableLsn).toBe(m.log.lastLsn);
      await wal.close();
      fault.clearFaults();
      await (await m.reopenAndVerify(m.log.lastLsn)).close();
    });
  }
});

/**
 * Segment recycling under faults: the rename of a freed segment to its free name and the directory
 * sync after it (truncateBefore), and the first commit into a recycled file (a roll). Each fault fails
 * what it belongs to and nothing else is lost: the disk after a power loss and a reopen both hold every
 * acknowledged record from where the log starts, and a free file is never overwritten before its
 * rename was durable.
 */
describe('segment recycling under injected I/O faults', () => {
  const RECYCLE_DIR = '/data/recycled';
  const RECYCLE_SEGMENT_BYTES = 4096;

  async function openRecycling(fault: FaultFileSystem, recycleSegments = 2): Promise<Wal> {
    return Wal.open({ dir: RECYCLE_DIR, fs: fault, segmentSizeBytes: RECYCLE_SEGMENT_BYTES, recycleSegments });
  }

  /** Appends `count` 100-byte records as one batch and awaits them (rejects with the batch's failure). */
  async function batch(wal: Wal, log: ExpectedLog, count: number): Promise<void> {
    const lsns: number[] = [];
    for (let i = 0; i < count; i++) {
      const payload = patternBytes((wal.lastLsn + 1) * 31, 100);
      const lsn = wal.append(payload);
      log.set(lsn, payload);
      lsns.push(lsn);
    }
    await Promise.all(lsns.map((lsn) => wal.waitDurable(lsn)));
  }

  /** Three segments, each zero-filled to its full size before its roll (so each can be recycled). */
  async function threeSegments(fault: FaultFileSystem, log: ExpectedLog): Promise<Wal> {
    const wal = await openRecycling(fault);
    while (wal.stats().segments < 3) await batch(wal, log, 4);
    return wal;
  }

  async function verifyAfter(mem: MemoryFileSystem, fault: FaultFileSystem, log: ExpectedLog, mustSurviveLsn: number, truncatedBeforeLsn: number): Promise<void> {
    const afterPowerLoss = await Wal.open({ dir: RECYCLE_DIR, fs: mem.crash({ keepUnsynced: 'none' }), segmentSizeBytes: RECYCLE_SEGMENT_BYTES, recycleSegments: 2 });
    await verifyLog(afterPowerLoss, (lsn) => log.get(lsn), { mustSurviveLsn, lastAppendedLsn: log.lastLsn, truncatedBeforeLsn });
    await afterPowerLoss.close();
    fault.clearFaults();
    const reopened = await openRecycling(fault);
    const lastLsn = await verifyLog(reopened, (lsn) => log.get(lsn), { mustSurviveLsn, lastAppendedLsn: log.lastLsn, truncatedBeforeLsn });
    log.truncateAfter(lastLsn);
    // The reopened log takes writes, through rolls into recycled files too.
    const recycledBefore = reopened.stats().segmentsRecycled;
    while (reopened.stats().segmentsRecycled === recycledBefore) {
      await batch(reopened, log, 8);
      await reopened.truncateBefore(reopened.durableLsn);
    }
    await reopened.close();
    const last = await openRecycling(fault);
    await verifyLog(last, (lsn) => log.get(lsn), { mustSurviveLsn: log.lastLsn, lastAppendedLsn: log.lastLsn, truncatedBeforeLsn: log.lastLsn });
    await last.close();
  }

  for (const errno of ERRNOS) {
    for (const op of ['rename', 'syncDir'] as const) {
      it(`${errno} on the ${op === 'rename' ? 'rename of a freed segment to its free name' : 'directory sync after that rename'}: truncateBefore rejects with WAL_FAILED, the file is never reused, nothing acknowledged is lost`, async () => {
        const mem = new MemoryFileSystem();
        const fault = new FaultFileSystem(mem);
        const log = new ExpectedLog();
        const wal = await threeSegments(fault, log);
        const truncatedBeforeLsn = wal.durableLsn;
        fault.inject({ op, error: errno });
        const err = await wal.truncateBefore(truncatedBeforeLsn).then(() => null, (e: unknown) => e);
        expectWalFailed(err, errno, op);
        fault.clearFaults();
        // The log goes on; the file whose rename failed (or is not known durable) is never overwritten.
        while (wal.stats().segmentsCreated < 6) await batch(wal, log, 8);
        expect(wal.stats().segmentsRecycled).toBe(0);
        await wal.close();
        await verifyAfter(mem, fault, log, log.lastLsn, truncatedBeforeLsn);
      });
    }
    for (const op of ['writev', 'datasync'] as const) {
      it(`${errno} on the ${op} of the first commit into a recycled file: that batch gets WAL_FAILED, nothing acknowledged is lost, the reopened log reuses the file`, async () => {
        const mem = new MemoryFileSystem();
        const fault = new FaultFileSystem(mem);
        const log = new ExpectedLog();
        const wal = await threeSegments(fault, log);
        const truncatedBeforeLsn = wal.durableLsn;
        expect(await wal.truncateBefore(truncatedBeforeLsn)).toBe(2);
        fault.inject({ op, path: /\.free$/, error: errno });
        let failure: unknown = null;
        let ackedLsn = wal.durableLsn;
        while (failure === null) {
          try {
            await batch(wal, log, 8);
            ackedLsn = wal.durableLsn;
          } catch (e) {
            failure = e;
          }
        }
        expectWalFailed(failure, errno, op);
        expect(wal.durableLsn).toBe(ackedLsn);
        expect(wal.stats().segmentsRecycled).toBe(0);
        await wal.close().catch(() => {});
        await verifyAfter(mem, fault, log, ackedLsn, truncatedBeforeLsn);
      });
    }
  }
});
