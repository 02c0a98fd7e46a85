/**
 * Recovery: scan every segment, verify every record, and decide where the log ends.
 *
 * Decision table for the first record that does not decode at offset X (E = the LSN expected there):
 *
 *   | segment   | what follows X in the file                              | verdict                     |
 *   |-----------|---------------------------------------------------------|-----------------------------|
 *   | any       | only zeros, X is the first byte after a valid record    | clean end of data           |
 *   | not last  | anything else                                           | WAL_CORRUPT (file, X)       |
 *   | last      | X is the first record of the segment                    | WAL_CORRUPT: a segment gets |
 *   |           |                                                         | its name only once its first|
 *   |           |                                                         | batch is durable            |
 *   | last      | a valid record whose batch began after E                | WAL_CORRUPT: a later batch  |
 *   |           |                                                         | followed, so X's batch was  |
 *   |           |                                                         | acknowledged                |
 *   | last      | a valid record with LSN < E                             | WAL_CORRUPT (impossible     |
 *   |           |                                                         | unless damaged: repair zeros|
 *   |           |                                                         | what it cuts)               |
 *   | last      | zeros, garbage, or valid records of X's own batch       | torn tail: cut (default) or |
 *   |           |                                                         | WAL_CORRUPT if strict       |
 *
 * Between segments, each must start at the LSN after the previous one's last: else WAL_CORRUPT (gap).
 * A torn tail is the unacknowledged last batch: only one batch is ever in flight, so a crash can tear
 * nothing earlier. (A bit flip inside the last acknowledged batch looks the same and is cut too: no
 * format can tell the two apart without a later write.)
 */
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import type { FileHandle, FileSystem } from '../fs/file-system.js';
import { SegmentIndex } from './segment-index.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader, segmentName } from './format.js';
import { DECODE_SHORT, DECODE_ZERO, RECORD_HEADER_BYTES, recordBytes, recordPayloadBytes, decodeRecord, describeDecode, recordBatchDelta, recordLsn, RECORD_ALIGN_BYTES } from '../record/format.js';

export interface RecoveredSegment {
  index: SegmentIndex;
  name: string;
  firstLsn: number;
  /** Last valid LSN in it (firstLsn - 1 if it holds none). */
  lastLsn: number;
  /** Byte offset just past its last valid record. */
  endOffset: number;
  /** Its size on disk. */
  fileSizeBytes: number;
}

export interface TornTail {
  file: string;
  offset: number;
  /** Bytes from offset to the last nonzero byte, inclusive. */
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

/** Read size of the recovery scan: large sequential reads into one reused buffer. */
const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * A window onto a file, refilled by large sequential reads into a reused buffer. The scan loop works
 * on the window synchronously and awaits only to refill it.
 */
class FileWindow {
  buf: Uint8Array;
  view: DataView;
  /** File offset of buf[0], and the number of valid bytes in buf. */
  start = 0;
  length = 0;

  constructor(
    readonly handle: FileHandle,
    readonly sizeBytes: number,
    scratch: { buf: Uint8Array },
  ) {
    if (scratch.buf.byteLength < Math.min(SCAN_CHUNK_BYTES, sizeBytes)) scratch.buf = new Uint8Array(Math.min(SCAN_CHUNK_BYTES, Math.max(sizeBytes, 4096)));
    this.buf = scratch.buf;
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** The file offset up to which the window holds bytes. */
  get end(): number {
    return this.start + this.length;
  }

  /** Makes the window start at `offset` and hold at least `needBytes` (or up to the end of the file). */
  async fill(offset: number, needBytes: number): Promise<void> {
    if (needBytes > this.buf.byteLength) {
      this.buf = new Uint8Array(needBytes);
      this.view = new DataView(this.buf.buffer);
    }
    const want = Math.min(this.buf.byteLength, this.sizeBytes - offset);
    let done = 0;
    while (done < want) {
      const n = await this.handle.read(this.buf, done, want - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    this.start = offset;
    this.length = done;
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
 * Looks past damage at `offset` in the last segment. Returns null when it is consistent with a torn
 * tail, or the reason it is corruption.
 */
function judgeTail(buf: Uint8Array, view: DataView, offset: number, end: number, expectedLsn: number): string | null {
  for (let p = offset + RECORD_ALIGN_BYTES; p + 24 <= end; p += RECORD_ALIGN_BYTES) {
    if (view.getUint32(p, true) === 0 && view.getUint32(p + 8, true) === 0) continue; // cheap skip of zeros
    const size = decodeRecord(buf, view, p, end, 0);
    if (size <= 0) continue;
    const lsn = recordLsn(view, p);
    const batchFirstLsn = lsn - recordBatchDelta(view, p);
    if (lsn < expectedLsn) return `a valid record with older LSN ${lsn} follows at offset ${p}`;
    if (batchFirstLsn > expectedLsn) {
      return `a later batch (from LSN ${batchFirstLsn}, record at offset ${p}) follows, so LSN ${expectedLsn} had been acknowledged`;
    }
    p += size - RECORD_ALIGN_BYTES;
  }
  return null;
}

export async function recoverSegments(fs: FileSystem, dir: string, names: readonly string[], strict: boolean): Promise<RecoveryResult> {
  const segments: RecoveredSegment[] = [];
  const scratch = { buf: new Uint8Array(0) };
  let torn: TornTail | null = null;
  let bytesScanned = 0;
  let prevLastLsn = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const isLast = i === names.length - 1;
    const handle = await fs.open(`${dir}/${name}`, 'r');
    try {
      const { sizeBytes } = await handle.stat();
      bytesScanned += sizeBytes;
      const w = new FileWindow(handle, sizeBytes, scratch);
      await w.fill(0, SEGMENT_HEADER_BYTES);
      const header = decodeSegmentHeader(w.buf.subarray(0, w.length));
      if (!header.ok) throw corrupt(dir, name, 0, header.reason);
      if (segmentName(header.firstLsn) !== name) throw corrupt(dir, name, 16, `header says first LSN ${header.firstLsn}, name disagrees`);
      if (i > 0 && header.firstLsn !== prevLastLsn + 1) {
        throw corrupt(dir, name, 0, `LSN gap: previous segment ends at LSN ${prevLastLsn}, this one starts at ${header.firstLsn}`, { lsn: prevLastLsn + 1 });
      }
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
        for (;;) {
          if (windowEnd - off < RECORD_HEADER_BYTES && !atEof) break; // header not in the window: refill
          const r = decodeRecord(w.buf, w.view, off, windowEnd, expected);
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
          if (r === DECODE_ZERO && offset > SEGMENT_HEADER_BYTES && (await w.zeroFrom(offset))) break scan; // clean end
          damage = { code: r };
          break scan;
        }
        offset = base + off;
        await w.fill(offset, 0);
      }
      if (damage) {
        const reason = damage.code === DECODE_ZERO ? 'zeroed record header followed by data' : describeDecode(damage.code);
        if (!isLast) throw corrupt(dir, name, offset, `${reason} (LSN ${expected}) in a segment that is not the last`, { lsn: expected });
        if (offset === SEGMENT_HEADER_BYTES) throw corrupt(dir, name, offset, `${reason}: the first record of the last segment (LSN ${expected})`, { lsn: expected });
        // Rare path: look at everything after the damage at once.
        await w.fill(offset, sizeBytes - offset);
        const verdict = judgeTail(w.buf, w.view, 0, w.length, expected);
        if (verdict !== null) throw corrupt(dir, name, offset, `${reason} (LSN ${expected}); ${verdict} (offsets from ${offset})`, { lsn: expected });
        if (strict) throw corrupt(dir, name, offset, `torn tail: ${reason} (LSN ${expected}); refused by recovery: 'strict'`, { lsn: expected, tornTail: true });
        torn = { file: `${dir}/${name}`, offset, bytes: lastNonZero(w.buf, 0, w.length) + 1, reason };
      }
      const lastLsn = expected - 1;
      assert(lastLsn >= header.firstLsn, 'a named segment holds at least one record');
      segments.push({ index, name, firstLsn: header.firstLsn, lastLsn, endOffset: offset, fileSizeBytes: sizeBytes });
      prevLastLsn = lastLsn;
    } finally {
      await handle.close();
    }
  }
  return { segments, lastLsn: prevLastLsn, torn, bytesScanned };
}
