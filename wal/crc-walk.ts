/**
 * The addon's CRC walk (fs/native/record-crc.c, fs/page-cache.ts recordCrcWalker) as recovery and the reader
 * use it: a loop that decodes records one by one calls walkCrcs at the first record the last walk did not
 * vouch for, and skips the JavaScript CRC of every record that starts before what it returns (the walk and
 * the loop step by the same lengths from the same start). docs/decisions.md, "Recovery's CRCs in the addon".
 */
import { recordCrcMethod, type RecordCrcMethod, type RecordCrcWalk } from '../fs/page-cache.js';
import { RECORD_HEADER_BYTES, recordBytes, recordPayloadBytes } from '../record/format.js';
import { CRC_WALK_RECORD_BYTES_MAX } from './limits.js';

/**
 * The largest record (framed) to send the addon's CRC calls (walk and fill) under `method`: every record
 * where it multiplies carry-less ('clmul': faster than zlib.crc32 at every size, ~14 GB/s here against
 * zlib.crc32's ~4 on a 4 KiB record called from JavaScript), CRC_WALK_RECORD_BYTES_MAX where it walks a
 * table. docs/decisions.md, "CRC-32 by carry-less multiplication".
 */
export function crcAddonRecordBytesMax(method: RecordCrcMethod | null = recordCrcMethod()): number {
  return method === 'clmul' ? Number.MAX_SAFE_INTEGER : CRC_WALK_RECORD_BYTES_MAX;
}

/**
 * Where the records from `off` in buf[off, end) have their CRCs checked up to: `off` itself where there is
 * no walk, no header in reach, or the record there is over `recordBytesMax` (default: this process's
 * crcAddonRecordBytesMax; the walk would stop at it at once: a log of large records made one call per
 * record for nothing).
 */
export function walkCrcs(walk: RecordCrcWalk | null, buf: Uint8Array, view: DataView, off: number, end: number, recordBytesMax = crcAddonRecordBytesMax()): number {
  if (walk === null || end - off < RECORD_HEADER_BYTES || recordBytes(recordPayloadBytes(view, off)) > recordBytesMax) return off;
  return walk(buf, off, end, recordBytesMax);
}
