/**
 * SegmentPreparer: keeps segment files zero-filled ahead of need, off the commit path (etcd's file
 * pipeline), and never makes a commit wait for a fill it does not overlap.
 *
 * A commit into zero-filled blocks overwrites allocated space, so its fdatasync writes no size or extent
 * metadata (a growing file costs ~2x per sync here). Filling whole segments at once made a new log take
 * 64 MiB of disk for one record, so the fill goes in steps that keep a distance ahead of the write
 * position instead:
 *
 *   segment file   | records ... | zeros (filled ahead) |   not yet allocated   |
 *                  0          writeEnd             filledBytes            segmentSizeBytes
 *
 * - The next segment is prepared in the background as a temp file holding its first step of zeros; it
 *   gets its real name only when its first batch is durable in it (wal.ts renames it, syncs the dir).
 * - Once the segment being written is half full, the next one's file is filled on to its end, step by
 *   step (fillNext). Its zeros are another file's dirty pages: a commit's fdatasync syncs only its own
 *   file, so it neither writes them nor waits for their writeback, and after the roll the segment needs
 *   no step at all. A fill step in the segment being written does make the commits beside it wait: its
 *   writev leaves dirty pages in their file, and fdatasync writes and waits for every one of them
 *   (128 B x 64 writers, past the first segment: ack p99 1.2 -> 0.8 ms with the fill moved to the
 *   next file; docs/decisions.md, "Zero-fill in the next segment"). The first segment of a new log
 *   still fills in its own file (a small log stays small), and so does a segment that a roll found no
 *   prepared file (or a partly filled one) for, or one found at open. Such a segment, once it holds an
 *   eighth of a segment of records (HANDOVER_SEGMENT_FRACTION; or HANDOVER_STEPS steps, if more), has
 *   the next segment's file filled at once (not from half full), and the WAL rolls to that file as soon
 *   as it is filled (handOverDue): the segment ends early, its rest never filled, and the commits leave
 *   the in-file fill for good (128 B x 64 writers on a fresh log: ack p99 585 -> 453 us;
 *   docs/decisions.md, "A new log's first segment hands over early"). Where the file system can write
 *   pages back (the native addon's sync_file_range), every step writes its zeros in pieces of
 *   FILL_WRITEBACK_PIECE_BYTES, each written back before the next, so a commit beside it waits for
 *   one piece at most (128 B x 64 writers: ack p99 1,283 -> 765 us; one writer of 4 KiB 1.07x).
 * - The segment being written is extended one step at a time (writev of zeros + fdatasync) once fewer
 *   than aheadBytes / 2 zeros are left ahead of writeEnd, up to writeEnd + aheadBytes. A step is
 *   PREALLOC_STEP_BYTES, or a quarter of a segment under 4 MiB in whole pages (so the small segments of
 *   the power-loss tests fill in steps too). aheadBytes starts at one step and doubles, up to
 *   PREALLOC_AHEAD_BYTES_MAX, each time a commit overtakes the filled part: a fast writer earns a
 *   longer lead, a small log stays small (one step for the segment, one for the next).
 * - Large commits grow the file themselves: no step starts while the last commit was
 *   FILL_COMMIT_BYTES_MAX or more (zero-filling would write each of their bytes twice for a saving of
 *   one journal commit per fdatasync). This replaced steps that grew with the commits (up to 4 MiB).
 * - Ordering rule: a fill step only ever starts at or beyond the end of every commit announced through
 *   reserve(), and reserve() waits for a step in flight that the coming commit would overlap. So zeros
 *   never land on records, whatever the two threads' interleaving.
 * - A recycled file (segment-recycler.ts) is taken in place of a fresh one whenever the recycler has one:
 *   it is already full size, so it is neither zero-filled when prepared nor filled while written; its
 *   first commit writes a version-3 header and the records over the old bytes (segment-writer.ts).
 * - The fill has its own open file description of the segment (opened by name, in the background), never
 *   the WAL's: Linux reports a writeback error once per file description, so an fdatasync of the fill
 *   that failed cannot swallow the error the WAL's own commit must see.
 * - A step puts its page-cache pages in place before it writes its zeros (fillStep): it writes the
 *   step's last FILL_EXTEND_BYTES (the file now reaches the step's end, the rest a hole), reads the
 *   rest (pages of a hole, made without the inode lock and without disk I/O), then writes the zeros
 *   over them and syncs. A 1 MiB write to bytes the page cache does not hold makes Linux 6.x (ext4 with
 *   large folios) allocate 1 MiB folios while it holds the inode's lock, measured here at 2-16 ms per
 *   step, and every commit's writev waited behind it (ack p99 ~20 ms at 4 KiB x 64 writers); the same
 *   zeros written into pages that exist take ~0.2 ms. docs/decisions.md, "A log that grows". Only in
 *   the segment being written: a next segment's file has no commit waiting for its lock, and there the
 *   read cost the commits beside it more than it saved (its page allocation and 1 MiB copy per step:
 *   docs/decisions.md, "A next segment's fill without its read").
 */
import { assert } from '../core/errors.js';
import { retryOnDescriptorShortage, type FileHandle, type FileSystem } from '../fs/file-system.js';
import type { SegmentRecycler } from './segment-recycler.js';

export const PREALLOC_SUFFIX = '.prealloc.tmp';
/** A next segment started without preallocation (its first fill step was late). */
export const UNPREPARED_SUFFIX = '.new.tmp';
/** One fill step: one writev of zeros and one fdatasync (a longer flush would sit in the device queue ahead of commits). */
export const PREALLOC_STEP_BYTES = 1024 * 1024;
/** The most the fill runs ahead of the write position. */
export const PREALLOC_AHEAD_BYTES_MAX = 16 * 1024 * 1024;
/**
 * The bytes at a step's end written first, to extend the file to the step's end, so the read of the
 * rest finds file bytes (a hole) and makes their pages: one small write, small pages.
 */
export const FILL_EXTEND_BYTES = 4096;
/**
 * Where the file system writes pages back (FileSystem.writesBack: sync_file_range, the native addon), a
 * step writes its zeros in pieces of this size, each written back before the next is written: the step
 * never holds more than one piece of dirty zeros, so a commit's fdatasync beside it in the same file
 * writes and waits for at most that much, and in another file (the next segment's) the device never
 * has more than a piece of zeros queued ahead of a commit. The step's one fdatasync still follows, for
 * the size and extents. (Pieces in the segment being written only: 128 B x 64 ack p99 953 / 964 / 846
 * -> 1,390 / 1,283 / 1,119 us, 3 interleaved rounds; not kept.)
 */
export const FILL_WRITEBACK_PIECE_BYTES = 128 * 1024;
/** Errors of writeBack that mean the system does not do it here (not that the file is in trouble). */
const NO_WRITE_BACK_CODES: ReadonlySet<string> = new Set(['ENOSYS', 'EINVAL', 'EPERM', 'EOPNOTSUPP', 'ENOTSUP', 'ESPIPE']);
/**
 * Commits this large or larger grow their file themselves: no fill step is started while the last
 * commit was at least this size. A commit past the end of its file costs its fdatasync one journal
 * commit (~60-70 us here, whatever its size), while zero-filling costs a second write of every byte:
 * measured on this project's VM (docs/decisions.md, "The page cache of a growing log"), fill steps win
 * at 10 KiB commits (128 B x 64 writers: 1.4x), break even near 40-150 KiB, and lose at 256 KiB
 * (4 KiB x 64 writers: 0.73x).
 */
export const FILL_COMMIT_BYTES_MAX = 128 * 1024;
/**
 * A segment filling in its own file hands over to a filled next file (handOverDue) once it holds this
 * many fill steps of records, or HANDOVER_SEGMENT_FRACTION of the segment if that is more (8 MiB of a
 * 64 MiB segment): a log that stays smaller keeps one segment file, and a slow writer (whose in-file fill
 * costs little: a step every few seconds) does not meet the next file's whole fill soon after it starts
 * (one writer of 128 B, 1.5 MB/s: 0.89-0.97x in the first seconds with a 2 MiB threshold).
 */
export const HANDOVER_STEPS = 2;
export const HANDOVER_SEGMENT_FRACTION = 1 / 8;

export interface PreparedSegment {
  handle: FileHandle;
  path: string;
  /** A recycled file (full size, old bytes in it), taken from the recycler; else a fresh one. */
  recycled: boolean;
}

/** The segment being written, as the fill sees it. */
interface Filling {
  /** Its name, from the WAL's handle given to reserve() (null until then: a new segment is renamed after its first commit). */
  path: string | null;
  /** The fill's own handle on it, opened by the first step. */
  handle: FileHandle | null;
  /** Bytes from 0 that hold zeros or records. */
  filledBytes: number;
  /** End of the furthest commit announced by reserve(). */
  writeEnd: number;
  /** The step in flight, and where it starts. */
  step: Promise<void> | null;
  stepFrom: number;
  /** A step failed (the disk is full, say): stop filling; commits grow the file. */
  failed: boolean;
  /**
   * The next segment's file, before it is taken: filled to the segment's end, step after step, once the
   * segment being written is half full (a segment of its own, so no commit's fdatasync writes its zeros).
   */
  ahead: boolean;
}

/** Ends a fill: no step starts after this; waits for the one in flight, closes the fill's handle. */
async function endFill(fill: Filling | null): Promise<void> {
  if (fill === null) return;
  fill.failed = true;
  await fill.step;
  await fill.handle?.close().catch(() => {});
}

export class SegmentPreparer {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #segmentSizeBytes: number;
  /** Zeros for one step. */
  readonly #zeros: Uint8Array;
  /** One step, and a prepared file's first one (small, so a small log stays small): PREALLOC_STEP_BYTES, or a quarter of a small segment (whole pages). */
  readonly #stepBytes: number;
  /** Records a segment filling in its own file holds before its next file is filled at once (HANDOVER_STEPS, HANDOVER_SEGMENT_FRACTION). */
  readonly #handoverBytes: number;
  /** Where a step reads the hole it is about to fill (the bytes read are not used), made at the first step. */
  #scratch: Uint8Array | null = null;
  readonly #recycler: SegmentRecycler;
  #counter = 0;
  /** Fill steps go in pieces written back (FILL_WRITEBACK_PIECE_BYTES), until the system refuses the call. */
  #writeBack: boolean;
  #next: Promise<PreparedSegment> | null = null;
  #state: 'idle' | 'preparing' | 'ready' | 'failed' = 'idle';
  #current: Filling | null = null;
  /** The fill of the next segment's fresh file, prepared and not taken yet (null for a recycled one). */
  #nextFill: Filling | null = null;
  #aheadBytes: number;
  /** The size of the last commit announced (0 before the first). */
  #lastCommitBytes = 0;
  #unprepared = 0;
  #overtaken = 0;

  constructor(fs: FileSystem, dir: string, segmentSizeBytes: number, recycler: SegmentRecycler) {
    this.#fs = fs;
    this.#recycler = recycler;
    this.#dir = dir;
    this.#segmentSizeBytes = segmentSizeBytes;
    this.#writeBack = fs.writesBack === true;
    this.#stepBytes = Math.min(PREALLOC_STEP_BYTES, segmentSizeBytes, Math.max(FILL_EXTEND_BYTES, Math.floor(segmentSizeBytes / 4 / FILL_EXTEND_BYTES) * FILL_EXTEND_BYTES));
    this.#zeros = new Uint8Array(this.#stepBytes);
    this.#handoverBytes = Math.max(HANDOVER_STEPS * this.#stepBytes, Math.floor(segmentSizeBytes * HANDOVER_SEGMENT_FRACTION));
    this.#aheadBytes = this.#stepBytes;
  }

  /** Times a roll found the next segment not zero-filled yet and started it as a file that grows. */
  get unprepared(): number {
    return this.#unprepared;
  }

  /**
   * Whether the segment being written should end now for the next one: it still fills in its own file
   * (a new log's first segment; one a roll found no prepared file, or a partly filled one, for; one found
   * at open), holds its hand-over bytes of records (HANDOVER_STEPS), and the next segment's file is ready
   * and filled to its end (or is a recycled file, full size). The WAL then rolls at its next append
   * (Staging.endSegment). Where the fill is slower than the writer, segments are thus ended wherever
   * their next file is ready: the commits leave the fill beside them sooner, at the cost of a roll (a
   * segment ended before 3/4 of its size is unlinked when freed, not recycled: retention.ts).
   */
  handOverDue(): boolean {
    const cur = this.#current;
    if (cur === null || !this.#handingOver(cur) || this.#state !== 'ready') return false;
    const next = this.#nextFill;
    return next === null || (next.filledBytes >= this.#segmentSizeBytes && next.step === null);
  }

  /** Times a commit reached past the zero-filled part of its segment (each doubles the lead, to its cap). */
  get overtaken(): number {
    return this.#overtaken;
  }

  /** Starts preparing the next segment in the background if none is under way. */
  prepareAhead(): void {
    if (this.#next) return;
    this.#state = 'preparing';
    const p = this.#prepare();
    // A failure is reported when the segment is wanted; keep it from being an unhandled rejection meanwhile.
    p.then(
      () => {
        if (this.#next === p) this.#state = 'ready';
      },
      () => {
        if (this.#next === p) this.#state = 'failed';
      },
    );
    this.#next = p;
  }

  /**
   * The next segment, never waiting for a zero-fill: the prepared one when it is ready; otherwise a new
   * plain file that grows as it is written until the fill catches up. A preparation still under way
   * goes on and serves the next roll; one that failed (a disk full for a moment) is started again.
   * The returned segment becomes the one the fill extends.
   */
  async take(): Promise<PreparedSegment> {
    // The fill of the segment being left ends here: its step in flight finishes, its handle is closed.
    await this.#retire();
    let segment: PreparedSegment;
    let filledBytes = 0;
    if (this.#state === 'ready') {
      const p = this.#next as Promise<PreparedSegment>;
      this.#next = null;
      this.#state = 'idle';
      segment = await p;
      filledBytes = segment.recycled ? this.#segmentSizeBytes : this.#stepBytes;
      const ahead = this.#nextFill;
      this.#nextFill = null;
      if (ahead !== null && !segment.recycled) {
        // Its fill goes on as the one of the segment being written, a lead ahead of the commits, from
        // the first reserve(): the segment's first commit (which starts it) announces nothing, so no step
        // may run meanwhile. The step in flight ends first (at most one), and path null holds the next.
        ahead.ahead = false;
        ahead.path = null;
        await ahead.step;
        // A step of the file that failed before any commit touched it (a full disk for a moment) does
        // not stop the fill of the segment it becomes: the next step tries again, from the commits' end.
        ahead.failed = false;
        this.#current = ahead;
        return segment;
      }
    } else {
      if (this.#state === 'failed') {
        this.#next = null;
        this.#state = 'idle';
      }
      // A free file needs no preparation: take it rather than start a growing one.
      const recycled = await this.#openRecycled();
      if (recycled !== null) {
        segment = recycled;
        filledBytes = this.#segmentSizeBytes;
      } else {
        this.#unprepared++;
        const path = `${this.#dir}/${process.pid}-${++this.#counter}${UNPREPARED_SUFFIX}`;
        segment = { handle: await retryOnDescriptorShortage(() => this.#fs.open(path, 'w+')), path, recycled: false };
      }
    }
    this.#current = { path: null, handle: null, filledBytes, writeEnd: 0, step: null, stepFrom: 0, failed: false, ahead: false };
    return segment;
  }

  /** Adopts a segment found at open as the one being written: `sizeBytes` of it exist, its records end at `writeEnd`. */
  adopt(sizeBytes: number, writeEnd: number): void {
    this.#current = { path: null, handle: null, filledBytes: sizeBytes, writeEnd, step: null, stepFrom: 0, failed: false, ahead: false };
  }

  /**
   * Announces a commit through `handle` into the segment being written, ending at `endBytes`; call it
   * right before the commit. Waits only if a fill step in flight overlaps the commit's bytes; then lets
   * the fill run ahead of the new end (on its own handle of the file `handle` names).
   */
  async reserve(handle: FileHandle, endBytes: number): Promise<void> {
    if (this.reserveNow(handle, endBytes)) return;
    const cur = this.#current as Filling;
    // First move writeEnd, so that no step starts below this commit's end from now on; then wait for a
    // step already in flight that the commit would overlap.
    this.#announce(cur, endBytes);
    while (cur.step !== null && endBytes > cur.stepFrom) await cur.step;
    cur.path ??= handle.path;
    this.#fillAhead(cur, false);
    this.#fillNext(cur);
  }

  /**
   * reserve() when it has nothing to wait for, synchronously: returns true having done what reserve()
   * does, or false having done nothing, when a fill step in flight overlaps the commit (then call
   * reserve() and await it). The common case of every commit: no microtask hop before the commit.
   */
  reserveNow(handle: FileHandle, endBytes: number): boolean {
    const cur = this.#current;
    if (cur === null) return true;
    if (cur.step !== null && endBytes > cur.stepFrom) return false;
    this.#announce(cur, endBytes);
    cur.path ??= handle.path;
    this.#fillAhead(cur, false);
    this.#fillNext(cur);
    return true;
  }

  /** A commit ending at `endBytes` is on its way: the lead grows if it overtook the fill, its size is noted, writeEnd moves. */
  #announce(cur: Filling, endBytes: number): void {
    // The commit's size, from the furthest end announced before it: a large one stops the fill.
    const commitBytes = endBytes - cur.writeEnd;
    if (commitBytes > 0) this.#lastCommitBytes = commitBytes;
    // A large commit past the filled part grows the file by design: it earns no longer lead (else small
    // commits after a run of large ones would set off a string of steps to a 16 MiB lead).
    if (endBytes > cur.filledBytes && !cur.failed && this.#lastCommitBytes < FILL_COMMIT_BYTES_MAX) {
      this.#overtaken++;
      this.#aheadBytes = Math.min(PREALLOC_AHEAD_BYTES_MAX, this.#aheadBytes * 2);
    }
    cur.writeEnd = Math.max(cur.writeEnd, endBytes);
  }

  /** Starts preparing (if needed) and waits until a segment is ready, without taking it. */
  async ready(): Promise<void> {
    this.prepareAhead();
    await this.#next;
  }

  /** Ends the fill of the current segment and removes a prepared segment nobody took. */
  async dispose(): Promise<void> {
    await this.#retire();
    await this.#retireNext();
    const p = this.#next;
    this.#next = null;
    this.#state = 'idle';
    if (!p) return;
    try {
      const { handle, path, recycled } = await p;
      // A preparation that ended after the retire above left its fill behind: end it first, so that a
      // failed close below cannot leave the fill's handle open.
      await this.#retireNext();
      await handle.close();
      // A recycled file stays under its free name (the next open reuses it); a fresh one is removed.
      if (recycled) this.#recycler.done(false);
      else await this.#fs.unlink(path);
    } catch {
      // It was never ready, or is already gone: the next open removes leftovers anyway.
    }
  }

  /**
   * Starts a fill step when fewer than aheadBytes / 2 zeros are left ahead of writeEnd (`continuing`:
   * fewer than aheadBytes), and goes on step by step until writeEnd + aheadBytes or the segment's end.
   */
  #fillAhead(cur: Filling, continuing: boolean): void {
    if (cur.path === null || cur.step !== null || cur.failed || this.#lastCommitBytes >= FILL_COMMIT_BYTES_MAX) return;
    const leadBytes = cur.filledBytes - cur.writeEnd;
    if (!cur.ahead && leadBytes >= (continuing ? this.#aheadBytes : this.#aheadBytes / 2)) return;
    // Never below an announced commit's end: those bytes are (or are about to be) records.
    const from = Math.max(cur.filledBytes, cur.writeEnd);
    const lengthBytes = Math.min(this.#stepBytes, this.#segmentSizeBytes - from);
    if (lengthBytes <= 0) return;
    cur.stepFrom = from;
    cur.step = this.#extend(cur, from, lengthBytes).then(
      () => {
        cur.step = null;
        cur.filledBytes = Math.max(cur.filledBytes, from + lengthBytes);
        if (this.#current === cur || this.#nextFill === cur) this.#fillAhead(cur, true);
      },
      () => {
        // The disk is full, say: stop filling this segment; its commits grow the file (and meet the error themselves).
        cur.step = null;
        cur.failed = true;
      },
    );
  }

  async #extend(cur: Filling, from: number, lengthBytes: number): Promise<void> {
    cur.handle ??= await retryOnDescriptorShortage(() => this.#fs.open(cur.path as string, 'r+'));
    await this.#fillStep(cur.handle, from, lengthBytes, !cur.ahead);
  }

  /**
   * One step: zeros over [from, from + lengthBytes), then fdatasync. Every write is of zeros at or past
   * `from` (the ordering rule above). `prefault`: first read the hole, which only makes the page-cache
   * pages of the bytes about to be written (see the doc comment; its bytes are not used). Only the
   * segment being written needs that: its commits wait for its inode's lock. A next segment's file has
   * no commit until its fill step is over, so its zeros make their own pages.
   */
  async #fillStep(handle: FileHandle, from: number, lengthBytes: number, prefault: boolean): Promise<void> {
    assert(lengthBytes <= this.#zeros.byteLength, `a fill step is at most one step: ${lengthBytes}`);
    const zeros = lengthBytes === this.#zeros.byteLength ? this.#zeros : this.#zeros.subarray(0, lengthBytes);
    const headBytes = Math.max(0, lengthBytes - FILL_EXTEND_BYTES);
    await handle.writev([zeros.subarray(headBytes)], from + headBytes);
    if (headBytes > 0) {
      if (prefault) {
        if (this.#scratch === null || this.#scratch.byteLength < headBytes) this.#scratch = new Uint8Array(this.#zeros.byteLength);
        await handle.read(this.#scratch, 0, headBytes, from);
      }
      if (this.#writeBack && handle.writeBack !== undefined) {
        for (let at = 0; at < headBytes; at += FILL_WRITEBACK_PIECE_BYTES) {
          const pieceBytes = Math.min(FILL_WRITEBACK_PIECE_BYTES, headBytes - at);
          await handle.writev([zeros.subarray(at, at + pieceBytes)], from + at);
          if (this.#writeBack) await this.#writeBackPiece(handle, from + at, pieceBytes);
        }
      } else await handle.writev([zeros.subarray(0, headBytes)], from);
    }
    await handle.datasync();
  }

  /**
   * sync_file_range of one piece. Where the system refuses the call itself (a seccomp filter, an
   * emulator, a file system without it: NO_WRITE_BACK_CODES), pieces stop for this preparer and the
   * step goes on (it is still made durable by its fdatasync); any other error (EIO, ENOSPC) fails the
   * step, as a failed write would.
   */
  async #writeBackPiece(handle: FileHandle, offset: number, lengthBytes: number): Promise<void> {
    try {
      await (handle.writeBack as NonNullable<FileHandle['writeBack']>).call(handle, offset, lengthBytes);
    } catch (err) {
      if (!NO_WRITE_BACK_CODES.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      this.#writeBack = false;
    }
  }

  /** Stops filling the current segment (a roll or close). */
  async #retire(): Promise<void> {
    const cur = this.#current;
    this.#current = null;
    await endFill(cur);
  }

  /** Ends the fill of a next segment nobody took. */
  async #retireNext(): Promise<void> {
    const next = this.#nextFill;
    this.#nextFill = null;
    await endFill(next);
  }

  /**
   * Once the segment being written (`cur`) is half full, the next segment's fresh file is filled to its
   * end; sooner, from its hand-over bytes of records, when `cur` still fills in its own file (it hands
   * over to that file once filled: handOverDue), preparing it first if that has not started.
   */
  #fillNext(cur: Filling): void {
    const early = this.#handingOver(cur);
    if (cur.writeEnd * 2 < this.#segmentSizeBytes && !early) return;
    if (early) this.prepareAhead();
    const next = this.#nextFill;
    if (next === null || next.step !== null) return;
    this.#fillAhead(next, true);
  }

  /** `cur` still fills in its own file and holds its hand-over bytes of records: it hands over to its next file (filled at once). */
  #handingOver(cur: Filling): boolean {
    return cur.filledBytes < this.#segmentSizeBytes && cur.writeEnd >= this.#handoverBytes;
  }

  /** Opens a free file from the recycler as the next segment, or returns null when there is none. */
  async #openRecycled(): Promise<PreparedSegment | null> {
    const name = this.#recycler.take();
    if (name === null) return null;
    const path = `${this.#dir}/${name}`;
    try {
      return { handle: await retryOnDescriptorShortage(() => this.#fs.open(path, 'r+')), path, recycled: true };
    } catch (err) {
      this.#recycler.done(false);
      throw err;
    }
  }

  async #prepare(): Promise<PreparedSegment> {
    const recycled = await this.#openRecycled();
    if (recycled !== null) return recycled;
    const path = `${this.#dir}/${process.pid}-${++this.#counter}${PREALLOC_SUFFIX}`;
    const handle = await retryOnDescriptorShortage(() => this.#fs.open(path, 'w+'));
    try {
      await this.#fillStep(handle, 0, this.#stepBytes, false); // no commit into it yet
      await handle.sync(); // the size and the rest of the metadata
      // The rest of the file is filled by its own open file description (see the doc comment), opened
      // by its first step (a failed open fails only that fill), once the segment being written is half
      // full; this handle is the WAL's.
      if (this.#segmentSizeBytes > this.#stepBytes) {
        this.#nextFill = { path, handle: null, filledBytes: this.#stepBytes, writeEnd: 0, step: null, stepFrom: 0, failed: false, ahead: true };
      }
      return { handle, path, recycled: false };
    } catch (err) {
      await handle.close().catch(() => {});
      await this.#fs.unlink(path).catch(() => {}); // else it waits for the next open's sweep
      throw err;
    }
  }
}
