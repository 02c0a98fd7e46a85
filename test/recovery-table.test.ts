/**
 * The recovery decision table of wal/recovery.ts, one test per row, readable as its specification.
 *
 * The log every row starts from (segments of 1 KiB; 100-byte payloads make 128-byte records, 7 a segment):
 *
 *   batch A: LSN 1..15 (one batch)   ->  segment 1: LSN 1..7    segment 2: LSN 8..14    segment 3: LSN 15..
 *   batch B: LSN 16, 17                                                                   segment 3
 *   batch C: LSN 18, 19 (the last batch; its payloads are chosen per row)                 segment 3
 *
 * Each row damages a copy of that disk, opens it, and states the outcome: the clean end, a torn tail
 * cut (or refused with recovery: 'strict'), or WAL_CORRUPT naming the file and the byte offset.
 * A record counts only with its segment's salt (format version 2); a version-1 segment (salt 0) still opens.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FlushpointError } from '../core/errors.js';
import { MemoryFileSystem } from '../fs/index.js';
import { SALT_ANY, decodeRecord, encodeRecord, recordBatchDelta, recordBytes, recordLsn, recordPayloadBytes, recordSalt, RECORD_HEADER_BYTES } from '../record/format.js';
import { SEGMENT_FIRST_LSN_OFFSET, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC, decodeSegmentHeader, segmentName } from '../wal/format.js';
import { crc32 } from '../core/crc.js';

const DIR = '/wal';
const SEGMENT_BYTES = 1024;
const SEG1 = segmentName(1);
const SEG2 = segmentName(8);
const SEG3 = segmentName(15);

/** Payloads that are WAL-framed bytes: readRaw spans of another log, numbered from 1. */
async function otherLogSpans(): Promise<Uint8Array[]> {
  const fs = new MemoryFileSystem();
  const other = await Wal.open({ dir: '/other', fs, segmentSizeBytes: 4096 });
  for (let i = 0; i < 12; i++) other.append(new Uint8Array(8).fill(i + 1));
  await other.sync();
  const spans: Uint8Array[] = [];
  for await (const span of other.readRaw({ chunkBytesMax: 64 })) spans.push(span.bytes.slice());
  await other.close();
  return spans;
}

/** Builds the log above; batch C carries `lastBatch` payloads (default: 100 bytes each). */
async function buildLog(lastBatch?: Uint8Array[]): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES });
  const batches: Uint8Array[][] = [15, 2].map((n) => Array.from({ length: n }, () => new Uint8Array(100).fill(7)));
  batches.push(lastBatch ?? [new Uint8Array(100).fill(8), new Uint8Array(100).fill(9)]);
  for (const batch of batches) {
    for (const p of batch) wal.append(p);
    await wal.sync();
  }
  await wal.close();
  expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.wal'))).toEqual([SEG1, SEG2, SEG3]);
  return fs;
}

/** Byte offset of LSN `lsn`'s record in segment `name`. */
function offsetOf(fs: MemoryFileSystem, name: string, lsn: number): number {
  const image = fs.readFileNow(`${DIR}/${name}`);
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (let at = SEGMENT_HEADER_BYTES; ; ) {
    const size = decodeRecord(image, view, at, image.byteLength, 0, SALT_ANY);
    if (size <= 0) throw new Error(`LSN ${lsn} not in ${name}`);
    if (recordLsn(view, at) === lsn) return at;
    at += size;
  }
}

/** The salt in segment `name`'s header. */
function saltOf(fs: MemoryFileSystem, name: string): number {
  const header = decodeSegmentHeader(fs.readFileNow(`${DIR}/${name}`).subarray(0, SEGMENT_HEADER_BYTES));
  if (!header.ok) throw new Error(header.reason);
  return header.salt;
}

/** Rewrites LSN `lsn`'s record in place as a valid record (CRC right) that carries `salt` instead. */
function resalt(fs: MemoryFileSystem, name: string, lsn: number, salt: number): void {
  const image = fs.readFileNow(`${DIR}/${name}`);
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const at = offsetOf(fs, name, lsn);
  const payload = image.slice(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + recordPayloadBytes(view, at));
  const out = new Uint8Array(recordBytes(payload.byteLength));
  encodeRecord(out, new DataView(out.buffer), 0, lsn, recordBatchDelta(view, at), salt, payload);
  fs.corrupt(`${DIR}/${name}`, at, out);
  expect(decodeRecord(out, new DataView(out.buffer), 0, out.byteLength, lsn, salt)).toBe(out.byteLength);
}

/**
 * Writes a format-version-1 segment as the previous release did: its header holds the segment size
 * where version 2 has the salt, and its records carry 0 there.
 */
async function writeVersion1Segment(fs: MemoryFileSystem, firstLsn: number, payloads: Uint8Array[]): Promise<void> {
  await writeVersion1Batches(fs, firstLsn, [payloads]);
}

/** The same with several batches (each record's batch delta counts from its batch's first). */
async function writeVersion1Batches(fs: MemoryFileSystem, firstLsn: number, batches: Uint8Array[][]): Promise<void> {
  const file = new Uint8Array(SEGMENT_BYTES);
  const view = new DataView(file.buffer);
  file.set(SEGMENT_MAGIC, 0);
  view.setUint32(8, 1, true); // format version 1
  view.setUint32(12, SEGMENT_HEADER_BYTES, true);
  view.setUint32(SEGMENT_FIRST_LSN_OFFSET, firstLsn, true);
  view.setUint32(24, SEGMENT_BYTES, true); // the segment size
  view.setUint32(28, crc32(file.subarray(0, 28)), true);
  let at = SEGMENT_HEADER_BYTES;
  let lsn = firstLsn;
  for (const batch of batches) batch.forEach((p, i) => (at = encodeRecord(file, view, at, lsn++, i, 0, p)));
  await fs.mkdir(DIR);
  const handle = await fs.open(`${DIR}/${segmentName(firstLsn)}`, 'wx+');
  await handle.writev([file], 0);
  await handle.datasync();
  await handle.close();
  await fs.syncDir(DIR);
}

function flipByte(fs: MemoryFileSystem, name: string, at: number): void {
  const image = fs.readFileNow(`${DIR}/${name}`);
  fs.corrupt(`${DIR}/${name}`, at, new Uint8Array([(image[at] as number) ^ 0x40]));
}

type Outcome =
  | { opens: 'clean'; lastLsn: number }
  | { opens: 'torn tail cut'; lastLsn: number; cutAt: { file: string; offset: number } }
  | { refused: 'WAL_CORRUPT'; file: string; offset: number; tornTail?: true; message: string };

async function outcomeOf(fs: MemoryFileSystem, recovery: 'truncate-torn-tail' | 'strict' = 'truncate-torn-tail'): Promise<Outcome> {
  let wal: Wal;
  try {
    wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, recovery });
  } catch (err) {
    if (!(err instanceof FlushpointError)) throw err;
    expect(err.code).toBe('WAL_CORRUPT');
    return { refused: 'WAL_CORRUPT', file: err.file as string, offset: err.offset as number, ...(err.tornTail ? { tornTail: true as const } : {}), message: err.message };
  }
  const torn = wal.recovery.tornTail;
  const lastLsn = wal.lastLsn;
  await wal.close();
  return torn === null ? { opens: 'clean', lastLsn } : { opens: 'torn tail cut', lastLsn, cutAt: { file: torn.file, offset: torn.offset } };
}

/** Checks a refusal: the code, file, offset and tornTail flag exactly, and the message by pattern. */
function expectRefused(got: Outcome, want: { file: string; offset: number; tornTail?: true; says: RegExp }): void {
  expect(got).toMatchObject({ refused: 'WAL_CORRUPT', file: `${DIR}/${want.file}`, offset: want.offset });
  expect((got as { tornTail?: true }).tornTail).toBe(want.tornTail);
  expect((got as { message: string }).message).toMatch(want.says);
}

describe('recovery decision table (wal/recovery.ts), one row at a time', () => {
  it('row 1 | any segment | only zeros after a valid record -> the clean end of data', async () => {
    const fs = await buildLog();
    expect(await outcomeOf(fs.crash())).toEqual({ opens: 'clean', lastLsn: 19 });
    // Cut exactly at a record boundary: still only zeros after a valid record.
    const cut = fs.crash();
    cut.truncateNow(`${DIR}/${SEG3}`, offsetOf(fs, SEG3, 19));
    expect(await outcomeOf(cut)).toEqual({ opens: 'clean', lastLsn: 18 });
  });

  it('row 2 | not the last segment | any damage -> WAL_CORRUPT naming the file and offset', async () => {
    const fs = await buildLog();
    const at = offsetOf(fs, SEG1, 3);
    const img = fs.crash();
    flipByte(img, SEG1, at + 40);
    expectRefused(await outcomeOf(img), { file: SEG1, offset: at, says: /in a segment that is not the last/ });
  });

  it('row 3 | last segment | damage in its first record -> WAL_CORRUPT (a segment is named only after its first batch is durable)', async () => {
    const fs = await buildLog();
    const img = fs.crash();
    flipByte(img, SEG3, SEGMENT_HEADER_BYTES + 30);
    expectRefused(await outcomeOf(img), { file: SEG3, offset: SEGMENT_HEADER_BYTES, says: /the first record of the last segment/ });
  });

  it('row 4 | last segment | damage in batch B, and batch C continues the log -> WAL_CORRUPT (B had been acknowledged)', async () => {
    const fs = await buildLog();
    const at = offsetOf(fs, SEG3, 16);
    const img = fs.crash();
    flipByte(img, SEG3, at + 50);
    expectRefused(await outcomeOf(img), { file: SEG3, offset: at, says: /a later batch \(from LSN 18/ });
    // The proof's offset is the file's (it was the window's, counted from the damage, with a note).
    expect((await outcomeOf(img) as { message: string }).message).toContain(`LSN 18 at offset ${offsetOf(fs, SEG3, 18)})`);
    // The same with the damaged record's header zeroed: found by the record that follows it.
    const zeroed = fs.crash();
    zeroed.corrupt(`${DIR}/${SEG3}`, at, new Uint8Array(24));
    expectRefused(await outcomeOf(zeroed), { file: SEG3, offset: at, says: /a later batch \(from LSN 18/ });
  });

  it('row 5 | last segment | damage in the last batch C (zeros, garbage, its own records after) -> torn tail: cut', async () => {
    const fs = await buildLog();
    const at18 = offsetOf(fs, SEG3, 18);
    const at19 = offsetOf(fs, SEG3, 19);
    // C's first record lost its header; its second record is intact: still C's own, so still torn.
    const img = fs.crash();
    img.corrupt(`${DIR}/${SEG3}`, at18, new Uint8Array(24));
    expect(await outcomeOf(img)).toEqual({ opens: 'torn tail cut', lastLsn: 17, cutAt: { file: `${DIR}/${SEG3}`, offset: at18 } });
    // C's last record cut short.
    const short = fs.crash();
    short.truncateNow(`${DIR}/${SEG3}`, at19 + 60);
    expect(await outcomeOf(short)).toEqual({ opens: 'torn tail cut', lastLsn: 18, cutAt: { file: `${DIR}/${SEG3}`, offset: at19 } });
  });

  it("row 5, strict | the same torn tail with recovery: 'strict' -> WAL_CORRUPT with tornTail", async () => {
    const fs = await buildLog();
    const at18 = offsetOf(fs, SEG3, 18);
    const img = fs.crash();
    img.corrupt(`${DIR}/${SEG3}`, at18, new Uint8Array(24));
    expectRefused(await outcomeOf(img, 'strict'), { file: SEG3, offset: at18, tornTail: true, says: /refused by recovery: 'strict'/ });
  });

  it('row 5 | last segment | after the damage, valid records that do not continue the log (another log inside the payloads) -> torn tail: cut', async () => {
    const spans = await otherLogSpans();
    const fs = await buildLog([spans[0] as Uint8Array, spans[1] as Uint8Array]);
    const at18 = offsetOf(fs, SEG3, 18);
    const img = fs.crash();
    img.corrupt(`${DIR}/${SEG3}`, at18, new Uint8Array(24)); // C's first header lost: its payload is scanned
    img.corrupt(`${DIR}/${SEG3}`, offsetOf(fs, SEG3, 19), new Uint8Array(24)); // and C's second one too
    expect(await outcomeOf(img)).toEqual({ opens: 'torn tail cut', lastLsn: 17, cutAt: { file: `${DIR}/${SEG3}`, offset: at18 } });
  });

  it('between segments | a segment missing from the middle (an LSN gap) -> WAL_CORRUPT naming the later segment', async () => {
    const fs = await buildLog();
    const img = fs.crash();
    await img.unlink(`${DIR}/${SEG2}`);
    await img.syncDir(DIR);
    expectRefused(await outcomeOf(img), { file: SEG3, offset: 0, says: /LSN gap: previous segment ends at LSN 7, this one starts at 15/ });
  });

  it('row 4 | last segment | a valid CRC but the wrong salt in batch B, and batch C follows -> WAL_CORRUPT (not a record of this segment)', async () => {
    const fs = await buildLog();
    const img = fs.crash();
    resalt(img, SEG3, 16, (saltOf(img, SEG3) ^ 0x1) >>> 0);
    expectRefused(await outcomeOf(img), { file: SEG3, offset: offsetOf(fs, SEG3, 16), says: /record salt is not its segment's.*a later batch \(from LSN 18/ });
  });

  it("row 5 | last segment | batch C's records valid but with another segment's salt -> torn tail: cut (they are not this segment's)", async () => {
    const fs = await buildLog();
    const img = fs.crash();
    const foreign = saltOf(img, SEG2); // e.g. left in a recycled file, or inside a payload
    expect(foreign).not.toBe(saltOf(img, SEG3));
    resalt(img, SEG3, 18, foreign);
    resalt(img, SEG3, 19, foreign);
    const at18 = offsetOf(fs, SEG3, 18);
    expect(await outcomeOf(img)).toEqual({ opens: 'torn tail cut', lastLsn: 17, cutAt: { file: `${DIR}/${SEG3}`, offset: at18 } });
  });

  it('row 4, two faults | damage in batch B and the last batch C torn after its first record -> WAL_CORRUPT (C was written, so B had been acknowledged)', async () => {
    const fs = await buildLog();
    const at16 = offsetOf(fs, SEG3, 16);
    const img = fs.crash();
    flipByte(img, SEG3, at16 + 50);
    img.truncateNow(`${DIR}/${SEG3}`, offsetOf(fs, SEG3, 19) + 60); // C's second record cut short
    expectRefused(await outcomeOf(img), { file: SEG3, offset: at16, says: /a later batch \(from LSN 18; LSN 18/ });
  });

  it('format version 1 | a segment written before salts (salt 0) opens, reads, takes appends with salt 0, and the next segment is salted', async () => {
    const fs = new MemoryFileSystem();
    const payloads = [1, 2, 3].map((n) => new Uint8Array(100).fill(n));
    await writeVersion1Segment(fs, 1, payloads);
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES });
    expect(wal.lastLsn).toBe(3);
    for (let i = 0; i < 6; i++) wal.append(new Uint8Array(100).fill(10 + i)); // 4..7 in the version-1 segment, 8.. in a new one
    await wal.sync();
    const read: number[] = [];
    for await (const r of wal.read()) read.push(r.payload[0] as number);
    expect(read).toEqual([1, 2, 3, 10, 11, 12, 13, 14, 15]);
    await wal.close();
    expect(saltOf(fs, SEG1)).toBe(0);
    expect(saltOf(fs, SEG2)).not.toBe(0);
    const image = fs.readFileNow(`${DIR}/${SEG1}`);
    expect(recordSalt(new DataView(image.buffer, image.byteOffset), offsetOf(fs, SEG1, 7))).toBe(0);
    // A torn tail in a version-1 last segment is still cut by the version-1 rule.
    const v1 = new MemoryFileSystem();
    await writeVersion1Segment(v1, 1, payloads);
    v1.truncateNow(`${DIR}/${SEG1}`, offsetOf(v1, SEG1, 3) + 60);
    expect(await outcomeOf(v1)).toEqual({ opens: 'torn tail cut', lastLsn: 2, cutAt: { file: `${DIR}/${SEG1}`, offset: offsetOf(fs, SEG1, 3) } });
  });

  it('format version 1, row 4 | damage spanning two records of batch B (a zeroed sector), batch C intact after it -> WAL_CORRUPT, not a cut (review of 2026-12-05 evening)', async () => {
    const small = (n: number): Uint8Array => new Uint8Array(16).fill(n); // 40-byte records: several to a sector
    const batches = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]].map((b) => b.map(small));
    const fs = new MemoryFileSystem();
    await writeVersion1Batches(fs, 1, batches);
    const from = offsetOf(fs, SEG1, 5);
    const to = offsetOf(fs, SEG1, 7); // LSN 5 and 6 zeroed, headers and all
    const at9 = offsetOf(fs, SEG1, 9);
    fs.corrupt(`${DIR}/${SEG1}`, from, new Uint8Array(to - from));
    expectRefused(await outcomeOf(fs), { file: SEG1, offset: from, says: new RegExp(`later batch \\(from LSN 9; LSN 9 at offset ${at9}\\)`) });
    // Damage spanning the last batch's records is still a torn tail: cut.
    const torn = new MemoryFileSystem();
    await writeVersion1Batches(torn, 1, batches);
    const f9 = offsetOf(torn, SEG1, 9);
    torn.corrupt(`${DIR}/${SEG1}`, f9, new Uint8Array(offsetOf(torn, SEG1, 11) - f9));
    expect(await outcomeOf(torn)).toEqual({ opens: 'torn tail cut', lastLsn: 8, cutAt: { file: `${DIR}/${SEG1}`, offset: f9 } });
  });

  it("format version 1, row 5 | the last batch's record lost its header and its payload holds another log's records (LSN 100..) -> torn tail: cut, not refused", async () => {
    // The payload of LSN 8 (the last batch): four version-1 records of another log, numbered 100-103.
    const other = new Uint8Array(4 * 40);
    const otherView = new DataView(other.buffer);
    let at = 0;
    for (let i = 0; i < 4; i++) at = encodeRecord(other, otherView, at, 100 + i, i, 0, new Uint8Array(16).fill(i));
    const small = (n: number): Uint8Array => new Uint8Array(16).fill(n);
    const fs = new MemoryFileSystem();
    await writeVersion1Batches(fs, 1, [[1, 2, 3, 4].map(small), [small(5), small(6), small(7), other]]);
    const at8 = offsetOf(fs, SEG1, 8);
    fs.corrupt(`${DIR}/${SEG1}`, at8, new Uint8Array(24)); // a torn sector took LSN 8's header
    // LSN 100, 24 bytes after where LSN 8 began, cannot follow it: its records are that record's payload.
    expect(await outcomeOf(fs)).toEqual({ opens: 'torn tail cut', lastLsn: 7, cutAt: { file: `${DIR}/${SEG1}`, offset: at8 } });
  });
});
