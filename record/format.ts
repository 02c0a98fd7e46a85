/**
 * The record framing, shared by the WAL's segments and the backup's files (which carry WAL records
 * verbatim, so per-record CRCs hold end to end). Pure encode/decode: no I/O here.
 *
 * Each record starts at a multiple of 8 bytes:
 *
 *   0         4         8                   16        20        24
 *   +---------+---------+-------------------+---------+---------+------------------+-----------+
 *   | CRC-32  | payload | LSN               | batch   | salt    | payload          | zero pad  |
 *   |         | bytes   | u64               | delta   | u32     | (payload bytes)  | to 8 bytes|
 *   +---------+---------+-------------------+---------+---------+------------------+-----------+
 *
 *   CRC-32 covers every byte after itself up to the end of the padding.
 *   batch delta = LSN - (first LSN of the write batch the record was committed in). Recovery uses it to
 *   tell a torn tail (damage inside the last, unacknowledged batch) from corruption of a batch that a
 *   later batch followed (which was therefore acknowledged).
 *   salt = the salt of the WAL segment the record was written into (wal/format.ts, format version 2; a
 *   version-1 segment has salt 0 and this word, then called flags, was always 0). A record is a record
 *   of a segment only if its salt is that segment's: WAL-framed bytes of another log or of another
 *   segment (inside a payload, or left in a file) then pass for one of ours only with probability
 *   2^-32, as Pebble's recyclable records carry their log number.
 *
 * All integers little-endian. An all-zero record header is the clean end of data (in a segment written
 * over a recycled file, format version 3, it is the end marker its writer puts after every commit:
 * wal/recovery.ts decides the end there, rows 1r..5r).
 *
 * FORMAT CONSTANTS: changing any of these breaks every file already written.
 */
import { crc32Range } from '../core/crc.js';
import { assert } from '../core/errors.js';
import { readU64, writeU64 } from '../core/u64.js';

export const RECORD_HEADER_BYTES = 24;
export const RECORD_ALIGN_BYTES = 8;
/** Byte offsets of the header's fields, from the record's start. */
export const RECORD_CRC_OFFSET = 0;
export const RECORD_PAYLOAD_BYTES_OFFSET = 4;
export const RECORD_LSN_OFFSET = 8;
export const RECORD_BATCH_DELTA_OFFSET = 16;
export const RECORD_SALT_OFFSET = 20;
/** Largest payload the format can describe (u32 length); segments usually cap it lower. */
export const PAYLOAD_BYTES_MAX_FORMAT = 0xffff_fff0;
/** decodeRecord's expectedSalt for callers that take a record's salt as written (backup files, which
 * carry records of several segments verbatim). Never a salt (salts are u32). */
export const SALT_ANY = -1;

/**
 * Bytes a record with this payload takes on disk, header and padding included. Exact for every u32 length:
 * past 2^31 - 32 the 32-bit mask would wrap (a damaged length of 0xffffffe9 passed for an 8-byte record).
 */
export function recordBytes(payloadBytes: number): number {
  const n = RECORD_HEADER_BYTES + payloadBytes + RECORD_ALIGN_BYTES - 1;
  return n <= 0x7fff_ffff ? n & ~(RECORD_ALIGN_BYTES - 1) : n - (n % RECORD_ALIGN_BYTES);
}

/**
 * Encodes one record into `out` at `offset` (which must be 8-aligned and have recordBytes(len) bytes of
 * room; the padding bytes must be zero or are zeroed here), carrying `salt` (its segment's). Returns the
 * offset after the record. `withCrc` false stores 0 as its CRC: the caller stores the CRC before the
 * record is used (the WAL's staging, one addon call per run of records: wal/staging.ts).
 */
export function encodeRecord(out: Uint8Array, view: DataView, offset: number, lsn: number, batchDelta: number, salt: number, payload: Uint8Array, withCrc = true): number {
  const size = recordBytes(payload.byteLength);
  assert((offset & (RECORD_ALIGN_BYTES - 1)) === 0, 'record offset must be aligned');
  assert(batchDelta >= 0 && batchDelta <= 0xffff_ffff, 'batch delta out of range');
  assert(salt >>> 0 === salt, 'salt is a u32');
  view.setUint32(offset + RECORD_PAYLOAD_BYTES_OFFSET, payload.byteLength, true);
  writeU64(view, offset + RECORD_LSN_OFFSET, lsn);
  view.setUint32(offset + RECORD_BATCH_DELTA_OFFSET, batchDelta, true);
  view.setUint32(offset + RECORD_SALT_OFFSET, salt, true);
  out.set(payload, offset + RECORD_HEADER_BYTES);
  const end = offset + size;
  const payloadEnd = offset + RECORD_HEADER_BYTES + payload.byteLength;
  if (payloadEnd < end) out.fill(0, payloadEnd, end);
  view.setUint32(offset, withCrc ? crc32Range(out, offset + RECORD_PAYLOAD_BYTES_OFFSET, end) : 0, true);
  return end;
}

/** Outcomes of decodeRecord other than a record (which is returned as its size, > 0). */
export const DECODE_ZERO = 0; // an all-zero header: the clean end of data
export const DECODE_SHORT = -1; // not enough bytes left for the header or the payload
export const DECODE_BAD_LSN = -2; // the header names another LSN than expected
export const DECODE_BAD_CRC = -3; // checksum mismatch
export const DECODE_BAD_SALT = -4; // the salt is not the segment's: another segment's or log's record, or damage

/**
 * Checks the record at `offset` against `expectedLsn` (0: accept any LSN >= 1) and `expectedSalt` (its
 * segment's salt; SALT_ANY: accept the salt as written). Returns its size in bytes (> 0) when valid, or
 * one of the DECODE_* codes. Allocates nothing. `crcChecked`: the caller has already found this record's
 * CRC to match (the addon's walk over a run of records, wal/recovery.ts), so it is not computed again.
 */
export function decodeRecord(buf: Uint8Array, view: DataView, offset: number, end: number, expectedLsn: number, expectedSalt: number, crcChecked = false): number {
  if (offset + RECORD_HEADER_BYTES > end) {
    for (let i = offset; i < end; i++) if (buf[i] !== 0) return DECODE_SHORT;
    return DECODE_ZERO;
  }
  const crc = view.getUint32(offset, true);
  const payloadBytes = view.getUint32(offset + RECORD_PAYLOAD_BYTES_OFFSET, true);
  const lsn = readU64(view, offset + RECORD_LSN_OFFSET);
  if (crc === 0 && payloadBytes === 0 && lsn === 0 && view.getUint32(offset + RECORD_BATCH_DELTA_OFFSET, true) === 0 && view.getUint32(offset + RECORD_SALT_OFFSET, true) === 0) {
    return DECODE_ZERO;
  }
  if (expectedLsn !== 0 ? lsn !== expectedLsn : lsn < 1 || !Number.isSafeInteger(lsn)) return DECODE_BAD_LSN;
  const size = recordBytes(payloadBytes);
  if (payloadBytes > PAYLOAD_BYTES_MAX_FORMAT || offset + size > end) return DECODE_SHORT;
  if (expectedSalt !== SALT_ANY && view.getUint32(offset + RECORD_SALT_OFFSET, true) !== expectedSalt) return DECODE_BAD_SALT;
  if (!crcChecked && crc32Range(buf, offset + RECORD_PAYLOAD_BYTES_OFFSET, offset + size) !== crc) return DECODE_BAD_CRC;
  return size;
}

export function recordLsn(view: DataView, offset: number): number {
  return readU64(view, offset + RECORD_LSN_OFFSET);
}

export function recordSalt(view: DataView, offset: number): number {
  return view.getUint32(offset + RECORD_SALT_OFFSET, true);
}

export function recordBatchDelta(view: DataView, offset: number): number {
  return view.getUint32(offset + RECORD_BATCH_DELTA_OFFSET, true);
}

export function recordPayloadBytes(view: DataView, offset: number): number {
  return view.getUint32(offset + RECORD_PAYLOAD_BYTES_OFFSET, true);
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
    case DECODE_BAD_SALT:
      return "record salt is not its segment's (a record of another segment or log, or damage)";
    default:
      return `decode code ${code}`;
  }
}
