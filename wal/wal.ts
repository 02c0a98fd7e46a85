/**
 * Wal: the facade. An append-only, segmented write-ahead log with group commit.
 *
 *   append(payload) -> LSN      encodes and places the record in shared memory; no I/O, NOT durable yet
 *   waitDurable(lsn) / sync()   resolve once fdatasync has returned for a batch holding the record
 *   appendDurable(payload)      both: resolves with the LSN once it is durable
 *
 * One commit (writev + fdatasync: one trip to the commit worker, or with syncMode 'inline' two
 * synchronous calls on this thread) is in flight at a time; everything
 * appended meanwhile rides the next one (FlushScheduler). A failed write or sync poisons the log:
 * every waiter and every later call gets WAL_FAILED until the WAL is closed and reopened, and the failed
 * sync is never retried. The mechanics live beside this file, one concept each:
 *   open-log.ts        lock, temp sweep, recovery (recovery.ts) and torn-tail repair (repair.ts) on open
 *   staging.ts         records encoded at append, placed in segments, frozen into a batch per flush
 *   segment-writer.ts  a batch to disk: commits, segment rolls (prepared by segment-preparer.ts)
 *   retention.ts       holds and truncateBefore
 *   reader.ts          read, readBatches, readRaw (recovery and reads check small records' CRCs in C: crc-walk.ts)
 *   limits.ts          every limit, with its unit; options.ts: every option, with its default
 * The on-disk format is drawn in format.ts and record/format.ts; recovery's decision table is in recovery.ts.
 */
import { EventEmitter } from 'node:events';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import type { FileLock } from '../fs/file-system.js';
import type { Logger } from '../core/logger.js';
import { knownOptionsOnly } from '../core/check.js';
import { checkLsnArgument } from '../core/lsn.js';
import { FlushScheduler, checkWaitOptions, type WaitOptions } from './flush-scheduler.js';
import { READ_CHUNK_BYTES, READ_CHUNK_BYTES_MIN } from './limits.js';
import { wrapIoError } from './io-error.js';
import { openLogDirectory, type OpenedLog, type RecoveryInfo } from './open-log.js';
import { payloadBytesMax, walDefaults, type ResolvedWalOptions, type WalOptions } from './options.js';
import { readSegmentBatches, readSegmentRaw, type RawSpan, type SegmentScan, type WalRecord } from './reader.js';
import { Retention } from './retention.js';
import type { SegmentRecycler } from './segment-recycler.js';
import { SegmentWriter, type Segment } from './segment-writer.js';
import { Staging, type Piece } from './staging.js';
import { recordCrcFiller } from '../fs/page-cache.js';
import { crcAddonRecordBytesMax } from './crc-walk.js';
import type { RawReadOptions, ReadOptions, WalEvents, WalStats, WalStatus } from './types.js';

export type { RawReadOptions, ReadOptions, WalEvents, WalStats, WalStatus } from './types.js';
export type { RecoveryInfo } from './open-log.js';

/** The default of every wait: no timeout, no signal (shared, so the hot path checks nothing). */
const NO_WAIT_OPTIONS: WaitOptions = Object.freeze({});

const READ_OPTION_NAMES: readonly (keyof RawReadOptions)[] = ['fromLsn', 'toLsn'];
const RAW_READ_OPTION_NAMES: readonly (keyof RawReadOptions)[] = ['fromLsn', 'toLsn', 'chunkBytesMax'];

export class Wal extends EventEmitter<WalEvents> {
  readonly dir: string;
  readonly recovery: RecoveryInfo;
  readonly #o: ResolvedWalOptions;
  readonly #lock: FileLock;
  readonly #staging: Staging;
  readonly #scheduler: FlushScheduler;
  readonly #writer: SegmentWriter;
  readonly #retention: Retention;
  readonly #recycler: SegmentRecycler;
  readonly #payloadBytesMax: number;
  readonly #log: Logger | undefined;

  #status: WalStatus = 'opening';
  #lastLsn: number;
  #frozen: Piece[] = [];
  #closing: Promise<void> | null = null;
  #appends = 0;
  #segmentsHandedOver = 0;
  #appendedBytes = 0;

  private constructor(o: ResolvedWalOptions, opened: OpenedLog) {
    super();
    const { lock, segments, current, tail, recovery, recycler } = opened;
    this.#o = o;
    this.dir = o.dir;
    this.#lock = lock;
    this.#log = o.logger;
    this.recovery = recovery;
    // An empty directory starts at options.firstLsn (1 unless a restore says otherwise).
    this.#lastLsn = segments.length === 0 ? o.firstLsn - 1 : recovery.lastLsn;
    this.#payloadBytesMax = payloadBytesMax(o.segmentSizeBytes);
    const last = segments[segments.length - 1];
    this.#staging = new Staging(o.segmentSizeBytes, o.stagingChunkBytes, {
      segmentFirstLsn: last?.firstLsn ?? 0,
      salt: last?.salt ?? 0,
      offset: last ? tail.offset : 0,
      // A segment is zero-filled in steps (segment-preparer.ts): its file may be shorter than the segment.
      // A recycled one (version 3) never grows: its end markers are written against its file's size, and
      // zeros past it would leave old bytes where recovery looks for a marker (segmentSizeBytes raised).
      capacityBytes: last ? (last.recycledSizeBytes > 0 ? last.recycledSizeBytes : Math.max(tail.capacityBytes, o.segmentSizeBytes)) : 0,
    }, o.random, recordCrcFiller(), crcAddonRecordBytesMax());
    this.#writer = new SegmentWriter(
      {
        fs: o.fs,
        dir: o.dir,
        segmentSizeBytes: o.segmentSizeBytes,
        syncMethod: o.syncMethod,
        syncMode: o.syncMode,
        commitWait: o.commitWait,
        fsyncLatencyMsWarn: o.fsyncLatencyMsWarn,
        dropCacheBehind: o.dropCacheBehind,
        logger: o.logger,
        onSlowCommit: (info) => this.emit('slowSync', info),
      },
      segments,
      current,
      recycler,
    );
    this.#retention = new Retention(o.fs, o.dir, segments, recycler);
    this.#recycler = recycler;
    this.#scheduler = new FlushScheduler({
      source: { freeze: () => this.#freeze(), write: (target) => this.#write(target) },
      durableLsn: this.#lastLsn,
      commitDelayMs: o.commitDelayMs,
      waitersCountMax: o.waitersCountMax,
      // Only where the commit runs on another thread: an inline commit blocks the loop, so nothing overlaps it.
      pipeline: o.syncMode === 'worker' ? o.pipelineCommits : 'off',
      sticky: true,
      what: 'durable',
      failureError: (cause) => {
        const e = cause as NodeJS.ErrnoException;
        const err = new FlushpointError(ErrorCode.WAL_FAILED, `WAL write failed; the log refuses writes until reopened: ${e?.message ?? String(cause)}`, {
          cause,
          file: e?.path,
          lsn: this.#scheduler.durableLsn + 1,
        });
        this.#failed(err);
        return err;
      },
      onFlushed: (r) => this.emit('durable', r.toLsn),
    });
    this.#status = 'open';
  }

  /** Opens (creating if needed) the WAL in options.dir, recovering what is on disk. */
  static async open(options: WalOptions): Promise<Wal> {
    const o = walDefaults(options);
    const opened = await openLogDirectory(o);
    o.logger?.info({ dir: o.dir, ...opened.recovery }, 'wal opened');
    const wal = new Wal(o, opened);
    try {
      // A new log needs its first segment before its first commit: prepare it now, not on the commit
      // path. Otherwise the last segment goes on being zero-filled in steps from its file's size
      // (tail.capacityBytes), and the next one is prepared once it is half full.
      if (opened.segments.length === 0) await wal.#writer.preparer.ready();
      else {
        const last = opened.segments[opened.segments.length - 1] as Segment;
        // A recycled segment is full size already: nothing to fill (and it must not grow, see above).
        wal.#writer.preparer.adopt(last.recycledSizeBytes > 0 ? Number.POSITIVE_INFINITY : opened.tail.capacityBytes, opened.tail.offset);
        if (opened.tail.offset * 2 >= o.segmentSizeBytes) wal.#writer.preparer.prepareAhead();
      }
      return wal;
    } catch (err) {
      // Nothing may stay open after a failed open: a prepared segment, the last segment's handle, the lock.
      await wal.#writer.close();
      wal.#staging.dispose(); // nothing was committed: its chunk goes back for the next log (a retry)
      await opened.lock.release().catch(() => {});
      throw wrapIoError(err, `recovery of ${o.dir}`);
    }
  }

  get status(): WalStatus {
    return this.#status;
  }

  /** Last LSN assigned (0: none). */
  get lastLsn(): number {
    return this.#lastLsn;
  }

  /** Every LSN <= this is durable. */
  get durableLsn(): number {
    return this.#scheduler.durableLsn;
  }

  /** Lowest LSN still in the log (0: the log holds no records). */
  get firstLsn(): number {
    return this.#writer.segments[0]?.firstLsn ?? 0;
  }

  /** Payload bytes appended since open, and records appended since open (cheap counters; stats() has more). */
  get appendedBytes(): number {
    return this.#appendedBytes;
  }

  get appends(): number {
    return this.#appends;
  }

  /** Largest payload one record can carry with this segment size. */
  get payloadBytesMax(): number {
    return this.#payloadBytesMax;
  }

  /** Throws what a call on a log that is not open gets: its failure (WAL_FAILED), or WAL_CLOSED. */
  #checkOpen(): void {
    if (this.#status === 'open') return;
    const failure = this.#scheduler.failure;
    if (this.#status === 'failed' && failure) throw failure;
    throw new FlushpointError(ErrorCode.WAL_CLOSED, `WAL ${this.dir} is ${this.#status}`);
  }

  /** After close() began, every call but stats() and close() gets WAL_CLOSED (a closed log answers nothing). */
  #checkNotClosed(): void {
    if (this.#status === 'closing' || this.#status === 'closed') throw new FlushpointError(ErrorCode.WAL_CLOSED, `WAL ${this.dir} is ${this.#status}`);
  }

  /** The log failed: one error-level line with the error itself, and the status says so. */
  #failed(err: FlushpointError): void {
    if (this.#status !== 'open') return;
    this.#status = 'failed';
    this.#log?.error({ err, dir: this.dir, durableLsn: this.#scheduler.durableLsn, lastLsn: this.#lastLsn }, 'WAL failed; it refuses writes until closed and reopened');
  }

  /**
   * Assigns the next LSN to payload and stages it. No I/O: the LSN returned is NOT durable yet. Wait
   * with waitDurable(lsn) or sync(), or use appendDurable(), which does both.
   */
  append(payload: Uint8Array): number {
    if (!(payload instanceof Uint8Array)) throw new TypeError(`payload must be a Uint8Array, got ${payload === null ? 'null' : typeof payload}`);
    this.#checkOpen();
    if (payload.byteLength > this.#payloadBytesMax) {
      throw new FlushpointError(
        ErrorCode.RECORD_TOO_LARGE,
        `record of ${payload.byteLength} bytes does not fit a segment of ${this.#o.segmentSizeBytes} bytes (payload limit ${this.#payloadBytesMax})`,
        { lsn: this.#lastLsn + 1 },
      );
    }
    const lsn = this.#lastLsn + 1;
    assert(Number.isSafeInteger(lsn), 'LSN overflow');
    this.#staging.add(lsn, payload);
    this.#lastLsn = lsn;
    this.#appends++;
    this.#appendedBytes += payload.byteLength;
    this.#scheduler.request(lsn);
    return lsn;
  }

  /**
   * Appends payload and resolves with its LSN once it is durable: append() and waitDurable() in one
   * call. A timeout or an abort ends this caller's wait only: the record stays appended and is still
   * made durable by the next commit (as with waitDurable). An already-aborted signal appends nothing.
   */
  appendDurable(payload: Uint8Array, options: WaitOptions = NO_WAIT_OPTIONS): Promise<number> {
    let lsn: number;
    try {
      checkWaitOptions(options);
      if (options.signal?.aborted) return Promise.reject(options.signal.reason);
      lsn = this.append(payload);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.waitDurable(lsn, options).then(() => lsn);
  }

  /**
   * Resolves with the durable LSN once `lsn` is durable. Rejects with WAL_CLOSED once close() began
   * (records it makes durable meanwhile still are), and with WAL_FAILED after a failure.
   */
  waitDurable(lsn: number, options: WaitOptions = NO_WAIT_OPTIONS): Promise<number> {
    try {
      checkLsnArgument(lsn, 'lsn');
      if (lsn > this.#lastLsn) throw new RangeError(`LSN ${lsn} has not been assigned (last LSN ${this.#lastLsn})`);
      // The hot path (no options) allocates nothing here.
      if (options !== NO_WAIT_OPTIONS) checkWaitOptions(options);
      if (options.signal?.aborted) return Promise.reject(options.signal.reason);
      this.#checkNotClosed();
    } catch (err) {
      return Promise.reject(err);
    }
    if (lsn <= this.#scheduler.durableLsn) return Promise.resolve(this.#scheduler.durableLsn);
    if ((options.timeoutMs === undefined || options.timeoutMs === Number.POSITIVE_INFINITY) && options.signal === undefined) return this.#scheduler.waitShared(lsn);
    return this.#scheduler.wait(lsn, options);
  }

  /** Makes everything appended so far durable; resolves with the durable LSN. As waitDurable after close. */
  sync(options: WaitOptions = NO_WAIT_OPTIONS): Promise<number> {
    return this.waitDurable(this.#lastLsn, options);
  }

  /** Resolves at the next advance of durableLsn, with its new value. */
  nextDurable(options: { signal?: AbortSignal } = {}): Promise<number> {
    try {
      if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
      knownOptionsOnly(options, ['signal'], 'nextDurable');
      checkWaitOptions(options);
      this.#checkNotClosed();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#scheduler.waitNext(options);
  }

  /**
   * Durable records in LSN order, from fromLsn (default firstLsn) to toLsn (default durableLsn at the
   * call). fromLsn must be in [1, lastLsn + 1]; from durableLsn + 1 (a tail that is not durable yet) the
   * read yields nothing. Below firstLsn: RangeError. Segments deleted by truncateBefore while the read
   * runs: WAL_TRUNCATED (hold the LSN to keep them).
   */
  read(options: ReadOptions = {}): AsyncIterable<WalRecord> {
    const batches = this.readBatches(options);
    return {
      async *[Symbol.asyncIterator]() {
        for await (const batch of batches) yield* batch;
      },
    };
  }

  /** As read(), in batches of consecutive records (one per large read): one await per batch. */
  readBatches(options: ReadOptions = {}): AsyncIterable<WalRecord[]> {
    return this.#scan(options, READ_OPTION_NAMES, (scan) => readSegmentBatches(scan));
  }

  /**
   * Durable records as runs of raw bytes, framed and checksummed exactly as on disk (format.ts), each
   * run at most chunkBytesMax long unless one record is longer. Every record is verified first.
   */
  readRaw(options: RawReadOptions = {}): AsyncIterable<RawSpan> {
    const chunkBytesMax = options?.chunkBytesMax ?? READ_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytesMax) || chunkBytesMax < READ_CHUNK_BYTES_MIN) {
      throw new RangeError(`chunkBytesMax must be an integer >= ${READ_CHUNK_BYTES_MIN}, got ${chunkBytesMax}`);
    }
    return this.#scan(options, RAW_READ_OPTION_NAMES, (scan) => readSegmentRaw(scan, chunkBytesMax));
  }

  #scan<T>(options: ReadOptions, known: readonly string[], perSegment: (scan: SegmentScan) => AsyncIterable<T>): AsyncIterable<T> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    knownOptionsOnly(options, known, 'read options');
    const durable = this.#scheduler.durableLsn;
    const fromLsn = options.fromLsn === undefined ? Math.max(1, this.firstLsn) : checkLsnArgument(options.fromLsn, 'fromLsn');
    const toLsn = Math.min(options.toLsn === undefined ? durable : checkLsnArgument(options.toLsn, 'toLsn'), durable);
    this.#checkNotClosed();
    if (fromLsn === 0) throw new RangeError('fromLsn must be >= 1: LSNs start at 1 (0 means "nothing")');
    if (fromLsn > this.#lastLsn + 1) throw new RangeError(`fromLsn ${fromLsn} is past the end of the log (last LSN ${this.#lastLsn})`);
    if (fromLsn <= toLsn && fromLsn < this.firstLsn) {
      throw new RangeError(`LSN ${fromLsn} is no longer in the log (first LSN ${this.firstLsn})`);
    }
    const live = this.#writer.segments;
    const segments = live.slice();
    const fs = this.#o.fs;
    const dir = this.dir;
    return {
      async *[Symbol.asyncIterator]() {
        if (fromLsn > toLsn) return;
        for (let i = 0; i < segments.length; i++) {
          const seg = segments[i] as Segment;
          const nextFirst = segments[i + 1]?.firstLsn ?? Number.POSITIVE_INFINITY;
          if (nextFirst <= fromLsn) continue;
          if (seg.firstLsn > toLsn) return;
          const from = Math.max(fromLsn, seg.firstLsn);
          yield* perSegment({
            fs,
            path: `${dir}/${seg.name}`,
            segmentFirstLsn: seg.firstLsn,
            salt: seg.salt,
            endOffset: seg.endOffset,
            start: seg.index.seek(from),
            fromLsn: from,
            toLsn: Math.min(toLsn, nextFirst - 1),
            // Retention removes segments from the front only.
            truncated: () => (live[0]?.firstLsn ?? Number.POSITIVE_INFINITY) > seg.firstLsn,
          });
        }
      },
    };
  }

  /**
   * Retention: keeps every record at or above `lsn` (truncateBefore never deletes them) until
   * release(name); a second hold under the same name replaces the first. WAL_TRUNCATED when `lsn` is below firstLsn: those
   * records are gone already (or being deleted by a truncation that runs), and nothing is held.
   */
  hold(name: string, lsn: number): void {
    this.#checkNotClosed(); // as every call but stats(), close() and release() (a no-op once closed)
    this.#retention.hold(name, lsn);
  }

  release(name: string): void {
    this.#retention.release(name);
  }

  /**
   * Deletes whole segments whose records are all below min(lsn, every hold), oldest first, never the
   * last segment; resolves with how many. Holds are read again before each deletion, and each unlink
   * is made durable before the next (retention.ts).
   */
  truncateBefore(lsn: number): Promise<number> {
    try {
      checkLsnArgument(lsn, 'lsn');
      this.#checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#retention.truncate(lsn, () => this.#scheduler.durableLsn);
  }

  stats(): WalStats {
    const w = this.#writer;
    return {
      status: this.#status,
      firstLsn: this.firstLsn,
      lastLsn: this.#lastLsn,
      durableLsn: this.#scheduler.durableLsn,
      appends: this.#appends,
      appendedBytes: this.#appendedBytes,
      syncs: w.commits,
      syncedBytes: w.committedBytes,
      batches: this.#scheduler.flushesRun,
      pipelinedBatches: this.#scheduler.pipelining.flushes,
      recordsPerSync: w.commits === 0 ? 0 : this.#appends / w.commits,
      bytesPerSync: w.commits === 0 ? 0 : w.committedBytes / w.commits,
      syncLatency: w.commitLatency,
      slowSyncs: w.slowCommits,
      segments: w.segments.length,
      segmentsCreated: w.segmentsCreated,
      segmentsDeleted: this.#retention.segmentsDeleted,
      segmentsRecycled: this.#recycler.recycled,
      segmentsFree: this.#recycler.freeCount,
      preallocStalls: w.preparer.unprepared,
      segmentsHandedOver: this.#segmentsHandedOver,
      pageCacheDroppedBytes: w.dropper.droppedBytes,
      pendingRecords: this.#staging.pendingRecords,
      pendingBytes: this.#staging.pendingBytes,
      waiters: this.#scheduler.waitersCount,
      holds: this.#retention.holds,
      failure: this.#scheduler.failure?.message ?? null,
      recovery: this.recovery,
    };
  }

  /**
   * Makes what was appended durable (unless the log failed), then releases every file and the lock.
   * Rejects with WAL_FAILED when something appended did not become durable (the files and the lock are
   * released all the same): a resolved close() means every appended record is durable. A reader
   * (read(), readRaw()) started before close() owns its segment's file handle until it finishes or is
   * returned (break out of its loop): it goes on reading what is on disk.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#status = 'closing';
    // The final flush. No waiter is added (close must not be refused by waitersCountMax): ask for a
    // flush and wait until the scheduler is idle, until all is durable or the log has failed.
    while (!this.#scheduler.failure && this.#lastLsn > this.#scheduler.durableLsn) {
      const before = this.#scheduler.durableLsn;
      this.#scheduler.request();
      await this.#scheduler.idle();
      assert(this.#scheduler.durableLsn > before || this.#scheduler.failure !== null, 'a final flush advances the durable LSN or fails');
    }
    await this.#scheduler.idle();
    const notDurable = this.#lastLsn > this.#scheduler.durableLsn;
    const failure = this.#scheduler.failure;
    this.#scheduler.fail(new FlushpointError(ErrorCode.WAL_CLOSED, `WAL ${this.dir} is closed`));
    await this.#retention.idle();
    try {
      await this.#writer.close();
    } finally {
      // Nothing of this log is in flight now: its staging chunks go to the next log this process opens.
      this.#staging.dispose();
    }
    try {
      await this.#lock.release();
    } finally {
      this.#status = 'closed';
      this.removeAllListeners();
    }
    if (notDurable) {
      assert(failure !== null, 'records stay not durable only after a failure');
      throw failure;
    }
  }

  // ---- flush source ----

  #freeze(): number {
    // Ordering rule: the scheduler released no waiter yet for this flush. It keys them by LSN and
    // releases only those <= the target returned here, whose records are all in the pieces taken now.
    this.#frozen = this.#staging.freeze();
    // A segment still zero-filling in its own file ends here when its next file is filled: the next
    // append starts that segment (segment-preparer.ts, handOverDue). Only when the segment staged into is
    // the one written (no roll staged and not yet written), which is the one handOverDue speaks of.
    if (this.#staging.segmentFirstLsn === this.#writer.segments.at(-1)?.firstLsn && this.#writer.preparer.handOverDue() && this.#staging.endSegment()) {
      this.#segmentsHandedOver++;
    }
    const first = this.#frozen[0];
    if (first) {
      assert(first.firstLsn === this.#scheduler.durableLsn + 1, `batch starts at ${first.firstLsn}, durable ${this.#scheduler.durableLsn}`);
      assert((this.#frozen[this.#frozen.length - 1] as Piece).lastLsn === this.#lastLsn, 'batch ends at the last LSN');
    }
    return this.#lastLsn;
  }

  #write(targetLsn: number): Promise<void> {
    const pieces = this.#frozen;
    this.#frozen = [];
    // Written, or failed for good (the log is poisoned): either way nothing reads these chunks again.
    const release = (): void => this.#staging.release(pieces);
    let written: Promise<void>;
    try {
      written = this.#writer.write(pieces, this.#scheduler.durableLsn + 1, targetLsn);
    } catch (err) {
      release();
      return Promise.reject(err);
    }
    return written.then(release, (err: unknown) => {
      release();
      throw err;
    });
  }
}
