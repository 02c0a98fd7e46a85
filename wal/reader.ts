/**
 * Reads the records of one segment file in LSN order, in large sequential reads, verifying every
 * record again (the reader does not trust the writer: contiguous LSNs and CRCs are asserted here too).
 */
import { FlushpointError, ErrorCode } from './errors.js';
import type { FileSystem } from './fs/file-system.js';
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, decodeRecord, decodeSegmentHeader, describeDecode, recordBytes } from './format.js';

export interface WalRecord {
  lsn: number;
  payload: Uint8Array;
}

const READ_CHUNK_BYTES = 1024 * 1024;

export async function* readSegment(fs: FileSystem, path: string, segmentFirstLsn: number, fromLsn: number, toLsn: number): AsyncGenerator<WalRecord> {
  const handle = await fs.open(path, 'r');
  const bad = (offset: number, reason: string): FlushpointError =>
    new FlushpointError(ErrorCode.WAL_CORRUPT, `WAL corrupt: ${path} at byte offset ${offset}: ${reason}`, { file: path, offset });
  try {
    let buf = new Uint8Array(READ_CHUNK_BYTES);
    let n = await handle.read(buf, 0, SEGMENT_HEADER_BYTES, 0);
    const header = decodeSegmentHeader(buf.subarray(0, n));
    if (!header.ok) throw bad(0, header.reason);
    if (header.firstLsn !== segmentFirstLsn) throw bad(16, `header says first LSN ${header.firstLsn}, expected ${segmentFirstLsn}`);
    let expected = segmentFirstLsn;
    let filePos = SEGMENT_HEADER_BYTES;
    for (;;) {
      n = await handle.read(buf, 0, buf.byteLength, filePos);
      const eof = n < buf.byteLength;
      const view = new DataView(buf.buffer, buf.byteOffset, n);
      let off = 0;
      for (;;) {
        if (n - off < RECORD_HEADER_BYTES) break;
        const size = recordBytes(view.getUint32(off + 4, true));
        if (size > n - off) {
          if (size > buf.byteLength && !eof) {
            // Larger than the read buffer: grow it and read again from this record.
            filePos += off;
            off = 0;
            buf = new Uint8Array(size);
            break;
          }
          break;
        }
        const r = decodeRecord(buf, view, off, n, expected);
        if (r <= 0) throw bad(filePos + off, `${describeDecode(r)} (LSN ${expected}) below the durable LSN`);
        if (expected >= fromLsn) {
          yield { lsn: expected, payload: buf.slice(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + view.getUint32(off + 4, true)) };
        }
        if (expected >= toLsn) return;
        expected++;
        off += r;
      }
      if (off === 0 && eof) throw bad(filePos, `segment ends before LSN ${expected} (wanted up to ${toLsn})`);
      filePos += off;
    }
  } finally {
    await handle.close();
  }
}
