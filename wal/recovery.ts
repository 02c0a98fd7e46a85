/**
 * Recovery: scan every segment, verify every record, and decide where the log ends.
 *
 * Decision table for the first record that does not decode at offset X (E = the LSN expected there;
 * a record decodes only if it carries its segment's salt, wal/format.ts):
 *
 *   | # | segment  | what follows X in the file                               | verdict                      |
 *   |---|----------|----------------------------------------------------------|------------------------------|
 *   | 1 | any      | only zeros, X is the first byte after a valid record     | clean end of data            |
 *   | 2 | not last | anything else                                            | WAL_CORRUPT (file, X)        |
 *   | 3 | last     | X is the first record of the segment                     | WAL_CORRUPT: a segment gets  |
 *   |   |          |                                                          | its name only once its first |
 *   |   |          |                                                          | batch is durable             |
 *   | 4 | last     | a later batch, proven by the rule below                  | WAL_CORRUPT: a later batch   |
 *   |   |          |                                                          | followed, so X's batch was   |
 *   |   |          |                                                          | acknowledged                 |
 *   | 5 | last     | anything else: zeros, garbage, records of X's own batch, | torn tail: cut (default), or |
 *   |   |          | or records that are not this segment's (another log's or | WAL_CORRUPT with tornTail if |
 *   |   |          | another segment's, e.g. inside a payload)                | recovery is 'strict'         |
 *
 * Rows 1-5 are for fresh segments (format versions 1 and 2), unchanged. A recycled segment (format
 * version 3, written over a freed segment's file: wal/segment-recycler.ts) has old bytes after its live
 * data where a fresh one has zeros: old records carrying another salt, or garbage from the middle of an
 * old record. Its writer puts an all-zero record header (the end marker) right after the last record in
 * the same writev as every commit, unless fewer than 24 bytes of the file remain. "Live after X" = a
 * valid record carrying this segment's salt with LSN >= E anywhere from X to the end of the file (old
 * records carry another salt; copies inside payloads carry LSNs below E):
 *
 *   | #  | segment  | at X, and after it                                       | verdict                      |
 *   |----|----------|----------------------------------------------------------|------------------------------|
 *   | 1r | any      | X past the first record; an all-zero header at X (or     | clean end of data (the old   |
 *   |    |          | fewer than 24 bytes left); nothing live after X          | bytes after it stay as they  |
 *   |    |          |                                                          | are)                         |
 *   | 2r | not last | anything else                                            | WAL_CORRUPT (file, X)        |
 *   | 3r | last     | X is the first record of the segment                     | WAL_CORRUPT, as row 3        |
 *   | 4r | last     | a live record after X whose batch began after E          | WAL_CORRUPT, as row 4        |
 *   | 5r | last     | anything else: old bytes at X (the marker overwritten by | torn tail: cut from X to the |
 *   |    |          | a torn commit), or the marker followed by live records   | end of the last live record  |
 *   |    |          | of X's own batch                                         | after X (at least 4 KiB),    |
 *   |    |          |                                                          | or 'strict': WAL_CORRUPT     |
 * The cut of row 5r copies and zeros only that range (never the old bytes of the whole file): zeros at X
 * are the end marker again, and no live record of the cut batch is left to pass for a later one.
 *
 * Proof of a later batch (row 4 against row 5), format version 2 (salted segments): a valid record at
 * or after X that carries this segment's salt and whose batch began after E (LSN - batch delta > E).
 * Payloads may hold anything, WAL-framed bytes included (a readRaw span of another log, as replication
 * does), but only this segment's writer puts its salt on a record: bytes of another log or of another
 * segment pass only with probability 2^-32 at a given place (and then the open is refused, never cut).
 * A payload that copies records of this very segment carries LSNs that were durable when it was
 * appended, so never a batch beginning after E when X is in the torn batch. Single flight: a later
 * batch is written only after X's batch was synced and acknowledged. So an unacknowledged torn batch
 * always opens, and damage to an acknowledged batch is WAL_CORRUPT whenever any record of a later
 * batch survives intact, even if the last batch is torn as well (two faults).
 *
 * Format version 1 (unsalted segments, salt 0, still read): no salt tells our records from copies, so
 * the rule walks this log's own sequence from X, where record E should start:
 *   a. a valid record with the expected LSN at the expected offset is accepted, and the walk goes on
 *      at its end with the next LSN (its payload is never looked at);
 *   b. a damaged record whose header still names the expected LSN and a length that ends on the next
 *      record (valid, or its header naming the next LSN) is stepped over by that length;
 *   c. otherwise its extent is unknown: the walk resumes at the first "top-level" valid record (one
 *      lying inside no other valid record) numbered exactly one more, at least a header past it, that
 *      no later top-level record contradicts with an LSN at or below its own. Anything else (an older
 *      LSN, such as another log's records numbered from 1, or any other number) is payload bytes;
 *   d. when no record numbered one more exists (the damage spans several records: a zeroed sector of
 *      small ones), a top-level valid record with a higher LSN that the damaged bytes could have led up
 *      to (at most one LSN per record header's worth of bytes from the damage) and that meets the proof
 *      below in place of one accepted by (a) still proves a later batch: before, the tail was cut.
 * A record accepted by (a) proves a later batch (row 4) when its batch began after E (LSN - batch
 * delta > E), no later top-level record has an LSN at or below it, and valid records follow it in LSN
 * order up to the clean end. If the walk ends without such a record, the damage is a torn tail (row 5).
 * Its limits (version 1 only): payload records numbered exactly as this log's next LSNs, inside a record
 * whose header was lost, with nothing of the real log after them, are refused (WAL_CORRUPT, never a
 * silent cut); damage to an acknowledged batch followed by a torn last batch is cut as a torn tail when
 * the later batches do not reach the clean end intact. docs/decisions.md has the history.
 *
 * Between segments, each must start at the LSN after the previous one's last: else WAL_CORRUPT (gap).
 * A torn tail is the unacknowledged last batch: only one batch is ever in flight, so a crash can tear
 * nothing earlier. (A bit flip inside the last acknowledged batch looks the same and is cut too: no
 * format can tell the two apart without a later write.)
 */
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import type { FileHandle, FileSystem } from '../fs/file-system.js';
import { recordCrcWalker, type RecordCrcWalk } from '../fs/page-cache.js';
import { SegmentIndex } from './segment-index.js';
import { walkCrcs } from './crc-walk.js';
import { FORMAT_VERSION_RECYCLED, SEGMENT_FIRST_LSN_OFFSET, SEGMENT_HEADER_BYTES, decodeSegmentHeader, segmentName } from './format.js';
import { DECODE_SHORT, DECODE_ZERO, RECORD_HEADER_BYTES, RECORD_LSN_OFFSET, recordBytes, recordPayloadBytes, decodeRecord, describeDecode, recordBatchDelta, recordLsn, recordSalt, RECORD_ALIGN_BYTES } from '../record/format.js';

/** The salt of a version-1 segment: its records carry 0. */
const UNSALTED = 0;

export interface RecoveredSegment {
  index: SegmentIndex;
  name: string;
  firstLsn: number;
  /** Its salt, carried by each of its records (0 for a version-1 segment). */
  salt: number;
  /** Last valid LSN in it (firstLsn - 1 if it holds none). */
  lastLsn: number;
  /** Byte offset just past its last valid record. */
  endOffset: number;
  /** Its size on disk. */
  fileSizeBytes: number;
  /** Its format version (wal/format.ts): 3 for a segment written over a recycled file. */
  version: number;
}

export interface TornTail {
  file: string;
  offset: number;
  /** Bytes cut from offset: to the last nonzero byte, inclusive (a version-3 segment: to the end of
   * the last record of the segment found after offset, at least TORN_RECYCLED_BYTES_MIN). */
  bytes: number;
  /** Why the record at offset did not decode. */
  reason: string;
}

export interface RecoveryResult {
  segments: RecoveredSegment[];
  lastLsn: number;
  torn: TornTail | null;
  bytesScanned: number;
}

function corrupt(dir: string, name: string, offset: number, reason: string, extra: { lsn?: number; tornTail?: boolean } = {}): FlushpointError {
  const file = `${dir}/${name}`;
  return new FlushpointError(ErrorCode.WAL_CORRUPT, `WAL corrupt: ${file} at byte offset ${offset}: ${reason}`, { file, offset, ...extra });
}

const ZEROS = new Uint8Array(64 * 1024);

function isZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i += ZEROS.byteLength) {
    const n = Math.min(ZEROS.byteLength, to - i);
    if (Buffer.compare(buf.subarray(i, i + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}

function lastNonZero(buf: Uint8Array, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (buf[i] !== 0) return i;
  return -1;
}

/** Read size of the recovery scan: large sequential reads into reused buffers. */
const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;
/**
 * Room kept in front of a read-ahead chunk for the bytes of the window it continues (a record that
 * straddles the two chunks is copied there, so it is contiguous). A longer leftover (one record of more
 * than this) is read again the plain way.
 */
const SCAN_CARRY_BYTES_MAX = 64 * 1024;

/** The two buffers a scan alternates between, shared by the segments of one recovery. */
interface ScanBuffers {
  a: Uint8Array;
  b: Uint8Array;
}

function newScanBuffers(): ScanBuffers {
  return { a: new Uint8Array(0), b: new Uint8Array(0) };
}

async function readFully(handle: FileHandle, into: Uint8Array, at: number, lengthBytes: number, position: number): Promise<number> {
  let done = 0;
  while (done < lengthBytes) {
    const n = await handle.read(into, at + done, lengthBytes - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * A window onto a file, refilled by large sequential reads. The scan loop works on the window
 * synchronously and awaits only to refill it. While it works, the next chunk is already being read into
 * the other buffer (read-ahead), after SCAN_CARRY_BYTES_MAX bytes of room; a refill that continues the
 * window (the usual case: from the last record that did not fit, up to the end) copies those few bytes
 * in front of it and swaps buffers, so reading and checking overlap. Any other refill reads the plain way.
 */
class FileWindow {
  buf: Uint8Array;
  view: DataView;
  /** File offset of buf[0], and the number of valid bytes in buf. */
  start = 0;
  length = 0;
  /** The buffer buf lies in, and the other one (read-ahead target). */
  #backing: Uint8Array;
  #spare: Uint8Array;
  #ahead: { fileStart: number; read: Promise<number> } | null = null;

  constructor(
    readonly handle: FileHandle,
    readonly sizeBytes: number,
    buffers: ScanBuffers,
  ) {
    const wanted = SCAN_CARRY_BYTES_MAX + Math.min(SCAN_CHUNK_BYTES, Math.max(sizeBytes, 4096));
    if (buffers.a.byteLength < wanted) buffers.a = new Uint8Array(wanted);
    if (buffers.b.byteLength < wanted) buffers.b = new Uint8Array(wanted);
    this.#backing = buffers.a;
    this.#spare = buffers.b;
    this.buf = buffers.a;
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** The file offset up to which the window holds bytes. */
  get end(): number {
    return this.start + this.length;
  }

  /** Makes the window start at `offset` and hold at least `needBytes` (or up to the end of the file). */
  async fill(offset: number, needBytes: number): Promise<void> {
    const ahead = this.#ahead;
    this.#ahead = null;
    if (ahead !== null) {
      const carry = this.end - offset;
      if (ahead.fileStart === this.end && carry >= 0 && carry <= SCAN_CARRY_BYTES_MAX && offset >= this.start) {
        const got = await ahead.read;
        if (carry + got >= needBytes || ahead.fileStart + got >= this.sizeBytes) {
          const next = this.#spare;
          const from = SCAN_CARRY_BYTES_MAX - carry;
          next.set(this.buf.subarray(offset - this.start, this.length), from);
          this.#spare = this.#backing;
          this.#backing = next;
          this.#show(next, from, carry + got, offset);
          this.#readAhead();
          return;
        }
      } else {
        // Not a continuation: let the read finish (it writes into the spare buffer), ignore what it got.
        await ahead.read.catch(() => 0);
      }
    }
    if (SCAN_CARRY_BYTES_MAX + needBytes > this.#backing.byteLength) this.#backing = new Uint8Array(needBytes);
    const want = Math.min(this.#backing.byteLength, this.sizeBytes - offset);
    const done = await readFully(this.handle, this.#backing, 0, want, offset);
    this.#show(this.#backing, 0, done, offset);
    this.#readAhead();
  }

  /** Waits for a read-ahead still in flight (before the file is closed), ignoring its outcome. */
  async settle(): Promise<void> {
    const ahead = this.#ahead;
    this.#ahead = null;
    await ahead?.read.catch(() => 0);
  }

  #show(backing: Uint8Array, from: number, lengthBytes: number, offset: number): void {
    this.buf = backing.subarray(from, from + lengthBytes);
    this.view = new DataView(backing.buffer, backing.byteOffset + from, lengthBytes);
    this.start = offset;
    this.length = lengthBytes;
  }

  #readAhead(): void {
    const fileStart = this.end;
    const room = this.#spare.byteLength - SCAN_CARRY_BYTES_MAX;
    if (fileStart >= this.sizeBytes || room <= 0) return;
    const read = readFully(this.handle, this.#spare, SCAN_CARRY_BYTES_MAX, Math.min(room, this.sizeBytes - fileStart), fileStart);
    read.catch(() => {}); // an error surfaces when the scan takes this chunk (fill awaits it), or never
    this.#ahead = { fileStart, read };
  }

  /** True when the file holds only zeros from `from` to its end. */
  async zeroFrom(from: number): Promise<boolean> {
    for (let at = from; at < this.sizeBytes; at = this.end) {
      if (at < this.start || at >= this.end) await this.fill(at, 0);
      if (!isZero(this.buf, at - this.start, this.length)) return false;
      if (this.length === 0) break;
    }
    return true;
  }
}

/**
 * The valid records after the damage that lie inside no other valid record (their payloads are skipped
 * whole), by offset, with the lowest LSN among those that follow each one.
 */
class TopLevelRecords {
  readonly offsets: number[] = [];
  readonly lsns: number[] = [];
  /** lsnMinAfter[i]: the lowest LSN of records i+1.. (Infinity for the last). */
  readonly lsnMinAfter: number[] = [];

  constructor(buf: Uint8Array, view: DataView, from: number, end: number) {
    for (let p = from; p + RECORD_HEADER_BYTES <= end; p += RECORD_ALIGN_BYTES) {
      if (view.getUint32(p, true) === 0 && view.getUint32(p + RECORD_LSN_OFFSET, true) === 0) continue; // cheap skip of zeros
      const size = decodeRecord(buf, view, p, end, 0, UNSALTED);
      if (size <= 0) continue;
      this.offsets.push(p);
      this.lsns.push(recordLsn(view, p));
      p += size - RECORD_ALIGN_BYTES;
    }
    let min = Infinity;
    for (let i = this.lsns.length - 1; i >= 0; i--) {
      this.lsnMinAfter[i] = min;
      min = Math.min(min, this.lsns[i] as number);
    }
  }

  /** True when no top-level record after offset `at` has an LSN at or below `lsn`. */
  noneLaterAtOrBelow(at: number, lsn: number): boolean {
    for (let i = 0; i < this.offsets.length; i++) {
      if ((this.offsets[i] as number) > at) return (this.lsns[i] as number) > lsn && (this.lsnMinAfter[i] as number) > lsn;
    }
    return true;
  }
}

/** From record `lsn` at `at`, valid records follow one another in LSN order up to the clean end. */
function chainReachesEnd(buf: Uint8Array, view: DataView, at: number, end: number, lsn: number): boolean {
  for (;;) {
    const size = decodeRecord(buf, view, at, end, lsn, UNSALTED);
    if (size > 0) {
      at += size;
      lsn++;
      continue;
    }
    return size === DECODE_ZERO && isZero(buf, at, end);
  }
}

/** The header at `p` names `lsn` and a length that ends within `end`: record `lsn` with a damaged body. */
function headerNames(view: DataView, p: number, end: number, lsn: number): number {
  if (p + RECORD_HEADER_BYTES > end || recordLsn(view, p) !== lsn) return 0;
  const size = recordBytes(recordPayloadBytes(view, p));
  return p + size <= end ? size : 0;
}

/**
 * Looks past damage at `offset` (where LSN `expectedLsn` should have been) in the last segment, a
 * salted (version 2) one, by the decision table's proof of a later batch. Returns null when what
 * follows is consistent with a torn tail (row 5), or the reason it proves a later batch (row 4).
 */
function judgeSaltedTail(buf: Uint8Array, view: DataView, offset: number, end: number, expectedLsn: number, salt: number, base = 0): string | null {
  assert((offset & (RECORD_ALIGN_BYTES - 1)) === 0, 'damage starts where a record could start');
  assert(salt !== UNSALTED, 'a salted segment');
  for (let p = offset; p + RECORD_HEADER_BYTES <= end; p += RECORD_ALIGN_BYTES) {
    if (recordSalt(view, p) !== salt) continue; // cheap: nothing without the salt is this segment's
    if (decodeRecord(buf, view, p, end, 0, salt) <= 0) continue;
    const lsn = recordLsn(view, p);
    const batchFirstLsn = lsn - recordBatchDelta(view, p);
    if (batchFirstLsn > expectedLsn) {
      assert(lsn > expectedLsn, 'a record of a later batch comes after the damage in LSN order');
      return `a later batch (from LSN ${batchFirstLsn}; LSN ${lsn} at offset ${base + p}) was written after it, so LSN ${expectedLsn} had been acknowledged`;
    }
  }
  return null;
}

/**
 * The same for a version-1 (unsalted) last segment, by the continuation rule of the decision table.
 */
function judgeUnsaltedTail(buf: Uint8Array, view: DataView, offset: number, end: number, expectedLsn: number, base = 0): string | null {
  assert((offset & (RECORD_ALIGN_BYTES - 1)) === 0, 'damage starts where a record could start');
  const top = new TopLevelRecords(buf, view, offset + RECORD_ALIGN_BYTES, end);
  // Walk this log's own sequence: record `lsn` should start at `at`.
  let at = offset;
  let lsn = expectedLsn;
  while (at + RECORD_HEADER_BYTES <= end) {
    const size = decodeRecord(buf, view, at, end, lsn, UNSALTED);
    if (size > 0) {
      const batchFirstLsn = lsn - recordBatchDelta(view, at);
      if (batchFirstLsn > expectedLsn && top.noneLaterAtOrBelow(at, lsn) && chainReachesEnd(buf, view, at, end, lsn)) {
        return `a later batch (from LSN ${batchFirstLsn}; LSN ${lsn} at offset ${base + at}) continues the log, so LSN ${expectedLsn} had been acknowledged`;
      }
      at += size;
      lsn++;
      continue;
    }
    if (size === DECODE_ZERO && isZero(buf, at, end)) return null; // the clean end of what was written
    // Record `lsn` at `at` is damaged. If its header is intact and the next record starts where it
    // says, step over its body (records inside its payload are never looked at).
    const bodySize = headerNames(view, at, end, lsn);
    if (bodySize > 0 && (decodeRecord(buf, view, at + bodySize, end, lsn + 1, UNSALTED) > 0 || headerNames(view, at + bodySize, end, lsn + 1) > 0)) {
      at += bodySize;
      lsn++;
      continue;
    }
    // Its extent is unknown: the next record of this log is the first top-level valid record numbered
    // lsn + 1 past this one's header that no later top-level record contradicts (by an LSN at or below
    // it). Any other valid-looking record is payload bytes.
    let next = -1;
    for (let i = 0; i < top.offsets.length; i++) {
      const p = top.offsets[i] as number;
      if (p < at + RECORD_HEADER_BYTES || top.lsns[i] !== lsn + 1 || (top.lsnMinAfter[i] as number) <= lsn + 1) continue;
      next = p;
      break;
    }
    if (next < 0) {
      // No record numbered lsn + 1: the damage spans more than one record (a zeroed sector of small
      // records). A later batch whose records still run in LSN order to the clean end, and that no later
      // top-level record contradicts, proves all the same that LSN expectedLsn had been acknowledged: the
      // worst a payload copying another log can do here is a refusal, never a cut of acknowledged records.
      for (let i = 0; i < top.offsets.length; i++) {
        const p = top.offsets[i] as number;
        const l = top.lsns[i] as number;
        if (p < at + RECORD_HEADER_BYTES || l <= lsn) continue;
        // Only an LSN the bytes in between could have held: records lsn..l-1 take at least a header each.
        // Another log's records inside a torn record's payload (numbered 100 where 8 was damaged, 24
        // bytes on) are payload, not a later batch: the review of rule d found it refusing such a tail.
        if (l - lsn > Math.floor((p - at) / RECORD_HEADER_BYTES)) continue;
        const batchFirstLsn = l - recordBatchDelta(view, p);
        if (batchFirstLsn > expectedLsn && top.noneLaterAtOrBelow(p, l) && chainReachesEnd(buf, view, p, end, l)) {
          return `a later batch (from LSN ${batchFirstLsn}; LSN ${l} at offset ${base + p}) continues the log past damage that spans records ${lsn} and on, so LSN ${expectedLsn} had been acknowledged`;
        }
      }
      return null;
    }
    at = next;
    lsn++;
  }
  return null;
}

/** What follows X in a version-3 segment: the valid records of the segment (its salt) with LSN >= E. */
interface AfterEnd {
  /** The first of them whose batch began after E: proof of a later batch. */
  laterBatch: { offset: number; lsn: number; batchFirstLsn: number } | null;
  count: number;
  /** File offset just past the last of them (X when there is none). */
  end: number;
}

/**
 * Looks through a version-3 segment from X to the end of its file, in the window's large reads, for
 * valid records carrying the segment's salt with LSN >= E (stale records of older incarnations carry
 * other salts; copies inside payloads carry LSNs below E). Cheap: one word compare per 8 bytes, a CRC
 * only where the salt matches.
 */
async function scanAfterEnd(w: FileWindow, from: number, sizeBytes: number, salt: number, expectedLsn: number): Promise<AfterEnd> {
  assert((from & (RECORD_ALIGN_BYTES - 1)) === 0, 'the end of data is 8-aligned');
  assert(salt !== UNSALTED, 'a version-3 segment is salted');
  const found: AfterEnd = { laterBatch: null, count: 0, end: from };
  let p = from;
  while (p + RECORD_HEADER_BYTES <= sizeBytes) {
    if (p < w.start || p + RECORD_HEADER_BYTES > w.end) await w.fill(p, RECORD_HEADER_BYTES);
    const base = w.start;
    const length = w.length;
    let off = p - base;
    for (; off + RECORD_HEADER_BYTES <= length; off += RECORD_ALIGN_BYTES) {
      if (recordSalt(w.view, off) !== salt) continue;
      const size = decodeRecord(w.buf, w.view, off, length, 0, salt);
      if (size === DECODE_SHORT) {
        const need = recordBytes(recordPayloadBytes(w.view, off));
        if (off + need > length && base + off + need <= sizeBytes) break; // runs past the window only: refill from it
        continue;
      }
      if (size <= 0) continue;
      const lsn = recordLsn(w.view, off);
      if (lsn < expectedLsn) continue;
      found.count++;
      found.end = Math.max(found.end, base + off + size);
      const batchFirstLsn = lsn - recordBatchDelta(w.view, off);
      if (batchFirstLsn > expectedLsn && found.laterBatch === null) found.laterBatch = { offset: base + off, lsn, batchFirstLsn };
    }
    if (off + RECORD_HEADER_BYTES <= length) {
      // A record that runs past the window: read it whole.
      p = base + off;
      await w.fill(p, recordBytes(recordPayloadBytes(w.view, off)));
      continue;
    }
    p = base + off;
  }
  return found;
}

/** The least a cut of a version-3 segment copies and zeros from X, in bytes: a page, end marker included. */
export const TORN_RECYCLED_BYTES_MIN = 4096;

/**
 * Decides the end of a version-3 (recycled) segment whose record at `offset` (X, LSN E expected) did not
 * decode: rows 1r..5r of the decision table. Returns null at the clean end; the torn tail to cut
 * (bounded) in the last segment; else throws WAL_CORRUPT.
 */
async function judgeRecycledEnd(w: FileWindow, dir: string, name: string, offset: number, expected: number, salt: number, isLast: boolean, strict: boolean): Promise<{ torn: TornTail } | null> {
  const sizeBytes = w.sizeBytes;
  // No room for a header, or an all-zero one: where the writer's end marker is after a durable commit.
  const noRoom = offset + RECORD_HEADER_BYTES > sizeBytes;
  if (!noRoom) await w.fill(offset, RECORD_HEADER_BYTES);
  const code = noRoom ? DECODE_ZERO : decodeRecord(w.buf, w.view, 0, w.length, expected, salt);
  assert(code <= 0, 'the record at the end of data does not decode');
  const after = await scanAfterEnd(w, offset, sizeBytes, salt, expected);
  if (code === DECODE_ZERO && offset > SEGMENT_HEADER_BYTES && after.count === 0) return null; // row 1r: clean end
  const reason =
    code === DECODE_ZERO
      ? `end marker followed by ${after.count} record(s) of this segment numbered from LSN ${expected} on (last one ends at offset ${after.end})`
      : `${describeDecode(code)} where the end marker or LSN ${expected} should be`;
  if (!isLast) throw corrupt(dir, name, offset, `${reason} (LSN ${expected}) in a recycled segment that is not the last`, { lsn: expected });
  if (offset === SEGMENT_HEADER_BYTES) throw corrupt(dir, name, offset, `${reason}: the first record of the last segment (LSN ${expected})`, { lsn: expected });
  const later = after.laterBatch;
  if (later !== null) {
    throw corrupt(dir, name, offset, `${reason} (LSN ${expected}); a later batch (from LSN ${later.batchFirstLsn}; LSN ${later.lsn} at offset ${later.offset}) was written after it, so LSN ${expected} had been acknowledged`, { lsn: expected });
  }
  if (strict) throw corrupt(dir, name, offset, `torn tail: ${reason} (LSN ${expected}); refused by recovery: 'strict'`, { lsn: expected, tornTail: true });
  // The cut copies and zeros from X to the end of the last record of this segment after it (at least a
  // page): never the old bytes of the whole file. Zeros at X are the end marker again.
  const cutEnd = Math.min(sizeBytes, Math.max(after.end, offset + TORN_RECYCLED_BYTES_MIN));
  return { torn: { file: `${dir}/${name}`, offset, bytes: cutEnd - offset, reason } };
}

/**
 * Scans the named segments in order (the decision table above). `crcWalk`: the addon's walk that checks
 * the records' CRCs a window at a time (null: each record's CRC is checked in JavaScript); tests compare both.
 */
export async function recoverSegments(fs: FileSystem, dir: string, names: readonly string[], strict: boolean, crcWalk: RecordCrcWalk | null = recordCrcWalker()): Promise<RecoveryResult> {
  const segments: RecoveredSegment[] = [];
  const buffers = newScanBuffers();
  let torn: TornTail | null = null;
  let bytesScanned = 0;
  let prevLastLsn = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const isLast = i === names.length - 1;
    const handle = await fs.open(`${dir}/${name}`, 'r');
    let w: FileWindow | null = null;
    try {
      const { sizeBytes } = await handle.stat();
      bytesScanned += sizeBytes;
      w = new FileWindow(handle, sizeBytes, buffers);
      await w.fill(0, SEGMENT_HEADER_BYTES);
      const header = decodeSegmentHeader(w.buf.subarray(0, w.length));
      if (!header.ok) throw corrupt(dir, name, 0, header.reason);
      if (segmentName(header.firstLsn) !== name) throw corrupt(dir, name, SEGMENT_FIRST_LSN_OFFSET, `header says first LSN ${header.firstLsn}, name disagrees`);
      if (i > 0 && header.firstLsn !== prevLastLsn + 1) {
        throw corrupt(dir, name, 0, `LSN gap: previous segment ends at LSN ${prevLastLsn}, this one starts at ${header.firstLsn}`, { lsn: prevLastLsn + 1 });
      }
      const recycled = header.version === FORMAT_VERSION_RECYCLED;
      let expected = header.firstLsn;
      let offset = SEGMENT_HEADER_BYTES;
      let damage: { code: number } | null = null;
      const index = new SegmentIndex(header.firstLsn);
      scan: for (;;) {
        // Decode what the window holds, synchronously; leave the loop only to refill it.
        const base = w.start;
        const windowEnd = w.length;
        const atEof = w.end >= sizeBytes;
        let off = offset - base;
        // Records starting before `crcsChecked` had their CRC checked by the addon's walk (the same records:
        // it walks from `off` by the same lengths); the walk goes on from the first record it stopped at.
        let crcsChecked = off;
        for (;;) {
          if (windowEnd - off < RECORD_HEADER_BYTES && !atEof) break; // header not in the window: refill
          if (off >= crcsChecked) crcsChecked = walkCrcs(crcWalk, w.buf, w.view, off, windowEnd);
          const r = decodeRecord(w.buf, w.view, off, windowEnd, expected, header.salt, off < crcsChecked);
          if (r > 0) {
            assert(recordLsn(w.view, off) === expected, 'decoded LSN is the expected one');
            if (expected !== header.firstLsn) index.add(expected, base + off);
            off += r;
            expected++;
            continue;
          }
          if (r === DECODE_SHORT && !atEof && windowEnd - off >= RECORD_HEADER_BYTES) {
            const need = recordBytes(recordPayloadBytes(w.view, off));
            if (base + off + need <= sizeBytes) {
              // The record runs past the window but not past the file: refill from it.
              offset = base + off;
              await w.fill(offset, Math.max(need, Math.min(SCAN_CHUNK_BYTES, w.buf.byteLength)));
              continue scan;
            }
          }
          offset = base + off;
          // A version-3 segment's end is decided after the scan (rows 1r..5r); a fresh one's here.
          if (!recycled && r === DECODE_ZERO && offset > SEGMENT_HEADER_BYTES && (await w.zeroFrom(offset))) break scan; // clean end
          damage = { code: r };
          break scan;
        }
        offset = base + off;
        await w.fill(offset, 0);
      }
      if (damage && recycled) {
        const verdict = await judgeRecycledEnd(w, dir, name, offset, expected, header.salt, isLast, strict);
        if (verdict !== null) torn = verdict.torn;
        damage = null;
      }
      if (damage) {
        const reason = damage.code === DECODE_ZERO ? 'zeroed record header followed by data' : describeDecode(damage.code);
        if (!isLast) throw corrupt(dir, name, offset, `${reason} (LSN ${expected}) in a segment that is not the last`, { lsn: expected });
        if (offset === SEGMENT_HEADER_BYTES) throw corrupt(dir, name, offset, `${reason}: the first record of the last segment (LSN ${expected})`, { lsn: expected });
        // Rare path: look at everything after the damage at once.
        await w.fill(offset, sizeBytes - offset);
        // The window starts at the damage: offsets in the verdict are the file's (base = offset).
        const verdict = header.salt === UNSALTED ? judgeUnsaltedTail(w.buf, w.view, 0, w.length, expected, offset) : judgeSaltedTail(w.buf, w.view, 0, w.length, expected, header.salt, offset);
        if (verdict !== null) throw corrupt(dir, name, offset, `${reason} (LSN ${expected}); ${verdict}`, { lsn: expected });
        if (strict) throw corrupt(dir, name, offset, `torn tail: ${reason} (LSN ${expected}); refused by recovery: 'strict'`, { lsn: expected, tornTail: true });
        torn = { file: `${dir}/${name}`, offset, bytes: lastNonZero(w.buf, 0, w.length) + 1, reason };
      }
      const lastLsn = expected - 1;
      assert(lastLsn >= header.firstLsn, 'a named segment holds at least one record');
      segments.push({ index, name, firstLsn: header.firstLsn, salt: header.salt, lastLsn, endOffset: offset, fileSizeBytes: sizeBytes, version: header.version });
      prevLastLsn = lastLsn;
    } finally {
      await w?.settle();
      await handle.close();
    }
  }
  return { segments, lastLsn: prevLastLsn, torn, bytesScanned };
}
