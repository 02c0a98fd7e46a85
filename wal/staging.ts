/**
 * Staging: where appended records wait for their flush, already encoded and already placed.
 *
 * append() encodes each record straight into a chunk of shared memory (SharedArrayBuffer, so the commit
 * worker reads it without a copy) and decides its place on disk: which segment, which byte offset. When
 * a record does not fit in the rest of the current segment, the next segment begins at its LSN.
 * A flush freezes everything staged so far as a list of pieces, one per segment touched, each a run of
 * buffers to write at one position. Appends made after a freeze start the next batch.
 *
 * Each record's CRC-32 is stored by the addon (fs/native/record-crc.c recordCrcFill), one call for
 * every CRC_FILL_STEP_BYTES of records appended and one for the rest when their run of bytes is closed
 * (#closeRun: at a freeze, a roll or a full chunk), not one JavaScript CRC per record at append: that CRC was the largest part of the event loop's work per
 * record (docs/decisions.md, "Appends' CRCs in the addon"). Records larger than the fill's bound (the WAL
 * passes wal/crc-walk.ts crcAddonRecordBytesMax: every record where the addon multiplies carry-less,
 * CRC_WALK_RECORD_BYTES_MAX where it walks a table), and every record where the addon is not there, get
 * theirs at append. Nothing reads a run before it is closed.
 *
 * Chunks are recycled once every piece that points into them has been written (release()): fresh
 * memory costs a page fault per 4 KiB on first touch, which was ~20% of the main thread with 4 KiB
 * records, and the commit worker only learns a shared buffer once. A closed log hands its chunks to
 * the next log this process opens (dispose(), up to STAGING_CLOSED_CHUNKS_BYTES_MAX): the commit
 * worker is shared by every log and keeps each buffer it learned until its own collection, which
 * hardly runs, so a new chunk per log grew a process that opens and closes logs by a chunk a cycle
 * (1 GB after ~1,000 cycles, a review found).
 */
import { assert } from '../core/errors.js';
import type { Random } from '../core/random.js';
import { SEGMENT_HEADER_BYTES, drawSegmentSalt, encodeSegmentHeader } from './format.js';
import { encodeRecord, recordBytes } from '../record/format.js';
import { CRC_FILL_STEP_BYTES, CRC_WALK_RECORD_BYTES_MAX, STAGING_CHUNKS_POOLED_COUNT_MAX, STAGING_CLOSED_CHUNKS_BYTES_MAX, STAGING_LARGE_CHUNKS_POOLED_COUNT_MAX } from './limits.js';
import type { RecordCrcFill } from '../fs/page-cache.js';

/** A chunk of shared memory records are encoded into. */
interface Chunk {
  bytes: Uint8Array;
  view: DataView;
  /** Buffers of pieces (staged or frozen, not yet written) that point into it. */
  refs: number;
  /** It is no longer the chunk being filled. */
  retired: boolean;
}


/** Chunks of closed logs, by size, for the next logs of this process (see the module comment). */
const closedChunks = new Map<number, Chunk[]>();
let closedChunksBytes = 0;

/** Bytes of chunks kept from closed logs now (for tests). */
export function closedStagingChunksBytes(): number {
  return closedChunksBytes;
}

export interface Piece {
  /** The chunks its buffers point into (one entry per buffer). */
  chunks: Chunk[];
  /** First LSN of the segment this piece is written to. */
  segmentFirstLsn: number;
  /** That segment's salt (wal/format.ts), carried by each of its records. */
  salt: number;
  /** True when this piece starts a new segment (its first buffer is the segment header). */
  startsSegment: boolean;
  /** Byte offset in the segment file where buffers[0] goes. */
  position: number;
  buffers: Uint8Array[];
  bytes: number;
  firstLsn: number;
  lastLsn: number;
}

export interface StagingState {
  segmentFirstLsn: number;
  /** That segment's salt (0 for a version-1 segment, or when there is no segment yet). */
  salt: number;
  /** Where the next record goes in that segment; 0 when there is no segment yet. */
  offset: number;
  /** Usable size of that segment. */
  capacityBytes: number;
}

export class Staging {
  readonly #segmentSizeBytes: number;
  readonly #chunkBytes: number;
  #chunk: Chunk;
  #pool: Chunk[] = [];
  /** Chunks larger than #chunkBytes, made for oversize records, kept for the next ones. */
  #largePool: Chunk[] = [];
  #chunkUsed = 0;
  /** Start of the not-yet-frozen part of the current chunk. */
  #runStart = 0;
  /** Where in the current chunk the records whose CRC is still to be stored begin (a record boundary, >= #runStart). */
  #crcFrom = 0;
  /** Records from #crcFrom whose CRC is still to be stored (0: no call of the addon is due). */
  #runCrcsDue = 0;

  /** Draws each new segment's salt. */
  readonly #random: Random;
  /** The addon's call that stores a run's CRCs, or null: each record's CRC is computed at append. */
  readonly #crcFill: RecordCrcFill | null;
  /** Records up to this size (framed) get their CRC from #crcFill; larger ones at append. */
  readonly #crcFillRecordBytesMax: number;
  #segmentFirstLsn: number;
  #salt: number;
  #offset: number;
  #capacityBytes: number;

  #pieces: Piece[] = [];
  #batchFirstLsn = 0;
  #disposed = false;
  #pendingRecords = 0;
  #pendingBytes = 0;

  constructor(segmentSizeBytes: number, chunkBytes: number, tail: StagingState, random: Random, crcFill: RecordCrcFill | null, crcFillRecordBytesMax = CRC_WALK_RECORD_BYTES_MAX) {
    assert(tail.salt >>> 0 === tail.salt, 'tail segment salt is a u32');
    this.#segmentSizeBytes = segmentSizeBytes;
    this.#chunkBytes = chunkBytes;
    this.#chunk = this.#newChunk(chunkBytes);
    this.#random = random;
    this.#crcFill = crcFill;
    this.#crcFillRecordBytesMax = crcFillRecordBytesMax;
    this.#segmentFirstLsn = tail.segmentFirstLsn;
    this.#salt = tail.salt;
    this.#offset = tail.offset;
    this.#capacityBytes = tail.capacityBytes;
  }

  /** First LSN of the segment the next record goes to, unless it rolls (0 before the first segment). */
  get segmentFirstLsn(): number {
    return this.#segmentFirstLsn;
  }

  get pendingRecords(): number {
    return this.#pendingRecords;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Encodes and places the record with this LSN. The caller has checked that it fits a segment. */
  add(lsn: number, payload: Uint8Array): void {
    assert(!this.#disposed, 'no append after the staging was disposed');
    const size = recordBytes(payload.byteLength);
    if (this.#pendingRecords === 0) this.#batchFirstLsn = lsn;
    let piece = this.#pieces[this.#pieces.length - 1];
    if (this.#offset === 0 || this.#offset + size > this.#capacityBytes) {
      // Roll: the next segment begins with this record.
      assert(SEGMENT_HEADER_BYTES + size <= this.#segmentSizeBytes, 'record must fit an empty segment');
      this.#closeRun(piece);
      this.#segmentFirstLsn = lsn;
      this.#offset = SEGMENT_HEADER_BYTES;
      this.#capacityBytes = this.#segmentSizeBytes;
      this.#salt = drawSegmentSalt(this.#random);
      const header = encodeSegmentHeader(lsn, this.#salt);
      piece = { chunks: [], segmentFirstLsn: lsn, salt: this.#salt, startsSegment: true, position: 0, buffers: [header], bytes: header.byteLength, firstLsn: lsn, lastLsn: lsn };
      this.#pieces.push(piece);
    } else if (piece === undefined) {
      piece = { chunks: [], segmentFirstLsn: this.#segmentFirstLsn, salt: this.#salt, startsSegment: false, position: this.#offset, buffers: [], bytes: 0, firstLsn: lsn, lastLsn: lsn };
      this.#pieces.push(piece);
    }
    if (this.#chunkUsed + size > this.#chunk.bytes.byteLength) {
      this.#closeRun(piece);
      const old = this.#chunk;
      old.retired = true;
      this.#recycle(old);
      this.#chunk = size <= this.#chunkBytes ? (this.#pool.pop() ?? this.#newChunk(this.#chunkBytes)) : this.#largeChunk(size);
      this.#chunkUsed = 0;
      this.#runStart = 0;
      this.#crcFrom = 0;
    }
    const withCrc = this.#crcFill === null || size > this.#crcFillRecordBytesMax;
    const end = encodeRecord(this.#chunk.bytes, this.#chunk.view, this.#chunkUsed, lsn, lsn - this.#batchFirstLsn, this.#salt, payload, withCrc);
    assert(end - this.#chunkUsed === size, 'encoded size');
    this.#chunkUsed = end;
    if (!withCrc) {
      this.#runCrcsDue++;
      // CRCs stored as the records come, a step at a time, leave the freeze only the last step's: the
      // freeze is on the way from one commit to the next, appends overlap a commit (pipelined).
      if (end - this.#crcFrom >= CRC_FILL_STEP_BYTES) this.#fillCrcs();
    }
    this.#offset += size;
    piece.bytes += size;
    piece.lastLsn = lsn;
    this.#pendingRecords++;
    this.#pendingBytes += size;
  }

  /** Stores the CRCs still due, of the records in [#crcFrom, #chunkUsed) of the current chunk. */
  #fillCrcs(): void {
    if (this.#runCrcsDue > 0 && this.#crcFill !== null) {
      const reached = this.#crcFill(this.#chunk.bytes, this.#crcFrom, this.#chunkUsed, this.#crcFillRecordBytesMax);
      assert(reached === this.#chunkUsed, 'the records of a run tile it');
    }
    this.#crcFrom = this.#chunkUsed;
    this.#runCrcsDue = 0;
  }

  /** Ends the current run of bytes in the current chunk (its records' CRCs stored), adding it to the piece's buffers. */
  #closeRun(piece: Piece | undefined): void {
    this.#fillCrcs();
    if (piece !== undefined && this.#chunkUsed > this.#runStart) {
      piece.buffers.push(this.#chunk.bytes.subarray(this.#runStart, this.#chunkUsed));
      piece.chunks.push(this.#chunk);
      this.#chunk.refs++;
    }
    this.#runStart = this.#chunkUsed;
  }

  #newChunk(bytes: number): Chunk {
    const kept = closedChunks.get(bytes)?.pop();
    if (kept !== undefined) {
      closedChunksBytes -= bytes;
      kept.refs = 0;
      kept.retired = false;
      return kept;
    }
    const sab = new SharedArrayBuffer(bytes);
    return { bytes: new Uint8Array(sab), view: new DataView(sab), refs: 0, retired: false };
  }

  /**
   * The log is closed and nothing of it is in flight: its chunks go to the next logs this process opens
   * (those no piece still points into, up to STAGING_CLOSED_CHUNKS_BYTES_MAX). No add() after it.
   */
  dispose(): void {
    for (const chunk of [this.#chunk, ...this.#pool, ...this.#largePool]) {
      const bytes = chunk.bytes.byteLength;
      if (chunk.refs !== 0 || closedChunksBytes + bytes > STAGING_CLOSED_CHUNKS_BYTES_MAX) continue;
      let list = closedChunks.get(bytes);
      if (list === undefined) closedChunks.set(bytes, (list = []));
      if (list.includes(chunk)) continue;
      list.push(chunk);
      closedChunksBytes += bytes;
    }
    this.#pool = [];
    this.#largePool = [];
    this.#disposed = true;
  }

  /**
   * A chunk for a record of `size` bytes, more than a chunk: a pooled large one that holds it, or a new
   * one rounded up to a power of two, so that records of about the same size reuse the same few.
   */
  #largeChunk(size: number): Chunk {
    const i = this.#largePool.findLastIndex((c) => c.bytes.byteLength >= size); // the smallest that fits
    if (i >= 0) return this.#largePool.splice(i, 1)[0] as Chunk;
    return this.#newChunk(2 ** Math.ceil(Math.log2(size)));
  }

  #recycle(chunk: Chunk): void {
    if (!chunk.retired || chunk.refs > 0) return;
    if (chunk.bytes.byteLength === this.#chunkBytes) {
      if (this.#pool.length < STAGING_CHUNKS_POOLED_COUNT_MAX) {
        chunk.retired = false;
        this.#pool.push(chunk);
      }
    } else if (chunk.bytes.byteLength > this.#chunkBytes) {
      // Keep the largest ones: a smaller one is replaced by a larger one when the pool is full.
      chunk.retired = false;
      this.#largePool.push(chunk);
      this.#largePool.sort((a, b) => b.bytes.byteLength - a.bytes.byteLength);
      if (this.#largePool.length > STAGING_LARGE_CHUNKS_POOLED_COUNT_MAX) this.#largePool.pop();
    }
  }

  /** The pieces have been written (or will never be): their chunks may be reused. */
  release(pieces: readonly Piece[]): void {
    for (const piece of pieces) {
      for (const chunk of piece.chunks) {
        chunk.refs--;
        assert(chunk.refs >= 0, 'chunk references balance');
        this.#recycle(chunk);
      }
      piece.chunks = [];
    }
  }

  /**
   * Ends the current segment at the records staged so far: the next add() starts a new one (the WAL's
   * early roll to a filled next file, SegmentPreparer.handOverDue). False, changing nothing, when the
   * segment holds no record yet or there is none.
   */
  endSegment(): boolean {
    if (this.#offset <= SEGMENT_HEADER_BYTES || this.#capacityBytes === this.#offset) return false;
    this.#capacityBytes = this.#offset;
    return true;
  }

  /** Takes everything staged so far; the next add() starts a new batch. */
  freeze(): Piece[] {
    this.#closeRun(this.#pieces[this.#pieces.length - 1]);
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#pendingRecords = 0;
    this.#pendingBytes = 0;
    return pieces;
  }
}
