/**
 * The WAL's on-disk format. Pure encode/decode: no I/O here.
 *
 * A segment file is named by its first LSN in 16 lower-case hex digits plus ".wal"
 * (0000000000000001.wal), so that name order is LSN order. It is zero-filled in steps ahead of the write
 * position (wal/segment-preparer.ts), so a commit usually overwrites allocated blocks and fdatasync has no
 * file-size metadata to write; a segment whose preparation is late starts as a plain growing file.
 *
 * Segment header (32 bytes, at offset 0), format version 2:
 *
 *   0         8         12        16                  24        28        32
 *   +---------+---------+---------+-------------------+---------+---------+
 *   | magic   | version | header  | first LSN         | salt    | CRC-32  |
 *   | 8 bytes | u32 = 2 | bytes   | u64               | u32     | of 0..28|
 *   +---------+---------+---------+-------------------+---------+---------+
 *
 *   salt: a random u32 (never 0), drawn when the segment is made. Every record written into the
 *   segment carries it (record/format.ts), and a record counts as the segment's only if it does: bytes
 *   of another log or of another segment of this one, inside a payload or left over in a file, are not
 *   taken for records of this segment (except with probability 2^-32 at a given place).
 *
 * Format version 3, a recycled segment (segment-recycler.ts): the same header and records, written over
 * a file that held an older segment, so stale bytes (old records with other salts, or the middle of an
 * old record) may follow the live data where a fresh segment has zeros. Its writer puts an END MARKER
 * (an all-zero 24-byte record header) right after the last record, in the same writev as every commit,
 * unless fewer than 24 bytes of the file remain: after any durable commit the byte after the last
 * record starts a zero header (or the file ends within 24 bytes). Recovery's rows for it are in
 * recovery.ts. A fresh segment is version 2 and never carries markers (nothing but zeros follows it).
 *
 * Format version 1 (still read, never written): the same, except bytes 24..28 held the segment size
 * (never read), and records carry 0 where version 2 has the salt: a version-1 segment reads as salt 0.
 * A log may hold both: new segments are version 2, and appends to a version-1 last segment carry 0.
 *
 * Records follow, framed as record/format.ts draws them, each starting at a multiple of 8 bytes.
 *
 * All integers little-endian. The data ends at the first all-zero record header, or at the end of the
 * file (version 3: at the end marker, as recovery.ts decides). LSNs inside a segment are contiguous and start at the header's first LSN.
 *
 * FORMAT CONSTANTS: changing any of these breaks every file already written. Bump FORMAT_VERSION.
 */
import { crc32 } from '../core/crc.js';
import { assert } from '../core/errors.js';
import { readU64, writeU64 } from '../core/u64.js';

export const SEGMENT_MAGIC = new Uint8Array([0x46, 0x4c, 0x55, 0x53, 0x48, 0x50, 0x4e, 0x54]); // "FLUSHPNT"
export const FORMAT_VERSION = 2;
/** A segment written over a recycled file: stale bytes may follow its end marker. */
export const FORMAT_VERSION_RECYCLED = 3;
/** The end marker of a version-3 segment: an all-zero record header, this many bytes. */
export const END_MARKER_BYTES = 24;
/** The previous format version, still read: its segments have salt 0. */
export const FORMAT_VERSION_UNSALTED = 1;
export const SEGMENT_HEADER_BYTES = 32;
/** Byte offsets of the segment header's fields. */
export const SEGMENT_VERSION_OFFSET = 8;
export const SEGMENT_HEADER_BYTES_OFFSET = 12;
export const SEGMENT_FIRST_LSN_OFFSET = 16;
export const SEGMENT_SALT_OFFSET = 24;
export const SEGMENT_HEADER_CRC_OFFSET = 28;

export const SEGMENT_NAME_RE = /^[0-9a-f]{16}\.wal$/;

export function segmentName(firstLsn: number): string {
  return firstLsn.toString(16).padStart(16, '0') + '.wal';
}

export function parseSegmentName(name: string): number | null {
  if (!SEGMENT_NAME_RE.test(name)) return null;
  const lsn = Number.parseInt(name.slice(0, 16), 16);
  return Number.isSafeInteger(lsn) && lsn >= 1 ? lsn : null;
}

/** version: FORMAT_VERSION (a fresh, zero-filled file) or FORMAT_VERSION_RECYCLED (written over a recycled file). */
export function encodeSegmentHeader(firstLsn: number, salt: number, version: number = FORMAT_VERSION): Uint8Array {
  assert(version === FORMAT_VERSION || version === FORMAT_VERSION_RECYCLED, `segment format version ${version} is not written`);
  assert(Number.isSafeInteger(firstLsn) && firstLsn >= 1, `segment first LSN ${firstLsn}`);
  assert(salt >>> 0 === salt && salt !== 0, `segment salt ${salt} must be a nonzero u32`);
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(SEGMENT_MAGIC, 0);
  view.setUint32(SEGMENT_VERSION_OFFSET, version, true);
  view.setUint32(SEGMENT_HEADER_BYTES_OFFSET, SEGMENT_HEADER_BYTES, true);
  writeU64(view, SEGMENT_FIRST_LSN_OFFSET, firstLsn);
  view.setUint32(SEGMENT_SALT_OFFSET, salt, true);
  view.setUint32(SEGMENT_HEADER_CRC_OFFSET, crc32(out.subarray(0, SEGMENT_HEADER_CRC_OFFSET)), true);
  return out;
}

/** salt: what every record of the segment must carry (0 for a version-1 segment). */
export type SegmentHeaderResult = { ok: true; firstLsn: number; version: number; salt: number } | { ok: false; reason: string };

export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeaderResult {
  if (bytes.byteLength < SEGMENT_HEADER_BYTES) return { ok: false, reason: 'segment header is short' };
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) return { ok: false, reason: 'bad magic' };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(SEGMENT_HEADER_CRC_OFFSET, true) !== crc32(bytes.subarray(0, SEGMENT_HEADER_CRC_OFFSET))) return { ok: false, reason: 'segment header CRC mismatch' };
  const version = view.getUint32(SEGMENT_VERSION_OFFSET, true);
  if (version !== FORMAT_VERSION && version !== FORMAT_VERSION_UNSALTED && version !== FORMAT_VERSION_RECYCLED) {
    return { ok: false, reason: `unsupported format version ${version} (this version reads ${FORMAT_VERSION_UNSALTED} to ${FORMAT_VERSION_RECYCLED})` };
  }
  if (view.getUint32(SEGMENT_HEADER_BYTES_OFFSET, true) !== SEGMENT_HEADER_BYTES) return { ok: false, reason: 'bad header size' };
  const firstLsn = readU64(view, SEGMENT_FIRST_LSN_OFFSET);
  if (!Number.isSafeInteger(firstLsn) || firstLsn < 1) return { ok: false, reason: `bad first LSN ${firstLsn}` };
  const salt = version === FORMAT_VERSION_UNSALTED ? 0 : view.getUint32(SEGMENT_SALT_OFFSET, true);
  if (version !== FORMAT_VERSION_UNSALTED && salt === 0) return { ok: false, reason: 'segment salt is 0' };
  return { ok: true, firstLsn, version, salt };
}

/** A salt for a new segment: a nonzero u32 drawn from `random`. */
export function drawSegmentSalt(random: { int(n: number): number }): number {
  const salt = 1 + random.int(0xffff_ffff);
  assert(salt >= 1 && salt <= 0xffff_ffff && Number.isInteger(salt), `segment salt ${salt}`);
  return salt;
}

