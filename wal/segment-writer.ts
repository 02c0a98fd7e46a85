/**
 * SegmentWriter: where a frozen batch goes to disk. A batch is a list of pieces (staging.ts), one per
 * segment it touches; each piece is one commit (writev + fdatasync, one trip to the commit worker).
 *
 * - A piece in the current segment is committed at its position in the open segment file.
 * - A piece that starts a segment (a roll) is committed into the next prepared file (SegmentPreparer),
 *   which is then renamed to the segment's name and the directory synced: a segment gets its name only
 *   once its first batch is durable in it. It is then reopened under that name, so every later commit
 *   and error names the segment, not the temp file.
 * - A recycled file (segment-recycler.ts) gets the version-3 header in place of the staged version-2
 *   one, and every commit into a version-3 segment carries the end marker (an all-zero record header,
 *   format.ts) right after its records in the same writev, while 24 bytes of the file remain.
 *
 * The writer owns the list of segments (oldest first): it appends at the end; retention removes from the
 * front. It measures every commit and reports slow ones with their duration.
 */
import { assert } from '../core/errors.js';
import { retryOnDescriptorShortage, type CommitWait, type FileHandle, type FileSystem, type SyncMethod } from '../fs/file-system.js';
import type { SyncMode } from './options.js';
import { LatencyRecorder, type LatencySummary } from '../core/latency.js';
import type { Logger } from '../core/logger.js';
import { END_MARKER_BYTES, FORMAT_VERSION_RECYCLED, encodeSegmentHeader, segmentName } from './format.js';
import { CacheDropper } from './cache-dropper.js';
import { SegmentIndex } from './segment-index.js';
import { SegmentPreparer } from './segment-preparer.js';
import type { SegmentRecycler } from './segment-recycler.js';
import type { Piece } from './staging.js';

/** One segment of the log, as the WAL knows it. */
export interface Segment {
  name: string;
  firstLsn: number;
  /** Its salt (wal/format.ts): each of its records carries it. */
  salt: number;
  lastLsn: number;
  /** Bytes of durable data in the file (header included): reads stop there. */
  endOffset: number;
  index: SegmentIndex;
  /** A version-3 segment (written over a recycled file): the file's size, up to which end markers go; 0 for a fresh one. */
  recycledSizeBytes: number;
}

/** The end marker, in shared memory so a commit of staged chunks plus the marker needs no copy (fs/io-worker.ts). */
const END_MARKER = new Uint8Array(new SharedArrayBuffer(END_MARKER_BYTES));

export interface SlowCommit {
  durationMs: number;
  bytes: number;
  file: string;
}

export interface SegmentWriterOptions {
  fs: FileSystem;
  dir: string;
  segmentSizeBytes: number;
  syncMethod: SyncMethod;
  /** 'inline': commits run synchronously on this thread (writevSync + datasyncSync/syncSync). */
  syncMode: SyncMode;
  /** How the loop waits for a commit on the worker (FileHandle.commit's `wait`). */
  commitWait: CommitWait;
  /** A commit slower than this, in ms, is logged and reported through onSlowCommit. */
  fsyncLatencyMsWarn: number;
  /** Drop the page cache of durable bytes well behind the writer (cache-dropper.ts). */
  dropCacheBehind: boolean;
  logger: Logger | undefined;
  onSlowCommit: (info: SlowCommit) => void;
}

export class SegmentWriter {
  /** The log's segments, oldest first. */
  readonly segments: Segment[];
  readonly preparer: SegmentPreparer;
  readonly dropper: CacheDropper;
  readonly #o: SegmentWriterOptions;
  readonly #latency = new LatencyRecorder();
  #current: FileHandle | null;
  #commits = 0;
  #committedBytes = 0;
  #slowCommits = 0;
  #segmentsCreated = 0;

  readonly #recycler: SegmentRecycler;

  constructor(o: SegmentWriterOptions, segments: Segment[], current: FileHandle | null, recycler: SegmentRecycler) {
    assert((segments.length === 0) === (current === null), 'an open segment exactly when the log has one');
    this.#o = o;
    this.segments = segments;
    this.#current = current;
    this.#recycler = recycler;
    this.preparer = new SegmentPreparer(o.fs, o.dir, o.segmentSizeBytes, recycler);
    this.dropper = new CacheDropper(o.fs, o.dropCacheBehind, o.segmentSizeBytes);
  }

  /** Commits (one writev + one sync each) since open. */
  get commits(): number {
    return this.#commits;
  }

  get committedBytes(): number {
    return this.#committedBytes;
  }

  get slowCommits(): number {
    return this.#slowCommits;
  }

  get segmentsCreated(): number {
    return this.#segmentsCreated;
  }

  get commitLatency(): LatencySummary {
    return this.#latency.summary();
  }

  /**
   * Writes the pieces of one batch, in order; they must start at `firstLsn` and end at `targetLsn`.
   * The common batch (one piece in the current segment, no fill step in its way) goes to the commit in
   * this call and settles one microtask after the commit does; anything else takes the general path.
   */
  write(pieces: readonly Piece[], firstLsn: number, targetLsn: number): Promise<void> {
    const piece = pieces.length === 1 ? (pieces[0] as Piece) : undefined;
    const current = this.#current;
    if (piece === undefined || piece.startsSegment || current === null) return this.#writeEach(pieces, firstLsn, targetLsn);
    const seg = this.#currentSegment(piece, current);
    assert(piece.firstLsn === firstLsn && piece.lastLsn === targetLsn, `the batch is its one piece: ${piece.firstLsn}..${piece.lastLsn} != ${firstLsn}..${targetLsn}`);
    const endBytes = piece.position + piece.bytes;
    if (!this.preparer.reserveNow(current, endBytes)) return this.#writeEach(pieces, firstLsn, targetLsn);
    const started = performance.now();
    const done = (): void => {
      this.#committedInCurrent(piece, seg, current.path);
      if (endBytes * 2 >= this.#o.segmentSizeBytes) this.preparer.prepareAhead();
      this.#measure(performance.now() - started, piece.bytes, current.path);
    };
    const committed = this.#commit(current, withEndMarker(piece.buffers, endBytes, seg.recycledSizeBytes), piece.position);
    if (committed === undefined) {
      done();
      return Promise.resolve();
    }
    return committed.then(done);
  }

  async #writeEach(pieces: readonly Piece[], firstLsn: number, targetLsn: number): Promise<void> {
    let expected = firstLsn;
    for (const piece of pieces) {
      assert(piece.firstLsn === expected, `pieces are contiguous: ${piece.firstLsn} != ${expected}`);
      expected = piece.lastLsn + 1;
      const started = performance.now();
      const file = piece.startsSegment ? await this.#startSegment(piece) : await this.#commitInCurrent(piece);
      // The next segment is prepared from the moment this one starts (the most time to zero-fill it
      // before it is needed), or, for a segment found at open, once it is half full.
      if (piece.startsSegment || (piece.position + piece.bytes) * 2 >= this.#o.segmentSizeBytes) this.preparer.prepareAhead();
      this.#measure(performance.now() - started, piece.bytes, file);
    }
    assert(expected === targetLsn + 1, `batch covers up to its target: ${expected - 1} != ${targetLsn}`);
  }

  async #commitInCurrent(piece: Piece): Promise<string> {
    const current = this.#current;
    assert(current !== null, 'piece goes to the current segment');
    const seg = this.#currentSegment(piece, current);
    await this.preparer.reserve(current, piece.position + piece.bytes);
    await this.#commit(current, withEndMarker(piece.buffers, piece.position + piece.bytes, seg.recycledSizeBytes), piece.position);
    this.#committedInCurrent(piece, seg, current.path);
    return current.path;
  }

  /** The segment `piece` continues (the last one, open as `current`), checked. */
  #currentSegment(piece: Piece, current: FileHandle): Segment {
    const seg = this.segments[this.segments.length - 1];
    assert(current === this.#current && seg !== undefined && seg.firstLsn === piece.segmentFirstLsn, 'piece goes to the current segment');
    assert(piece.position === seg.endOffset, `piece continues the segment's data: ${piece.position} != ${seg.endOffset}`);
    return seg;
  }

  /** After the commit of `piece` into the current segment `seg` (the file at `path`) returned: its records are durable there. */
  #committedInCurrent(piece: Piece, seg: Segment, path: string): void {
    seg.lastLsn = piece.lastLsn;
    seg.endOffset = piece.position + piece.bytes;
    seg.index.add(piece.firstLsn, piece.position);
    this.dropper.committed(path, seg.endOffset, seg.recycledSizeBytes > 0);
  }

  /**
   * Commits a piece that starts a segment into the next prepared file, names it and syncs the
   * directory, then makes it the current segment. On failure the prepared file's handle is closed
   * before the error goes on, so a failed roll leaks no descriptor (the file itself is a temp file, or
   * already named: the next open sweeps or recovers it).
   */
  async #startSegment(piece: Piece): Promise<string> {
    const name = segmentName(piece.segmentFirstLsn);
    const file = `${this.#o.dir}/${name}`;
    const prepared = await this.preparer.take();
    let named: FileHandle;
    let buffers = piece.buffers;
    let recycledSizeBytes = 0;
    let renamed = false;
    try {
      if (prepared.recycled) {
        // The staged header says version 2 (staging cannot know which file the segment gets): the
        // recycled file gets version 3, whose end marker tells the live data from the old bytes after it.
        recycledSizeBytes = (await prepared.handle.stat()).sizeBytes;
        assert(recycledSizeBytes === this.#o.segmentSizeBytes, `a recycled file has the segment size: ${recycledSizeBytes}`);
        buffers = withEndMarker([encodeSegmentHeader(piece.segmentFirstLsn, piece.salt, FORMAT_VERSION_RECYCLED), ...piece.buffers.slice(1)], piece.bytes, recycledSizeBytes);
      }
      await this.#commit(prepared.handle, buffers, 0);
      await this.#o.fs.rename(prepared.path, file);
      renamed = true;
      // Both need a descriptor: a process short of them for a moment (EMFILE) retries, as nothing ran.
      await retryOnDescriptorShortage(() => this.#o.fs.syncDir(this.#o.dir));
      named = await retryOnDescriptorShortage(() => this.#o.fs.open(file, 'r+'));
    } finally {
      await prepared.handle.close().catch(() => {});
      // A recycled file either is a segment now or stays under its free name (the next open reuses it).
      if (prepared.recycled) this.#recycler.done(renamed);
    }
    const old = this.#current;
    this.#current = named;
    await old?.close();
    const last = this.segments[this.segments.length - 1];
    assert(last === undefined || last.lastLsn + 1 === piece.segmentFirstLsn, `segment ${name} continues the log`);
    this.segments.push({ name, firstLsn: piece.segmentFirstLsn, salt: piece.salt, lastLsn: piece.lastLsn, endOffset: piece.bytes, index: new SegmentIndex(piece.segmentFirstLsn), recycledSizeBytes });
    this.#segmentsCreated++;
    this.dropper.committed(file, piece.bytes, recycledSizeBytes > 0);
    return file;
  }

  /**
   * One commit: writev + sync, on the commit worker ('worker'), or synchronously on this thread
   * ('inline', blocking it until the sync returned). Either way it settles only after the sync returned.
   */
  #commit(handle: FileHandle, buffers: readonly Uint8Array[], position: number): Promise<void> | void {
    if (this.#o.syncMode === 'worker') return handle.commit(buffers, position, this.#o.syncMethod, this.#o.commitWait);
    // The file system was checked for syncCalls at open (walDefaults).
    (handle.writevSync as NonNullable<FileHandle['writevSync']>).call(handle, buffers, position);
    if (this.#o.syncMethod === 'fsync') (handle.syncSync as NonNullable<FileHandle['syncSync']>).call(handle);
    else (handle.datasyncSync as NonNullable<FileHandle['datasyncSync']>).call(handle);
  }

  #measure(durationMs: number, bytes: number, file: string): void {
    this.#latency.record(durationMs);
    this.#commits++;
    this.#committedBytes += bytes;
    if (durationMs >= this.#o.fsyncLatencyMsWarn) {
      this.#slowCommits++;
      // Observers run after the commit, outside its promise: a 'slowSync' listener (or a logger) that
      // throws must not fail a commit that succeeded (the WAL would refuse writes until reopened). Its
      // error is thrown from the tick, an uncaught exception, as from any emitter that emits from I/O.
      process.nextTick(() => {
        this.#o.logger?.warn({ file, durationMs, bytes }, 'slow WAL commit');
        this.#o.onSlowCommit({ durationMs, bytes, file });
      });
    }
  }

  /** Closes the current segment and removes a prepared one nobody took. */
  async close(): Promise<void> {
    await this.dropper.settle();
    await this.preparer.dispose();
    try {
      await this.#current?.close();
    } catch {
      // The descriptor is gone either way.
    }
    this.#current = null;
  }
}

/**
 * A commit's buffers with the end marker after them, for a version-3 segment (recycledSizeBytes > 0)
 * while the marker fits in the file; else the buffers as they are.
 */
function withEndMarker(buffers: Uint8Array[], endBytes: number, recycledSizeBytes: number): Uint8Array[] {
  if (recycledSizeBytes === 0 || endBytes + END_MARKER_BYTES > recycledSizeBytes) return buffers;
  return buffers.concat(END_MARKER);
}
