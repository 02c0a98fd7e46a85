/**
 * The WAL's on-disk format. Pure encode/decode: no I/O here.
 *
 * A segment file is named by its first LSN in 16 lower-case hex digits plus ".wal"
 * (0000000000000001.wal), so that name order is LSN order. It is preallocated with zeros to its full
 * size, so a commit overwrites allocated blocks and fdatasync has no file-size metadata to write.
 *
 * Segment header (32 bytes, at offset 0):
 *
 *   0         8         12        16                  24        28        32
 *   +---------+---------+---------+-------------------+---------+---------+
 *   | magic   | version | header  | first LSN         | segment | CRC-32  |
 *   | 8 bytes | u32     | bytes   | u64               | bytes   | of 0..28|
 *   +---------+---------+---------+-------------------+---------+---------+
 *
 * Records follow, each starting at a multiple of 8 bytes:
 *
 *   0         4         8                   16        20        24
 *   +---------+---------+-------------------+---------+---------+------------------+-----------+
 *   | CRC-32  | payload | LSN               | batch   | flags   | payload          | zero pad  |
 *   |         | bytes   | u64               | delta   | (0)     | (payload bytes)  | to 8 bytes|
 *   +---------+---------+-------------------+---------+---------+------------------+-----------+
 *
 *   CRC-32 covers every byte after itself up to the end of the padding.
 *   batch delta = LSN - (first LSN of the write batch the record was committed in). Recovery uses it to
 *   tell a torn tail (damage inside the last, unacknowledged batch) from corruption of a batch that a
 *   later batch followed (which was therefore acknowledged).
 *
 * All integers little-endian. The data ends at the first all-zero record header, or at the end of the
 * file. LSNs inside a segment are contiguous and start at the header's first LSN.
 *
 * FORMAT CONSTANTS: changing any of these breaks every file already written. Bump FORMAT_VERSION.
 */
import { crc32 } from './crc.js';
import { assert } from './errors.js';

export const SEGMENT_MAGIC = new Uint8Array([0x46, 0x4c, 0x55, 0x53, 0x48, 0x50, 0x4e, 0x54]); // "FLUSHPNT"
export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 24;
export const RECORD_ALIGN_BYTES = 8;
/** Largest payload the format can describe (u32 length); segments usually cap it lower. */
export const PAYLOAD_BYTES_MAX_FORMAT = 0xffff_fff0;
const TWO_32 = 0x1_0000_0000;

export const SEGMENT_NAME_RE = /^[0-9a-f]{16}\.wal$/;

export function segmentName(firstLsn: number): string {
  return firstLsn.toString(16).padStart(16, '0') + '.wal';
}

export function parseSegmentName(name: string): number | null {
  if (!SEGMENT_NAME_RE.test(name)) return null;
  const lsn = Number.parseInt(name.slice(0, 16), 16);
  return Number.isSafeInteger(lsn) && lsn >= 1 ? lsn : null;
}

/** Bytes a record with this payload takes on disk, header and padding included. */
export function recordBytes(payloadBytes: number): number {
  return (RECORD_HEADER_BYTES + payloadBytes + RECORD_ALIGN_BYTES - 1) & ~(RECORD_ALIGN_BYTES - 1);
}

function writeU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % TWO_32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_32), true);
}

function readU64(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * TWO_32;
}

export function encodeSegmentHeader(firstLsn: number, segmentSizeBytes: number): Uint8Array {
  assert(Number.isSafeInteger(firstLsn) && firstLsn >= 1, `segment first LSN ${firstLsn}`);
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(SEGMENT_MAGIC, 0);
  view.setUint32(8, FORMAT_VERSION, true);
  view.setUint32(12, SEGMENT_HEADER_BYTES, true);
  writeU64(view, 16, firstLsn);
  view.setUint32(24, Math.min(segmentSizeBytes, 0xffff_ffff), true);
  view.setUint32(28, crc32(out.subarray(0, 28)), true);
  return out;
}

export type SegmentHeaderResult = { ok: true; firstLsn: number } | { ok: false; reason: string };

export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeaderResult {
  if (bytes.byteLength < SEGMENT_HEADER_BYTES) return { ok: false, reason: 'segment header is short' };
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) return { ok: false, reason: 'bad magic' };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(28, true) !== crc32(bytes.subarray(0, 28))) return { ok: false, reason: 'segment header CRC mismatch' };
  const version = view.getUint32(8, true);
  if (version !== FORMAT_VERSION) return { ok: false, reason: `unsupported format version ${version}` };
  if (view.getUint32(12, true) !== SEGMENT_HEADER_BYTES) return { ok: false, reason: 'bad header size' };
  const firstLsn = readU64(view, 16);
  if (!Number.isSafeInteger(firstLsn) || firstLsn < 1) return { ok: false, reason: `bad first LSN ${firstLsn}` };
  return { ok: true, firstLsn };
}

/**
 * Encodes one record into `out` at `offset` (which must be 8-aligned and have recordBytes(len) bytes of
 * room; the padding bytes must be zero or are zeroed here). Returns the offset after the record.
 */
export function encodeRecord(out: Uint8Array, view: DataView, offset: number, lsn: number, batchDelta: number, payload: Uint8Array): number {
  const size = recordBytes(payload.byteLength);
  assert((offset & (RECORD_ALIGN_BYTES - 1)) === 0, 'record offset must be aligned');
  assert(batchDelta >= 0 && batchDelta <= 0xffff_ffff, 'batch delta out of range');
  view.setUint32(offset + 4, payload.byteLength, true);
  writeU64(view, offset + 8, lsn);
  view.setUint32(offset + 16, batchDelta, true);
  view.setUint32(offset + 20, 0, true);
  out.set(payload, offset + RECORD_HEADER_BYTES);
  const end = offset + size;
  out.fill(0, offset + RECORD_HEADER_BYTES + payload.byteLength, end);
  view.setUint32(offset, crc32(out.subarray(offset + 4, end)), true);
  return end;
}

/** Outcomes of decodeRecord other than a record (which is returned as its size, > 0). */
export const DECODE_ZERO = 0; // an all-zero header: the clean end of data
export const DECODE_SHORT = -1; // not enough bytes left for the header or the payload
export const DECODE_BAD_LSN = -2; // the header names another LSN than expected
export const DECODE_BAD_CRC = -3; // checksum mismatch (or a nonzero reserved field)

/**
 * Checks the record at `offset` against `expectedLsn` (0: accept any LSN >= 1). Returns its size in
 * bytes (> 0) when valid, or one of the DECODE_* codes. Allocates nothing.
 */
export function decodeRecord(buf: Uint8Array, view: DataView, offset: number, end: number, expectedLsn: number): number {
  if (offset + RECORD_HEADER_BYTES > end) {
    for (let i = offset; i < end; i++) if (buf[i] !== 0) return DECODE_SHORT;
    return DECODE_ZERO;
  }
  const crc = view.getUint32(offset, true);
  const payloadBytes = view.getUint32(offset + 4, true);
  const lsn = readU64(view, offset + 8);
  if (crc === 0 && payloadBytes === 0 && lsn === 0 && view.getUint32(offset + 16, true) === 0 && view.getUint32(offset + 20, true) === 0) {
    return DECODE_ZERO;
  }
  if (expectedLsn !== 0 ? lsn !== expectedLsn : lsn < 1 || !Number.isSafeInteger(lsn)) return DECODE_BAD_LSN;
  const size = recordBytes(payloadBytes);
  if (payloadBytes > PAYLOAD_BYTES_MAX_FORMAT || offset + size > end) return DECODE_SHORT;
  if (view.getUint32(offset + 20, true) !== 0) return DECODE_BAD_CRC;
  if (crc32(buf.subarray(offset + 4, offset + size)) !== crc) return DECODE_BAD_CRC;
  return size;
}

export function recordLsn(view: DataView, offset: number): number {
  return readU64(view, offset + 8);
}

export function recordBatchDelta(view: DataView, offset: number): number {
  return view.getUint32(offset + 16, true);
}

export function recordPayloadBytes(view: DataView, offset: number): number {
  return view.getUint32(offset + 4, true);
}

export function describeDecode(code: number): string {
  switch (code) {
    case DECODE_ZERO:
      return 'zeroed record header';
    case DECODE_SHORT:
      return 'record runs past the end of the file or has an impossible length';
    case DECODE_BAD_LSN:
      return 'record LSN is not the next LSN';
    case DECODE_BAD_CRC:
      return 'record checksum mismatch';
    default:
      return `decode code ${code}`;
  }
}
