/**
 * Reads the records of one segment file in LSN order, in large sequential reads, verifying every
 * record again (the reader does not trust the writer: contiguous LSNs, CRCs and the segment's salt are
 * asserted here too).
 *
 * The scan yields one span per read of up to `chunkBytes`: a run of whole, verified records. Each read
 * goes into a fresh buffer that is never reused, so what is handed out are views into it: no copy per
 * record, and nothing changes under a caller. Consumers pay one await per span, not per record:
 *  - readSegmentBatches: the records of a span as { lsn, payload } (wal.read, wal.readBatches);
 *  - the span's raw bytes, records still framed and checksummed as on disk (wal.readRaw, which the
 *    backup sink copies into backup files without re-framing anything).
 */
import { FlushpointError, ErrorCode } from '../core/errors.js';
import type { FileHandle, FileSystem } from '../fs/file-system.js';
import { recordCrcWalker, type RecordCrcWalk } from '../fs/page-cache.js';
import { SEGMENT_FIRST_LSN_OFFSET, SEGMENT_HEADER_BYTES, SEGMENT_SALT_OFFSET, decodeSegmentHeader } from './format.js';
import { RECORD_HEADER_BYTES, decodeRecord, describeDecode, recordBytes, recordPayloadBytes } from '../record/format.js';
import { CRC_WALK_READ_BYTES_MAX, READ_CHUNK_BYTES } from './limits.js';
import { walkCrcs } from './crc-walk.js';

export interface WalRecord {
  lsn: number;
  /** The record's bytes (a view into a buffer of its own read; the WAL never writes to it again). */
  payload: Uint8Array;
}

/** A run of whole records exactly as framed on disk (format.ts), verified. */
export interface RawSpan {
  firstLsn: number;
  lastLsn: number;
  bytes: Uint8Array;
}


interface Span extends RawSpan {
  buf: Uint8Array;
  /** Offsets in buf of each record's header. */
  offsets: number[];
}

/** Where a scan starts: the segment's first record, or a record start the segment's index knows. */
export interface ScanStart {
  lsn: number;
  offset: number;
}

/** One segment's part of a read: which file, where its durable data ends, and the LSNs wanted. */
export interface SegmentScan {
  fs: FileSystem;
  path: string;
  segmentFirstLsn: number;
  /** The segment's salt (wal/format.ts): each of its records must carry it (0 for a version-1 segment). */
  salt: number;
  /** Bytes of durable data in the file: nothing past it is read. */
  endOffset: number;
  start: ScanStart;
  fromLsn: number;
  toLsn: number;
  /** True once truncateBefore has removed the segment from the log (checked when something does not verify). */
  truncated: () => boolean;
  /** The addon's CRC walk (default: recordCrcWalker(); null: every CRC in JavaScript; tests compare both). */
  crcWalk?: RecordCrcWalk | null;
}

async function* scanSegment(scan: SegmentScan, chunkBytesMax: number): AsyncGenerator<Span> {
  const { fs, path, segmentFirstLsn, salt, endOffset, start, fromLsn, toLsn } = scan;
  const crcWalk = scan.crcWalk === undefined ? recordCrcWalker() : scan.crcWalk;
  // The segment was in the log when the read began: truncateBefore removed it since.
  const truncated = (lsn: number, cause?: unknown): FlushpointError =>
    new FlushpointError(
      ErrorCode.WAL_TRUNCATED,
      `WAL segment ${path} (LSN ${lsn} and on) was removed by truncateBefore while it was being read; hold the LSN (wal.hold) to keep it`,
      { file: path, lsn, cause },
    );
  let handle: FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw truncated(fromLsn, err);
  }
  let expected = start.lsn;
  // Bytes that do not verify are corruption, unless the segment left the log: then its file may have
  // been recycled (segment-recycler.ts) and overwritten under this open descriptor, and what the read
  // met is a later segment's bytes. It never yields them: every record is checked against this
  // segment's salt and the LSN expected (a recycled file's new records carry a new salt and new LSNs).
  const bad = (offset: number, reason: string): FlushpointError =>
    scan.truncated()
      ? truncated(expected, new Error(`at byte offset ${offset}: ${reason}`))
      : new FlushpointError(ErrorCode.WAL_CORRUPT, `WAL corrupt: ${path} at byte offset ${offset}: ${reason}`, { file: path, offset });
  try {
    let filePos = start.offset;
    // The header is checked when the scan starts at the first record (it rides the first read); a scan
    // that starts from the index starts where this process wrote or recovery verified.
    let headerPending = start.offset === SEGMENT_HEADER_BYTES;
    let chunkBytes = chunkBytesMax;
    for (;;) {
      // Read only up to the end of durable data: nothing past it is wanted, and a smaller buffer costs
      // fewer page faults.
      const base = headerPending ? SEGMENT_HEADER_BYTES : 0;
      const dataWant = Math.min(chunkBytes, endOffset - filePos);
      if (dataWant <= 0) throw bad(filePos, `segment data ends before LSN ${expected} (wanted up to ${toLsn})`);
      const buf = new Uint8Array(base + dataWant);
      const n = await handle.read(buf, 0, buf.byteLength, filePos - base);
      if (headerPending) {
        const header = decodeSegmentHeader(buf.subarray(0, Math.min(n, SEGMENT_HEADER_BYTES)));
        if (!header.ok) throw bad(0, header.reason);
        if (header.firstLsn !== segmentFirstLsn) throw bad(SEGMENT_FIRST_LSN_OFFSET, `header says first LSN ${header.firstLsn}, expected ${segmentFirstLsn}`);
        if (header.salt !== salt) throw bad(SEGMENT_SALT_OFFSET, `header says salt ${header.salt}, the segment was opened with ${salt}`);
        headerPending = false;
      }
      const eof = filePos - base + n >= endOffset || n < buf.byteLength;
      const view = new DataView(buf.buffer, 0, n);
      const offsets: number[] = [];
      let spanStart = -1;
      let firstLsn = 0;
      let off = base;
      let done = false;
      // Records starting before `crcsChecked` had their CRC checked by the addon's walk, in steps of at most
      // CRC_WALK_READ_BYTES_MAX (as in recovery: the walk and this loop step by the same lengths).
      let crcsChecked = off;
      chunkBytes = chunkBytesMax;
      while (n - off >= RECORD_HEADER_BYTES) {
        const size = recordBytes(recordPayloadBytes(view, off));
        if (size > n - off) {
          // Only part of this record is in the buffer: read again from it, in a buffer that fits it.
          if (size > chunkBytes) chunkBytes = size;
          break;
        }
        if (off >= crcsChecked) crcsChecked = walkCrcs(crcWalk, buf, view, off, Math.min(n, off + CRC_WALK_READ_BYTES_MAX));
        const r = decodeRecord(buf, view, off, n, expected, salt, off < crcsChecked);
        if (r <= 0) throw bad(filePos + off - base, `${describeDecode(r)} (LSN ${expected}) below the durable LSN`);
        if (expected >= fromLsn) {
          if (spanStart < 0) {
            spanStart = off;
            firstLsn = expected;
          }
          offsets.push(off);
        }
        off += r;
        if (expected >= toLsn) {
          done = true;
          break;
        }
        expected++;
      }
      if (offsets.length > 0) yield { buf, offsets, firstLsn, lastLsn: firstLsn + offsets.length - 1, bytes: buf.subarray(spanStart, off) };
      if (done) return;
      if (off === base && eof) throw bad(filePos, `segment ends before LSN ${expected} (wanted up to ${toLsn})`);
      filePos += off - base;
    }
  } finally {
    await handle.close();
  }
}

export async function* readSegmentBatches(scan: SegmentScan): AsyncGenerator<WalRecord[]> {
  for await (const span of scanSegment(scan, READ_CHUNK_BYTES)) {
    const view = new DataView(span.buf.buffer);
    const batch: WalRecord[] = new Array<WalRecord>(span.offsets.length);
    for (let i = 0; i < span.offsets.length; i++) {
      const off = span.offsets[i] as number;
      const start = off + RECORD_HEADER_BYTES;
      batch[i] = { lsn: span.firstLsn + i, payload: span.buf.subarray(start, start + recordPayloadBytes(view, off)) };
    }
    yield batch;
  }
}

export async function* readSegmentRaw(scan: SegmentScan, chunkBytesMax: number): AsyncGenerator<RawSpan> {
  for await (const span of scanSegment(scan, chunkBytesMax)) {
    yield { firstLsn: span.firstLsn, lastLsn: span.lastLsn, bytes: span.bytes };
  }
}
