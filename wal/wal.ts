/**
 * Wal: the facade. An append-only, segmented write-ahead log with group commit.
 *
 *   append(payload) -> LSN      encodes and places the record in shared memory; no I/O
 *   waitDurable(lsn) / sync()   resolve once fdatasync has returned for a batch holding the record
 *
 * One commit (writev + fdatasync, one trip to the commit worker) is in flight at a time; everything
 * appended meanwhile rides the next one (FlushScheduler). A failed write or sync poisons the log:
 * every waiter and every later call gets WAL_FAILED until the WAL is closed and reopened, and the failed
 * sync is never retried. Segment files are preallocated ahead of need (SegmentPreparer) and named only
 * once their first batch is durable; the directory is fsynced after every create, rename and unlink.
 * The on-disk format is drawn in format.ts; recovery's decision table is in recovery.ts.
 */
import { EventEmitter } from 'node:events';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import type { FileHandle, FileLock, FileSystem } from '../fs/file-system.js';
import { publishFileDurably, sweepTempFiles } from '../fs/durable-publish.js';
import { FlushScheduler, checkWaitOptions, type WaitOptions } from './flush-scheduler.js';
import { SEGMENT_NAME_RE, segmentName } from './format.js';
import { LatencyRecorder, type LatencySummary } from '../core/latency.js';
import { checkLsnArgument } from '../core/lsn.js';
import { payloadBytesMax, walDefaults, type ResolvedWalOptions, type WalOptions } from './options.js';
import type { Logger } from '../core/logger.js';
import { READ_CHUNK_BYTES_MIN } from './limits.js';
import { knownOptionsOnly } from '../core/check.js';
import { READ_CHUNK_BYTES, readSegmentBatches, readSegmentRaw, type RawSpan, type SegmentScan, type WalRecord } from './reader.js';
import { recoverSegments, type TornTail } from './recovery.js';
import { SegmentIndex } from './segment-index.js';
import { SegmentPreparer } from './segment-preparer.js';
import { Staging, type Piece } from './staging.js';

/**
 * 'failed': a write or sync failed; the log refuses appends and waits (WAL_FAILED) until closed and
 * reopened. close() moves every status to 'closing', then 'closed'.
 */
export type WalStatus = 'opening' | 'open' | 'failed' | 'closing' | 'closed';

export interface WalEvents {
  durable: [durableLsn: number];
  slowSync: [info: { durationMs: number; bytes: number; file: string }];
}

export interface ReadOptions {
  /** First LSN to read, in [1, lastLsn + 1]. Default firstLsn. */
  fromLsn?: number;
  /** Last LSN to read (capped at durableLsn at the call). Default durableLsn. */
  toLsn?: number;
}

export interface RawReadOptions extends ReadOptions {
  /** Longest run of records per span, in bytes (one record longer than this is a span of its own). Default 1 MiB. */
  chunkBytesMax?: number;
}

const READ_OPTION_NAMES: readonly (keyof RawReadOptions)[] = ['fromLsn', 'toLsn'];
const RAW_READ_OPTION_NAMES: readonly (keyof RawReadOptions)[] = ['fromLsn', 'toLsn', 'chunkBytesMax'];

export interface RecoveryInfo {
  segments: number;
  bytesScanned: number;
  durationMs: number;
  lastLsn: number;
  /** The torn tail that was cut, if any (a copy of its bytes is kept as <segment>.torn). */
  tornTail: TornTail | null;
}

export interface WalStats {
  status: WalStatus;
  firstLsn: number;
  lastLsn: number;
  durableLsn: number;
  /** Records appended since open. */
  appends: number;
  appendedBytes: number;
  /** Commits (one writev + one fdatasync each) since open. */
  syncs: number;
  syncedBytes: number;
  /** Flushes (a flush is one batch; it is more than one commit when it crosses into a new segment). */
  batches: number;
  recordsPerSync: number;
  bytesPerSync: number;
  syncLatency: LatencySummary;
  slowSyncs: number;
  segments: number;
  segmentsCreated: number;
  segmentsDeleted: number;
  /** Times a roll found the next segment not yet zero-filled and started it as a growing file instead. */
  preallocStalls: number;
  pendingRecords: number;
  pendingBytes: number;
  waiters: number;
  holds: Record<string, number>;
  failure: string | null;
  recovery: RecoveryInfo;
}

interface Segment {
  name: string;
  firstLsn: number;
  lastLsn: number;
  /** Bytes of durable data in the file (header included): reads stop there. */
  endOffset: number;
  index: SegmentIndex;
}

const LOCK_NAME = 'LOCK';

function wrapIoError(err: unknown, what: string): unknown {
  if (err instanceof FlushpointError || err instanceof TypeError || err instanceof RangeError) return err;
  const e = err as NodeJS.ErrnoException;
  return new FlushpointError(ErrorCode.WAL_FAILED, `WAL ${what} failed: ${e?.message ?? String(err)}`, { cause: err, file: e?.path });
}

export class Wal extends EventEmitter<WalEvents> {
  readonly dir: string;
  readonly #o: ResolvedWalOptions;
  readonly #fs: FileSystem;
  readonly #lock: FileLock;
  readonly #staging: Staging;
  readonly #scheduler: FlushScheduler;
  readonly #preparer: SegmentPreparer;
  readonly #segments: Segment[];
  readonly #holds = new Map<string, number>();
  readonly #syncLatency = new LatencyRecorder();
  readonly #payloadBytesMax: number;
  readonly #log: Logger | undefined;
  readonly recovery: RecoveryInfo;

  #status: WalStatus = 'opening';
  #current: FileHandle | null;
  #lastLsn: number;
  #frozen: Piece[] = [];
  #closing: Promise<void> | null = null;
  #truncating: Promise<void> = Promise.resolve();
  #appends = 0;
  #appendedBytes = 0;
  #syncs = 0;
  #syncedBytes = 0;
  #slowSyncs = 0;
  #segmentsCreated = 0;
  #segmentsDeleted = 0;

  private constructor(o: ResolvedWalOptions, lock: FileLock, segments: Segment[], current: FileHandle | null, tail: { offset: number; capacityBytes: number }, recovery: RecoveryInfo) {
    super();
    this.#o = o;
    this.dir = o.dir;
    this.#fs = o.fs;
    this.#lock = lock;
    this.#log = o.logger;
    this.#segments = segments;
    this.#current = current;
    this.recovery = recovery;
    // An empty directory starts at options.firstLsn (1 unless a restore says otherwise).
    this.#lastLsn = segments.length === 0 ? o.firstLsn - 1 : recovery.lastLsn;
    this.#payloadBytesMax = payloadBytesMax(o.segmentSizeBytes);
    const last = segments[segments.length - 1];
    this.#staging = new Staging(o.segmentSizeBytes, o.stagingChunkBytes, {
      segmentFirstLsn: last?.firstLsn ?? 0,
      offset: last ? tail.offset : 0,
      capacityBytes: last ? tail.capacityBytes : 0,
    });
    this.#preparer = new SegmentPreparer(o.fs, o.dir, o.segmentSizeBytes);
    this.#scheduler = new FlushScheduler({
      source: { freeze: () => this.#freeze(), write: (target) => this.#write(target) },
      durableLsn: this.#lastLsn,
      commitDelayMs: o.commitDelayMs,
      waitersCountMax: o.waitersCountMax,
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
    const started = performance.now();
    try {
      await o.fs.mkdir(o.dir);
    } catch (err) {
      throw wrapIoError(err, `open of ${o.dir}`);
    }
    let lock: FileLock;
    try {
      lock = await o.fs.lock(`${o.dir}/${LOCK_NAME}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EWOULDBLOCK' || code === 'EAGAIN') {
        throw new FlushpointError(ErrorCode.WAL_LOCKED, `WAL directory ${o.dir} is locked by another process (or another Wal in this one)`, {
          cause: err,
          file: `${o.dir}/${LOCK_NAME}`,
        });
      }
      throw wrapIoError(err, `lock of ${o.dir}`);
    }
    let current: FileHandle | null = null;
    let wal: Wal | null = null;
    try {
      const names = await o.fs.readdir(o.dir);
      await sweepTempFiles(o.fs, o.dir, names);
      const segNames = names.filter((n) => SEGMENT_NAME_RE.test(n)).sort();
      const rec = await recoverSegments(o.fs, o.dir, segNames, o.recovery === 'strict');
      if (rec.torn) await repairTornTail(o.fs, rec.torn, o.logger);
      const segments: Segment[] = rec.segments.map((s) => ({ name: s.name, firstLsn: s.firstLsn, lastLsn: s.lastLsn, endOffset: s.endOffset, index: s.index }));
      const last = rec.segments[rec.segments.length - 1];
      if (last) {
        current = await o.fs.open(`${o.dir}/${last.name}`, 'r+');
        // A previous process may have died between its write and its fdatasync: what we found is
        // durable only after this sync, and only then may it count as durable.
        await current.datasync();
        await o.fs.syncDir(o.dir);
      }
      const recovery: RecoveryInfo = {
        segments: segments.length,
        bytesScanned: rec.bytesScanned,
        durationMs: performance.now() - started,
        lastLsn: rec.lastLsn,
        tornTail: rec.torn,
      };
      await o.fs.warmUp?.();
      o.logger?.info({ dir: o.dir, ...recovery }, 'wal opened');
      wal = new Wal(o, lock, segments, current, { offset: last?.endOffset ?? 0, capacityBytes: last?.fileSizeBytes ?? 0 }, recovery);
      // A new log needs its first segment before its first commit: prepare it now, not on the commit
      // path. Otherwise the next one is prepared once the current one is half full (not at open, where
      // zero-filling 64 MiB would compete with the first commits for the disk).
      if (segments.length === 0) await wal.#preparer.ready();
      else if (last && last.endOffset * 2 >= last.fileSizeBytes) wal.#preparer.prepareAhead();
      return wal;
    } catch (err) {
      // Nothing may stay open after a failed open: the last segment's handle, a prepared segment, the lock.
      if (wal) await wal.#preparer.dispose();
      await current?.close().catch(() => {});
      await lock.release().catch(() => {});
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
    return this.#segments[0]?.firstLsn ?? 0;
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
    this.#scheduler.request();
    return lsn;
  }

  /**
   * Appends payload and resolves with its LSN once it is durable: append() and waitDurable() in one
   * call. A timeout or an abort ends this caller's wait only: the record stays appended and is still
   * made durable by the next commit (as with waitDurable). An already-aborted signal appends nothing.
   */
  appendDurable(payload: Uint8Array, options: WaitOptions = {}): Promise<number> {
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
  waitDurable(lsn: number, options: WaitOptions = {}): Promise<number> {
    try {
      checkLsnArgument(lsn, 'lsn');
      if (lsn > this.#lastLsn) throw new RangeError(`LSN ${lsn} has not been assigned (last LSN ${this.#lastLsn})`);
      checkWaitOptions(options);
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
  sync(options: WaitOptions = {}): Promise<number> {
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
    const segments = this.#segments.slice();
    const fs = this.#fs;
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
            endOffset: seg.endOffset,
            start: seg.index.seek(from),
            fromLsn: from,
            toLsn: Math.min(toLsn, nextFirst - 1),
          });
        }
      },
    };
  }

  /** Retention: nothing at or above a held LSN is deleted by truncateBefore. */
  hold(name: string, lsn: number): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('hold name must be a non-empty string');
    checkLsnArgument(lsn, 'lsn');
    this.#holds.set(name, lsn);
  }

  release(name: string): void {
    this.#holds.delete(name);
  }

  /**
   * Deletes whole segments whose records are all below min(lsn, every hold), oldest first, never the
   * last segment. Holds are read again before each deletion, so a hold taken while it runs is honoured
   * from the next segment on; the directory is fsynced after each unlink, so a power loss leaves a
   * contiguous log (a suffix), never a gap.
   */
  truncateBefore(lsn: number): Promise<number> {
    try {
      checkLsnArgument(lsn, 'lsn');
      this.#checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#truncating.then(() => this.#truncate(lsn));
    this.#truncating = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** The lowest LSN that must stay: min(lsn, durableLsn + 1, every hold), read now. */
  #retainFrom(lsn: number): number {
    let limit = Math.min(lsn, this.#scheduler.durableLsn + 1);
    for (const held of this.#holds.values()) limit = Math.min(limit, held);
    return limit;
  }

  async #truncate(lsn: number): Promise<number> {
    let deleted = 0;
    // Oldest first, one at a time: each unlink is made durable before the next starts.
    while (this.#segments.length > 1 && (this.#segments[1] as Segment).firstLsn <= this.#retainFrom(lsn)) {
      // It leaves the log before the unlink starts: from here on firstLsn no longer counts it, so a hold
      // or a read placed meanwhile sees where the log now begins.
      const seg = this.#segments.shift() as Segment;
      assert(seg.lastLsn < this.#retainFrom(lsn), `segment ${seg.name} holds no retained LSN`);
      try {
        await this.#fs.unlink(`${this.dir}/${seg.name}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw wrapIoError(err, `unlink of ${seg.name}`);
      }
      try {
        await this.#fs.syncDir(this.dir);
      } catch (err) {
        throw wrapIoError(err, `directory sync of ${this.dir} after unlinking ${seg.name}`);
      }
      deleted++;
      this.#segmentsDeleted++;
    }
    return deleted;
  }

  stats(): WalStats {
    const syncLatency = this.#syncLatency.summary();
    return {
      status: this.#status,
      firstLsn: this.firstLsn,
      lastLsn: this.#lastLsn,
      durableLsn: this.#scheduler.durableLsn,
      appends: this.#appends,
      appendedBytes: this.#appendedBytes,
      syncs: this.#syncs,
      syncedBytes: this.#syncedBytes,
      batches: this.#scheduler.flushesRun,
      recordsPerSync: this.#syncs === 0 ? 0 : this.#appends / this.#syncs,
      bytesPerSync: this.#syncs === 0 ? 0 : this.#syncedBytes / this.#syncs,
      syncLatency,
      slowSyncs: this.#slowSyncs,
      segments: this.#segments.length,
      segmentsCreated: this.#segmentsCreated,
      segmentsDeleted: this.#segmentsDeleted,
      preallocStalls: this.#preparer.unprepared,
      pendingRecords: this.#staging.pendingRecords,
      pendingBytes: this.#staging.pendingBytes,
      waiters: this.#scheduler.waitersCount,
      holds: Object.fromEntries(this.#holds),
      failure: this.#scheduler.failure?.message ?? null,
      recovery: this.recovery,
    };
  }

  /**
   * Makes what was appended durable (unless the log failed), then releases every file and the lock.
   * Rejects with WAL_FAILED when something appended did not become durable (the files and the lock are
   * released all the same): a resolved close() means every appended record is durable.
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
    await this.#truncating;
    await this.#preparer.dispose();
    try {
      await this.#current?.close();
    } catch {
      // The descriptor is gone either way.
    }
    this.#current = null;
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
    // The scheduler released no waiter yet for this flush: it keys them by LSN and releases only those
    // <= the target returned here, whose records are all in the pieces taken now.
    this.#frozen = this.#staging.freeze();
    const first = this.#frozen[0];
    if (first) {
      assert(first.firstLsn === this.#scheduler.durableLsn + 1, `batch starts at ${first.firstLsn}, durable ${this.#scheduler.durableLsn}`);
      assert((this.#frozen[this.#frozen.length - 1] as Piece).lastLsn === this.#lastLsn, 'batch ends at the last LSN');
    }
    return this.#lastLsn;
  }

  async #write(targetLsn: number): Promise<void> {
    const pieces = this.#frozen;
    this.#frozen = [];
    try {
      await this.#writePieces(pieces, targetLsn);
    } finally {
      // Written, or failed for good (the log is poisoned): either way nothing reads these chunks again.
      this.#staging.release(pieces);
    }
  }

  /**
   * Commits a piece that starts a segment into the next prepared file, names it and syncs the
   * directory; returns the segment's handle under its real name, having closed the previous segment's.
   * On failure the prepared file's handle is closed before the error goes on, so a failed roll leaks no
   * descriptor (the file itself is a temp file, or already named: the next open sweeps or recovers it).
   */
  async #startSegment(piece: Piece, file: string): Promise<void> {
    const prepared = await this.#preparer.take();
    let named: FileHandle | null = null;
    try {
      await prepared.handle.commit(piece.buffers, 0, this.#o.syncMethod);
      await this.#fs.rename(prepared.path, file);
      await this.#fs.syncDir(this.dir);
      // Reopen under the real name, so every later commit and error names the segment, not the temp.
      named = await this.#fs.open(file, 'r+');
    } finally {
      await prepared.handle.close().catch(() => {});
    }
    const old = this.#current;
    this.#current = named;
    await old?.close();
  }

  async #writePieces(pieces: Piece[], targetLsn: number): Promise<void> {
    let expected = this.#scheduler.durableLsn + 1;
    for (const piece of pieces) {
      assert(piece.firstLsn === expected, `pieces are contiguous: ${piece.firstLsn} != ${expected}`);
      expected = piece.lastLsn + 1;
      const started = performance.now();
      let file: string;
      if (piece.startsSegment) {
        const name = segmentName(piece.segmentFirstLsn);
        file = `${this.dir}/${name}`;
        await this.#startSegment(piece, file);
        this.#segments.push({ name, firstLsn: piece.segmentFirstLsn, lastLsn: piece.lastLsn, endOffset: piece.bytes, index: new SegmentIndex(piece.segmentFirstLsn) });
        this.#segmentsCreated++;
      } else {
        const current = this.#current;
        const seg = this.#segments[this.#segments.length - 1];
        assert(current !== null && seg !== undefined && seg.firstLsn === piece.segmentFirstLsn, 'piece goes to the current segment');
        file = current.path;
        await current.commit(piece.buffers, piece.position, this.#o.syncMethod);
        seg.lastLsn = piece.lastLsn;
        seg.endOffset = piece.position + piece.bytes;
        seg.index.add(piece.firstLsn, piece.position);
      }
      // The next segment is prepared from the moment this one starts (the most time to zero-fill it
      // before it is needed), or, for a segment found at open, once it is half full.
      if (piece.startsSegment || (piece.position + piece.bytes) * 2 >= this.#o.segmentSizeBytes) this.#preparer.prepareAhead();
      const ms = performance.now() - started;
      this.#syncLatency.record(ms);
      this.#syncs++;
      this.#syncedBytes += piece.bytes;
      if (ms >= this.#o.fsyncLatencyMsWarn) {
        this.#slowSyncs++;
        this.#o.logger?.warn({ file, durationMs: ms, bytes: piece.bytes }, 'slow WAL commit');
        this.emit('slowSync', { durationMs: ms, bytes: piece.bytes, file });
      }
    }
    assert(expected === targetLsn + 1, `batch covers up to its target: ${expected - 1} != ${targetLsn}`);
  }
}

/**
 * The name for a copy of cut bytes: `<segment>.torn` for the first cut of a segment, then
 * `<segment>.torn.2`, `.3`, ...: a later cut never overwrites an earlier copy.
 */
async function freeTornName(fs: FileSystem, dir: string, segment: string): Promise<string> {
  const taken = new Set(await fs.readdir(dir));
  let name = `${segment}.torn`;
  for (let n = 2; taken.has(name); n++) name = `${segment}.torn.${n}`;
  return name;
}

/** Keeps a copy of the cut bytes beside the segment (never over an earlier copy), then zeros them in place and syncs. */
async function repairTornTail(fs: FileSystem, torn: TornTail, logger: ResolvedWalOptions['logger']): Promise<void> {
  const handle = await fs.open(torn.file, 'r+');
  let copy: string | null = null;
  try {
    if (torn.bytes > 0) {
      const cut = new Uint8Array(torn.bytes);
      await handle.read(cut, 0, torn.bytes, torn.offset);
      const slash = torn.file.lastIndexOf('/');
      const dir = torn.file.slice(0, slash);
      copy = await freeTornName(fs, dir, torn.file.slice(slash + 1));
      await publishFileDurably(fs, dir, copy, [cut], 'fsync');
      await handle.commit([new Uint8Array(torn.bytes)], torn.offset, 'fsync');
    }
  } finally {
    await handle.close();
  }
  logger?.warn({ ...torn, copy }, 'WAL torn tail cut');
}
