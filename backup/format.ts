/**
 * The backup's on-disk format. Pure encode/decode: no I/O here.
 *
 * A backup directory holds segment files named "<first LSN>-<last LSN>.fpb" (16 hex digits each, so
 * name order is LSN order) and one CHECKPOINT file. Every LSN from the backup's start to the checkpoint
 * is in a segment file that was durable before the checkpoint was published.
 *
 * Segment file: a 64-byte header, then the body (optionally deflate-raw compressed).
 *
 *   0        8        12       16                24                32       36       40       44       48      60       64
 *   +--------+--------+--------+-----------------+-----------------+--------+--------+--------+--------+-------+--------+
 *   | magic  | version| flags  | first LSN u64   | last LSN u64    | record | stored | raw    | body   | zero  | header |
 *   |FLPBACKP| u32    | u32    |                 |                 | count  | body B | body B | CRC-32 |       | CRC-32 |
 *   +--------+--------+--------+-----------------+-----------------+--------+--------+--------+--------+-------+--------+
 *   flags bit 0: body is deflate-raw compressed. body CRC-32 covers the stored (possibly compressed) body:
 *   the whole-file checksum. header CRC-32 covers bytes 0..60.
 *
 * Body (raw): the WAL's own records, back to back and byte for byte as the WAL framed them
 * (record/format.ts: CRC-32, payload bytes, LSN, batch delta, salt, payload, zero padding to 8 bytes;
 * each record keeps its WAL segment's salt, so a body may hold several salts, and decoding takes each as written).
 * The sink copies verified runs of them out of the WAL without re-framing, so each record keeps the
 * CRC-32 it was written with, end to end. LSNs run from the header's first LSN to its last, no gap.
 *
 * CHECKPOINT, format version 2 (48 bytes): where the backup starts and how far it is complete.
 *
 *   0          8         12       16                24                32                40       44       48
 *   +----------+---------+--------+-----------------+-----------------+-----------------+--------+--------+
 *   | magic    | version | zero   | checkpoint LSN  | published at    | start LSN u64   | zero   | CRC-32 |
 *   | FLPBCKPT | u32 = 2 | u32    | u64             | ms since epoch  | (first LSN held)| u32    | 0..44  |
 *   +----------+---------+--------+-----------------+-----------------+-----------------+--------+--------+
 *   start LSN: the first LSN the backup holds, fixed when the backup is created; every LSN in
 *   start..checkpoint is in a file. checkpoint LSN = start - 1 means nothing is backed up yet.
 *
 * CHECKPOINT format version 3 (written by the S3 target only, read on any FileSystem: a checkpoint that
 * carries its flush's one data file inline; a bucket copied to a directory keeps it). The
 * file comes first, the checkpoint fields last (N = the file's size):
 *
 *   0                    N          N+8       N+12     N+16              N+24          N+32        N+40     N+44     N+48
 *   +--------------------+----------+---------+--------+-----------------+-------------+-----------+--------+--------+
 *   | inline file: a     | magic    | version | zero   | checkpoint LSN  | published at| start LSN | inline | CRC-32 |
 *   | backup file, byte  | FLPBCKPT | u32 = 3 | u32    | u64             | ms, u64     | u64       | bytes N| N..N+44|
 *   | for byte (FLPBACKP)|          |         |        |                 |             |           | u32    |        |
 *   +--------------------+----------+---------+--------+-----------------+-------------+-----------+--------+--------+
 *   The inline section is one whole backup file (64-byte header, then its stored body): the file the
 *   flush would have put under its name, which the writer stores there right after (it "materializes"
 *   it) and before it publishes any later checkpoint. Its name follows from its header (first and last
 *   LSN); its last LSN is the checkpoint LSN. It is covered by the file's own CRCs (the header CRC, and
 *   the body CRC the header holds), which decoding checks: a damaged inline section is a damaged
 *   checkpoint (readers accept its fields still when the file is stored under its name and verifies:
 *   backup-file.ts readCheckpoint). The file is first so that one MD5 pass serves both PUTs (the file's MD5, then continued
 *   over the trailer, the checkpoint's); a reader tells the layouts apart by the first 8 bytes (a backup
 *   file's magic, not the checkpoint's). A checkpoint without an inline file is written as version 2.
 *   A release before version 3 reads such a checkpoint as damaged ("bad checkpoint magic",
 *   BACKUP_CORRUPT naming CHECKPOINT): never as a valid checkpoint of other LSNs, so an older reader
 *   refuses it safely; read it with this release (or after the writer's next checkpoint, version 2
 *   unless that one is inline too).
 *
 * CHECKPOINT format version 1 (40 bytes, still read): magic | version u32 = 1 | zero u32 | checkpoint LSN
 *   u64 | published at u64 | zero u32 | CRC-32 of bytes 0..36. It records no start: readers take the
 *   first file present (a lost first file cannot be detected), and the next publish writes version 2.
 *
 * All integers little-endian. FORMAT CONSTANTS: changing any breaks every backup already written.
 */
import { crc32 } from '../core/crc.js';
import { assert } from '../core/errors.js';
import { readU64, writeU64 } from '../core/u64.js';
import { DEFLATE_EXPANSION_MAX } from './limits.js';
import { RECORD_HEADER_BYTES, SALT_ANY, decodeRecord, describeDecode, encodeRecord, recordBytes, recordPayloadBytes } from '../record/format.js';

export const BACKUP_MAGIC = 'FLPBACKP';
export const CHECKPOINT_MAGIC = 'FLPBCKPT';
export const BACKUP_FORMAT_VERSION = 1;
export const BACKUP_HEADER_BYTES = 64;
/** Format version of the CHECKPOINT file (version 1 had no start LSN). Backup files stay at version 1. */
export const CHECKPOINT_FORMAT_VERSION = 2;
/** Format version of a CHECKPOINT that carries a data file inline (version 2's fields, then the file). */
export const CHECKPOINT_INLINE_FORMAT_VERSION = 3;
/** Size of a version 2 checkpoint, and of a version 3 checkpoint's fixed part (before its inline file). */
export const CHECKPOINT_BYTES = 48;
export const CHECKPOINT_V1_BYTES = 40;
export const CHECKPOINT_NAME = 'CHECKPOINT';
export const FLAG_DEFLATE = 1;
/** Byte offsets of segment-header fields that errors name. */
export const HEADER_OFFSET = { firstLsn: 16, rawBodyBytes: 40 } as const;
export const BACKUP_NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.fpb$/;


/** Most raw bytes a deflate body of `storedBytes` bytes can inflate to: a header claiming more is corrupt. */
export function deflatedBytesMax(storedBytes: number): number {
  return storedBytes * DEFLATE_EXPANSION_MAX + 1024;
}

const hex16 = (n: number): string => n.toString(16).padStart(16, '0');

export function backupFileName(firstLsn: number, lastLsn: number): string {
  return `${hex16(firstLsn)}-${hex16(lastLsn)}.fpb`;
}

export function parseBackupFileName(name: string): { firstLsn: number; lastLsn: number } | null {
  const m = BACKUP_NAME_RE.exec(name);
  if (!m) return null;
  const firstLsn = Number.parseInt(m[1] as string, 16);
  const lastLsn = Number.parseInt(m[2] as string, 16);
  if (!Number.isSafeInteger(firstLsn) || !Number.isSafeInteger(lastLsn) || firstLsn < 1 || lastLsn < firstLsn) return null;
  return { firstLsn, lastLsn };
}

export interface BackupHeader {
  flags: number;
  firstLsn: number;
  lastLsn: number;
  recordCount: number;
  storedBodyBytes: number;
  rawBodyBytes: number;
  bodyCrc: number;
}

export function encodeBackupHeader(h: BackupHeader): Uint8Array {
  const out = new Uint8Array(BACKUP_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(BACKUP_MAGIC), 0);
  view.setUint32(8, BACKUP_FORMAT_VERSION, true);
  view.setUint32(12, h.flags, true);
  writeU64(view, 16, h.firstLsn);
  writeU64(view, 24, h.lastLsn);
  view.setUint32(32, h.recordCount, true);
  view.setUint32(36, h.storedBodyBytes, true);
  view.setUint32(40, h.rawBodyBytes, true);
  view.setUint32(44, h.bodyCrc, true);
  view.setUint32(60, crc32(out.subarray(0, 60)), true);
  return out;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; offset: number; reason: string };

export function decodeBackupHeader(bytes: Uint8Array): Decoded<BackupHeader> {
  if (bytes.byteLength < BACKUP_HEADER_BYTES) return { ok: false, offset: 0, reason: `file is ${bytes.byteLength} bytes, shorter than a header` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, BACKUP_HEADER_BYTES);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== BACKUP_MAGIC) return { ok: false, offset: 0, reason: 'bad magic' };
  if (view.getUint32(60, true) !== crc32(bytes.subarray(0, 60))) return { ok: false, offset: 60, reason: 'header CRC mismatch' };
  const version = view.getUint32(8, true);
  if (version !== BACKUP_FORMAT_VERSION) return { ok: false, offset: 8, reason: `unsupported format version ${version}` };
  return {
    ok: true,
    value: {
      flags: view.getUint32(12, true),
      firstLsn: readU64(view, 16),
      lastLsn: readU64(view, 24),
      recordCount: view.getUint32(32, true),
      storedBodyBytes: view.getUint32(36, true),
      rawBodyBytes: view.getUint32(40, true),
      bodyCrc: view.getUint32(44, true),
    },
  };
}

/** Collects runs of WAL-framed records (wal.readRaw spans) into the body of one backup file. */
export class BodyBuilder {
  readonly parts: Uint8Array[] = [];
  bytes = 0;
  firstLsn = 0;
  lastLsn = 0;

  get recordCount(): number {
    return this.parts.length === 0 ? 0 : this.lastLsn - this.firstLsn + 1;
  }

  add(span: { firstLsn: number; lastLsn: number; bytes: Uint8Array }): void {
    if (this.parts.length === 0) this.firstLsn = span.firstLsn;
    else if (span.firstLsn !== this.lastLsn + 1) throw new Error(`body spans must be contiguous: ${this.lastLsn} then ${span.firstLsn}`);
    this.parts.push(span.bytes);
    this.bytes += span.bytes.byteLength;
    this.lastLsn = span.lastLsn;
  }
}

/** Frames payloads as WAL records (for tools and benchmarks that build a body without a WAL). */
export function frameRecords(firstLsn: number, payloads: readonly Uint8Array[]): { firstLsn: number; lastLsn: number; bytes: Uint8Array } {
  let total = 0;
  for (const p of payloads) total += recordBytes(p.byteLength);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  let at = 0;
  payloads.forEach((p, i) => {
    at = encodeRecord(bytes, view, at, firstLsn + i, i, 0, p); // salt 0, as a version-1 segment's
  });
  return { firstLsn, lastLsn: firstLsn + payloads.length - 1, bytes };
}

export interface BodyRecord {
  lsn: number;
  payload: Uint8Array;
  /** The whole record as the WAL framed it (CRC, lengths, LSN, batch delta, salt, payload, padding). */
  record: Uint8Array;
}

/** Decodes a raw body, checking every record's CRC and that LSNs run firstLsn..lastLsn without a gap. */
export function decodeBody(body: Uint8Array, header: BackupHeader): Decoded<BodyRecord[]> {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out: BodyRecord[] = [];
  let at = 0;
  let expected = header.firstLsn;
  while (at < body.byteLength) {
    // Records keep the salt of the WAL segment they were written in (a body spans several): taken as written.
    const size = decodeRecord(body, view, at, body.byteLength, expected, SALT_ANY);
    if (size <= 0) return { ok: false, offset: at, reason: `${describeDecode(size)} (LSN ${expected})` };
    const len = recordPayloadBytes(view, at);
    out.push({ lsn: expected, payload: body.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + len), record: body.subarray(at, at + size) });
    expected++;
    at += size;
  }
  if (out.length !== header.recordCount) return { ok: false, offset: at, reason: `${out.length} records, header says ${header.recordCount}` };
  if (expected - 1 !== header.lastLsn) return { ok: false, offset: at, reason: `records end at LSN ${expected - 1}, header says ${header.lastLsn}` };
  return { ok: true, value: out };
}

/** A data file carried inside a version 3 checkpoint. */
export interface InlineFile {
  /** Its name as a backup file ("<first LSN>-<last LSN>.fpb"). */
  name: string;
  firstLsn: number;
  lastLsn: number;
  /** The whole file (header and stored body), a view into the checkpoint's bytes. */
  bytes: Uint8Array;
}

export interface Checkpoint {
  /** Every LSN in startLsn..checkpointLsn is durable in the backup. */
  checkpointLsn: number;
  /** The first LSN the backup holds; null for a format 1 checkpoint, which did not record it. */
  startLsn: number | null;
  publishedAtMs: number;
  /** The data file a version 3 checkpoint carries (its last LSN is checkpointLsn); null otherwise. */
  inline: InlineFile | null;
}

export function encodeCheckpoint(checkpointLsn: number, startLsn: number, publishedAtMs: number): Uint8Array {
  return encodeCheckpointFixed(CHECKPOINT_FORMAT_VERSION, checkpointLsn, startLsn, publishedAtMs, 0);
}

/**
 * A version 3 checkpoint carrying `file` (a whole backup file as encoded chunks: header first) inline,
 * as chunks: the file's own chunks (not copied), then the 48-byte trailer. The file must end at checkpointLsn.
 */
export function encodeCheckpointInline(checkpointLsn: number, startLsn: number, publishedAtMs: number, file: readonly Uint8Array[]): Uint8Array[] {
  const header = file[0];
  assert(header !== undefined && header.byteLength === BACKUP_HEADER_BYTES, 'an inline file starts with its 64-byte header chunk');
  const h = decodeBackupHeader(header);
  assert(h.ok && h.value.lastLsn === checkpointLsn && h.value.firstLsn >= startLsn, `inline file ${h.ok ? `${h.value.firstLsn}..${h.value.lastLsn}` : 'with a bad header'} for checkpoint ${checkpointLsn} (start ${startLsn})`);
  let bytes = 0;
  for (const c of file) bytes += c.byteLength;
  assert(bytes === BACKUP_HEADER_BYTES + h.value.storedBodyBytes && bytes <= 0xffff_ffff, `inline file of ${bytes} bytes, its header says ${BACKUP_HEADER_BYTES + h.value.storedBodyBytes}`);
  return [...file, encodeCheckpointFixed(CHECKPOINT_INLINE_FORMAT_VERSION, checkpointLsn, startLsn, publishedAtMs, bytes)];
}

function encodeCheckpointFixed(version: number, checkpointLsn: number, startLsn: number, publishedAtMs: number, inlineBytes: number): Uint8Array {
  assert(Number.isSafeInteger(startLsn) && startLsn >= 1, `checkpoint start LSN ${startLsn}`);
  assert(Number.isSafeInteger(checkpointLsn) && checkpointLsn >= startLsn - 1, `checkpoint ${checkpointLsn} before its start ${startLsn}`);
  const out = new Uint8Array(CHECKPOINT_BYTES);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(CHECKPOINT_MAGIC), 0);
  view.setUint32(8, version, true);
  writeU64(view, 16, checkpointLsn);
  writeU64(view, 24, publishedAtMs);
  writeU64(view, 32, startLsn);
  view.setUint32(40, inlineBytes, true);
  view.setUint32(44, crc32(out.subarray(0, 44)), true);
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array): Decoded<Checkpoint> {
  if (bytes.byteLength < 12) return { ok: false, offset: 0, reason: `checkpoint is ${bytes.byteLength} bytes, expected ${CHECKPOINT_BYTES}` };
  const leading = new TextDecoder().decode(bytes.subarray(0, 8));
  if (leading === BACKUP_MAGIC) return decodeInlineCheckpoint(bytes);
  if (leading !== CHECKPOINT_MAGIC) return { ok: false, offset: 0, reason: 'bad checkpoint magic' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  const expectedBytes = version === 1 ? CHECKPOINT_V1_BYTES : version === CHECKPOINT_FORMAT_VERSION ? CHECKPOINT_BYTES : 0;
  if (expectedBytes === 0) return { ok: false, offset: 8, reason: `unsupported checkpoint format version ${version} (this version reads 1 and ${CHECKPOINT_FORMAT_VERSION}, and ${CHECKPOINT_INLINE_FORMAT_VERSION} after an inline file)` };
  if (bytes.byteLength !== expectedBytes) return { ok: false, offset: 0, reason: `checkpoint is ${bytes.byteLength} bytes, format version ${version} has ${expectedBytes}` };
  return decodeCheckpointFields(bytes, version, 0);
}

/**
 * The checkpoint's fields only (inline: null): a version 3 checkpoint's inline file is neither read nor
 * checked (one CRC pass over up to 8 MiB fewer), for a writer reading back its own bytes.
 */
export function decodeCheckpointFieldsOnly(bytes: Uint8Array): Decoded<Checkpoint> {
  const at = bytes.byteLength - CHECKPOINT_BYTES;
  if (at < BACKUP_HEADER_BYTES || new TextDecoder().decode(bytes.subarray(0, 8)) !== BACKUP_MAGIC) return decodeCheckpoint(bytes);
  const version = new DataView(bytes.buffer, bytes.byteOffset + at + 8, 4).getUint32(0, true);
  if (version !== CHECKPOINT_INLINE_FORMAT_VERSION) return { ok: false, offset: at + 8, reason: `checkpoint after an inline file has format version ${version}, expected ${CHECKPOINT_INLINE_FORMAT_VERSION}` };
  return decodeCheckpointFields(bytes, version, at);
}

/** The fields of a checkpoint whose 40 (version 1) or 48 bytes start at `at`, CRC checked. */
function decodeCheckpointFields(bytes: Uint8Array, version: number, at: number): Decoded<Checkpoint> {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, bytes.byteLength - at);
  const crcAt = (version === 1 ? CHECKPOINT_V1_BYTES : CHECKPOINT_BYTES) - 4;
  if (view.getUint32(crcAt, true) !== crc32(bytes.subarray(at, at + crcAt))) return { ok: false, offset: at + crcAt, reason: 'checkpoint CRC mismatch' };
  const checkpointLsn = readU64(view, 16);
  const publishedAtMs = readU64(view, 24);
  if (version === 1) return { ok: true, value: { checkpointLsn, startLsn: null, publishedAtMs, inline: null } };
  const startLsn = readU64(view, 32);
  if (!Number.isSafeInteger(startLsn) || startLsn < 1 || !Number.isSafeInteger(checkpointLsn) || checkpointLsn < startLsn - 1) {
    return { ok: false, offset: at + 16, reason: `checkpoint LSN ${checkpointLsn} with start LSN ${startLsn} is impossible` };
  }
  return { ok: true, value: { checkpointLsn, startLsn, publishedAtMs, inline: null } };
}

/** A version 3 checkpoint: the inline file, then the 48-byte trailer. */
function decodeInlineCheckpoint(bytes: Uint8Array): Decoded<Checkpoint> {
  const at = bytes.byteLength - CHECKPOINT_BYTES;
  if (at < BACKUP_HEADER_BYTES) return { ok: false, offset: 0, reason: `checkpoint is ${bytes.byteLength} bytes and starts like a backup file: too short for format version ${CHECKPOINT_INLINE_FORMAT_VERSION}` };
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, CHECKPOINT_BYTES);
  if (new TextDecoder().decode(bytes.subarray(at, at + 8)) !== CHECKPOINT_MAGIC) return { ok: false, offset: at, reason: 'bad checkpoint magic after the inline file' };
  const version = view.getUint32(8, true);
  if (version !== CHECKPOINT_INLINE_FORMAT_VERSION) return { ok: false, offset: at + 8, reason: `checkpoint after an inline file has format version ${version}, expected ${CHECKPOINT_INLINE_FORMAT_VERSION}` };
  const fields = decodeCheckpointFields(bytes, version, at);
  if (!fields.ok) return fields;
  const { checkpointLsn, startLsn } = fields.value;
  const inline = decodeInlineFile(bytes.subarray(0, at), view.getUint32(40, true), startLsn as number, checkpointLsn);
  if (!inline.ok) return { ok: false, offset: inline.offset, reason: `inline file: ${inline.reason}` };
  return { ok: true, value: { ...fields.value, inline: inline.value } };
}

/** The inline section of a version 3 checkpoint: one whole backup file ending at the checkpoint, its CRCs checked. */
function decodeInlineFile(bytes: Uint8Array, inlineBytes: number, startLsn: number, checkpointLsn: number): Decoded<InlineFile> {
  if (bytes.byteLength !== inlineBytes) return { ok: false, offset: 0, reason: `${bytes.byteLength} bytes precede the checkpoint's fields, they say ${inlineBytes}` };
  const h = decodeBackupHeader(bytes);
  if (!h.ok) return h;
  const { firstLsn, lastLsn, storedBodyBytes, bodyCrc } = h.value;
  if (lastLsn !== checkpointLsn || firstLsn < startLsn || firstLsn > lastLsn) {
    return { ok: false, offset: HEADER_OFFSET.firstLsn, reason: `holds LSNs ${firstLsn}..${lastLsn}, the checkpoint is ${checkpointLsn} (start ${startLsn})` };
  }
  if (BACKUP_HEADER_BYTES + storedBodyBytes !== inlineBytes) return { ok: false, offset: BACKUP_HEADER_BYTES, reason: `body is ${inlineBytes - BACKUP_HEADER_BYTES} bytes, its header says ${storedBodyBytes}` };
  if (crc32(bytes.subarray(BACKUP_HEADER_BYTES)) !== bodyCrc) return { ok: false, offset: BACKUP_HEADER_BYTES, reason: 'whole-file checksum mismatch' };
  return { ok: true, value: { name: backupFileName(firstLsn, lastLsn), firstLsn, lastLsn, bytes } };
}
