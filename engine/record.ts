/**
 * The engine's WAL record: one record per write call (put, del, batch, chained batch, clear), so a batch
 * is all there or all absent after a crash. Pure encode/decode, no I/O.
 *
 *   record  = msgpack [ RECORD_FORMAT_VERSION, op, op, ... ]
 *   op      = [ OP_PUT, key: bin, value: bin ]
 *           | [ OP_DEL, key: bin ]
 *           | [ OP_CLEAR, low: bin | nil, lowInclusive: bool, high: bin | nil, highInclusive: bool,
 *               limit: int (-1: none), reverse: bool ]
 *
 *
 * A base (engine/base.ts): the whole state as of one LSN, written into the WAL so that a backup begun
 * after LSN 1 holds what a restore needs. Three record kinds, always contiguous in the log:
 *
 *   begin   = [ RECORD_FORMAT_VERSION, [ OP_BASE_BEGIN, stateLsn: int ] ]
 *   chunk   = [ RECORD_FORMAT_VERSION, [ OP_BASE_CHUNK, beginLsn: int ], put, put, ... ]
 *   part    = [ RECORD_FORMAT_VERSION, [ OP_BASE_PART, beginLsn: int, key: bin, offset: int, total: int, bytes: bin ] ]
 *             (a slice of one entry's value: an entry too large for a chunk goes in parts, in order)
 *   end     = [ RECORD_FORMAT_VERSION, [ OP_BASE_END, beginLsn: int, entries: int ] ]
 *
 * FORMAT: the version and the op codes are on disk; changing one breaks every WAL already written.
 * A clear is recorded as its range, not as the keys it removed: applied in LSN order, it removes exactly
 * the keys present at its LSN, also those of earlier writes not yet visible when clear() was called.
 *
 * Records of puts and dels only (every put(), del() and batch()) are written by RecordEncoder, by hand,
 * byte for byte what msgpackr writes for the same array (test/engine-record-encoder.test.ts checks it):
 *
 *   array   0x90|n (n < 16) | 0xdc u16 | 0xdd u32        (n = 1 + ops)
 *   version 0x01                                           (positive fixint)
 *   put     0x93 0x00 bin(key) bin(value)
 *   del     0x92 0x01 bin(key)
 *   bin     0xc4 u8 len | 0xc5 u16 len | 0xc6 u32 len, then the bytes (big-endian lengths)
 */
import { Packr, Unpackr } from 'msgpackr';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import { KEY_BYTES_COPIED_IN_JS_MAX, RECORD_ARENA_BYTES_INITIAL, RECORD_ARENA_BYTES_MAX, RECORD_SCRATCH_BYTES_INITIAL, RECORD_SCRATCH_BYTES_MAX } from './limits.js';

export const RECORD_FORMAT_VERSION = 1;
export const OP_PUT = 0;
export const OP_DEL = 1;
export const OP_CLEAR = 2;
export const OP_BASE_BEGIN = 3;
export const OP_BASE_CHUNK = 4;
export const OP_BASE_END = 5;
export const OP_BASE_PART = 6;

/** A key range in index form (latin1 keys). */
export interface KeyRange {
  low: string | undefined;
  lowInclusive: boolean;
  high: string | undefined;
  highInclusive: boolean;
  /** Most keys to remove; -1 for no limit. */
  limit: number;
  reverse: boolean;
}

/** One operation in index form: keys as latin1 strings, values as owned Buffers. */
export type Op = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string } | { type: 'clear'; range: KeyRange };

const packr = new Packr({ useRecords: false, variableMapSize: true });
// Binary fields come back as views of the payload (no copy): keys become strings at once, and values
// are copied by decodeRecord (the index keeps them; the read buffer must not be kept alive by them).
const unpackr = new Unpackr({ useRecords: false });

function bin(key: string | undefined): Buffer | null {
  return key === undefined ? null : Buffer.from(key, 'latin1');
}

/** The msgpack encoding of a record through msgpackr: clear records, and the reference RecordEncoder matches. */
export function encodeRecord(ops: readonly Op[]): Buffer {
  const out: unknown[] = [RECORD_FORMAT_VERSION];
  for (const op of ops) {
    if (op.type === 'put') out.push([OP_PUT, Buffer.from(op.key, 'latin1'), op.value]);
    else if (op.type === 'del') out.push([OP_DEL, Buffer.from(op.key, 'latin1')]);
    else {
      const r = op.range;
      out.push([OP_CLEAR, bin(r.low), r.lowInclusive, bin(r.high), r.highInclusive, r.limit, r.reverse]);
    }
  }
  return packr.pack(out);
}

function corrupt(lsn: number, what: string): FlushpointError {
  return new FlushpointError(ErrorCode.ENGINE_CORRUPT, `WAL record at LSN ${lsn} is not an engine record: ${what}`, { lsn });
}

function isBin(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array;
}

function latin1(x: Uint8Array): string {
  return Buffer.isBuffer(x) ? x.toString('latin1', 0, x.byteLength) : Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('latin1');
}

function unpackRecord(payload: Uint8Array, lsn: number): unknown[] {
  let raw: unknown;
  try {
    raw = unpackr.unpack(payload);
  } catch (err) {
    throw corrupt(lsn, `msgpack decode failed (${(err as Error).message})`);
  }
  if (!Array.isArray(raw) || raw[0] !== RECORD_FORMAT_VERSION) throw corrupt(lsn, 'unknown format version');
  return raw;
}

/** Decodes one write's record; ENGINE_CORRUPT (naming the LSN) if it is not one this version wrote, or a base record. */
export function decodeRecord(payload: Uint8Array, lsn: number): Op[] {
  return decodeOps(unpackRecord(payload, lsn), 1, lsn);
}

/** A record as replay sees it: a write's ops, or one of a base's records. */
export type ReplayRecord =
  | { kind: 'ops'; ops: Op[] }
  | { kind: 'base-begin'; stateLsn: number }
  | { kind: 'base-chunk'; beginLsn: number; ops: Op[] }
  | { kind: 'base-end'; beginLsn: number; entries: number }
  | { kind: 'base-part'; beginLsn: number; key: string; offsetBytes: number; totalBytes: number; bytes: Buffer };

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Decodes any record the engine writes, base records included (replay at open). */
export function decodeReplayRecord(payload: Uint8Array, lsn: number): ReplayRecord {
  const raw = unpackRecord(payload, lsn);
  const first = raw[1];
  if (Array.isArray(first)) {
    const code = first[0];
    if (code === OP_BASE_BEGIN) {
      if (raw.length !== 2 || !isCount(first[1])) throw corrupt(lsn, 'malformed base begin');
      return { kind: 'base-begin', stateLsn: first[1] };
    }
    if (code === OP_BASE_CHUNK) {
      if (!isCount(first[1])) throw corrupt(lsn, 'malformed base chunk');
      const ops = decodeOps(raw, 2, lsn);
      for (const op of ops) if (op.type !== 'put') throw corrupt(lsn, 'a base chunk holds puts only');
      return { kind: 'base-chunk', beginLsn: first[1], ops };
    }
    if (code === OP_BASE_PART) {
      const [, beginLsn, key, offsetBytes, totalBytes, bytes] = first as [unknown, unknown, unknown, unknown, unknown, unknown];
      if (raw.length !== 2 || !isCount(beginLsn) || !isBin(key) || !isCount(offsetBytes) || !isCount(totalBytes) || !isBin(bytes) || offsetBytes + bytes.byteLength > totalBytes) {
        throw corrupt(lsn, 'malformed base part');
      }
      return { kind: 'base-part', beginLsn, key: latin1(key), offsetBytes, totalBytes, bytes: Buffer.from(bytes) };
    }
    if (code === OP_BASE_END) {
      if (raw.length !== 2 || !isCount(first[1]) || !isCount(first[2])) throw corrupt(lsn, 'malformed base end');
      return { kind: 'base-end', beginLsn: first[1], entries: first[2] };
    }
  }
  return { kind: 'ops', ops: decodeOps(raw, 1, lsn) };
}

/** The base records (engine/base.ts), through msgpackr. */
export function encodeBaseBegin(stateLsn: number): Buffer {
  return packr.pack([RECORD_FORMAT_VERSION, [OP_BASE_BEGIN, stateLsn]]);
}

export function encodeBaseChunk(beginLsn: number, entries: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const out: unknown[] = [RECORD_FORMAT_VERSION, [OP_BASE_CHUNK, beginLsn]];
  for (const [key, value] of entries) out.push([OP_PUT, Buffer.from(key, 'latin1'), value]);
  return packr.pack(out);
}

export function encodeBasePart(beginLsn: number, key: string, offsetBytes: number, totalBytes: number, bytes: Uint8Array): Buffer {
  return packr.pack([RECORD_FORMAT_VERSION, [OP_BASE_PART, beginLsn, Buffer.from(key, 'latin1'), offsetBytes, totalBytes, bytes]]);
}

export function encodeBaseEnd(beginLsn: number, entries: number): Buffer {
  return packr.pack([RECORD_FORMAT_VERSION, [OP_BASE_END, beginLsn, entries]]);
}

function decodeOps(raw: unknown[], from: number, lsn: number): Op[] {
  const ops: Op[] = [];
  for (let i = from; i < raw.length; i++) {
    const op = raw[i] as unknown[];
    if (!Array.isArray(op)) throw corrupt(lsn, `op ${i} is not an array`);
    const code = op[0];
    const a = op[1];
    const b = op[2];
    if (code === OP_PUT && isBin(a) && isBin(b)) ops.push({ type: 'put', key: latin1(a), value: Buffer.from(b) });
    else if (code === OP_DEL && isBin(a)) ops.push({ type: 'del', key: latin1(a) });
    else if (code === OP_CLEAR && typeof b === 'boolean' && typeof op[4] === 'boolean' && typeof op[5] === 'number' && typeof op[6] === 'boolean') {
      const c = op[3];
      ops.push({
        type: 'clear',
        range: { low: isBin(a) ? latin1(a) : undefined, lowInclusive: b, high: isBin(c) ? latin1(c) : undefined, highInclusive: op[4], limit: op[5], reverse: op[6] },
      });
    } else throw corrupt(lsn, `op ${i} is malformed`);
  }
  return ops;
}

// msgpack type bytes RecordEncoder writes (the msgpack spec's; FORMAT as above).
const FIXARRAY = 0x90;
const FIXARRAY_COUNT_MAX = 15;
const ARRAY16 = 0xdc;
const ARRAY32 = 0xdd;
const BIN8 = 0xc4;
const BIN16 = 0xc5;
const BIN32 = 0xc6;
const U8_MAX = 0xff;
const U16_MAX = 0xffff;
/** Bytes of a bin header for `length` bytes. */
function binHeaderBytes(length: number): number {
  return length <= U8_MAX ? 2 : length <= U16_MAX ? 3 : 5;
}
/** Bytes of the record's array header for `count` elements. */
function arrayHeaderBytes(count: number): number {
  return count <= FIXARRAY_COUNT_MAX ? 1 : count <= U16_MAX ? 3 : 5;
}

/**
 * Encodes put/del records into one reused buffer: no allocation per write. The bytes returned are a view
 * of that buffer, valid until the next call; wal.append() copies them at once, which is all the engine
 * does with them. A record larger than RECORD_SCRATCH_BYTES_MAX gets a buffer of its own, so one large
 * batch does not keep a large buffer alive.
 */
export class RecordEncoder {
  #scratch: Buffer = Buffer.allocUnsafeSlow(RECORD_SCRATCH_BYTES_INITIAL);
  /** The last view of #scratch handed out: records of one size in a row share it (no object per write). */
  #view: Buffer = this.#scratch.subarray(0, 0);

  /** out[0, sizeBytes) as a Buffer: the last view again when it is exactly that. */
  #viewOf(out: Buffer, sizeBytes: number): Buffer {
    if (out !== this.#scratch) return out.subarray(0, sizeBytes);
    const view = this.#view;
    if (view.buffer === out.buffer && view.byteLength === sizeBytes) return view;
    return (this.#view = out.subarray(0, sizeBytes));
  }

  #buffer(sizeBytes: number): Buffer {
    if (sizeBytes <= this.#scratch.byteLength) return this.#scratch;
    if (sizeBytes > RECORD_SCRATCH_BYTES_MAX) return Buffer.allocUnsafeSlow(sizeBytes);
    let grown = this.#scratch.byteLength;
    while (grown < sizeBytes) grown *= 2;
    this.#scratch = Buffer.allocUnsafeSlow(Math.min(grown, RECORD_SCRATCH_BYTES_MAX));
    return this.#scratch;
  }

  /** The record of one put: what encodeRecord([{ type: 'put', key, value }]) returns. */
  put(key: string, value: Uint8Array): Uint8Array {
    const sizeBytes = 4 + binHeaderBytes(key.length) + key.length + binHeaderBytes(value.byteLength) + value.byteLength;
    const out = this.#buffer(sizeBytes);
    out[0] = FIXARRAY | 2;
    out[1] = RECORD_FORMAT_VERSION;
    out[2] = FIXARRAY | 3;
    out[3] = OP_PUT;
    const at = writeBin(out, writeKey(out, 4, key), value);
    assert(at === sizeBytes, 'put record size');
    return this.#viewOf(out, at);
  }

  /** The record of one del: what encodeRecord([{ type: 'del', key }]) returns. */
  del(key: string): Uint8Array {
    const sizeBytes = 4 + binHeaderBytes(key.length) + key.length;
    const out = this.#buffer(sizeBytes);
    out[0] = FIXARRAY | 2;
    out[1] = RECORD_FORMAT_VERSION;
    out[2] = FIXARRAY | 2;
    out[3] = OP_DEL;
    const at = writeKey(out, 4, key);
    assert(at === sizeBytes, 'del record size');
    return this.#viewOf(out, at);
  }

  /** The record of puts and dels (a batch): what encodeRecord(ops) returns. No clear ops. */
  ops(ops: readonly Op[]): Uint8Array {
    let sizeBytes = arrayHeaderBytes(ops.length + 1) + 1;
    for (const op of ops) {
      if (op.type === 'clear') throw new TypeError('RecordEncoder writes puts and dels only: encodeRecord() writes clears');
      sizeBytes += 2 + binHeaderBytes(op.key.length) + op.key.length;
      if (op.type === 'put') sizeBytes += binHeaderBytes(op.value.byteLength) + op.value.byteLength;
    }
    const out = this.#buffer(sizeBytes);
    let at = writeArrayHeader(out, 0, ops.length + 1);
    out[at++] = RECORD_FORMAT_VERSION;
    for (const op of ops) {
      if (op.type === 'put') {
        out[at++] = FIXARRAY | 3;
        out[at++] = OP_PUT;
        at = writeBin(out, writeKey(out, at, op.key), op.value);
      } else {
        assert(op.type === 'del', 'no clear in a batch record');
        out[at++] = FIXARRAY | 2;
        out[at++] = OP_DEL;
        at = writeKey(out, at, op.key);
      }
    }
    assert(at === sizeBytes, 'batch record size');
    return this.#viewOf(out, at);
  }
}

/**
 * Put records encoded straight from the caller's bytes into a buffer that is held until each record's key
 * and value were read back from it (release()): the engine appends a put's record at once and takes the
 * index form of its key (a latin1 string) and value (an owned copy) afterwards, once the commit is on its
 * way (engine.ts #takeHeld). The bytes are what RecordEncoder.put writes for the same key and value.
 * When every record of the buffer was released it is written again from its start; a record that does
 * not fit what is left starts a new buffer, twice as large up to RECORD_ARENA_BYTES_MAX (the old one
 * lives on while a record in it is held).
 */
export class RecordArena {
  #buffer: Buffer = Buffer.allocUnsafeSlow(RECORD_ARENA_BYTES_INITIAL);
  #usedBytes = 0;
  /** Records in #buffer not released yet. */
  #heldCount = 0;
  /** The buffer the last put() wrote into, and where its key and value are in it. */
  buffer: Buffer = this.#buffer;
  keyStart = 0;
  valueStart = 0;

  /** The largest record put() takes, in bytes (a larger one: put() returns null). */
  static readonly recordBytesMax = RECORD_ARENA_BYTES_MAX / 4;

  /**
   * The record of one put (a latin1 key, or its bytes), held in the arena; null if it is larger than
   * recordBytesMax (the caller encodes it the plain way).
   */
  put(key: string | Uint8Array, value: Uint8Array): Uint8Array | null {
    const keyBytes = typeof key === 'string' ? key.length : key.byteLength;
    const sizeBytes = 4 + binHeaderBytes(keyBytes) + keyBytes + binHeaderBytes(value.byteLength) + value.byteLength;
    if (sizeBytes > RecordArena.recordBytesMax) return null;
    if (this.#usedBytes + sizeBytes > this.#buffer.byteLength) {
      // Full (or the record is larger than the buffer): the next one is twice as large, up to the max.
      let grownBytes = Math.min(RECORD_ARENA_BYTES_MAX, this.#buffer.byteLength * 2);
      while (grownBytes < sizeBytes) grownBytes *= 2;
      this.#buffer = Buffer.allocUnsafeSlow(grownBytes);
      this.#usedBytes = 0;
      this.#heldCount = 0;
    }
    const out = this.#buffer;
    const start = this.#usedBytes;
    out[start] = FIXARRAY | 2;
    out[start + 1] = RECORD_FORMAT_VERSION;
    out[start + 2] = FIXARRAY | 3;
    out[start + 3] = OP_PUT;
    let at = writeBinHeader(out, start + 4, keyBytes);
    this.keyStart = at;
    if (typeof key === 'string') at = writeLatin1(out, at, key);
    else {
      out.set(key, at);
      at += keyBytes;
    }
    this.valueStart = writeBinHeader(out, at, value.byteLength);
    out.set(value, this.valueStart);
    at = this.valueStart + value.byteLength;
    assert(at - start === sizeBytes, 'held put record size');
    this.#usedBytes = at;
    this.#heldCount++;
    this.buffer = out;
    return out.subarray(start, at);
  }

  /** A record of `buffer` was read back: once all of the current buffer's were, it is written from its start. */
  release(buffer: Buffer): void {
    if (buffer !== this.#buffer) return;
    assert(this.#heldCount > 0, 'a held record is released once');
    if (--this.#heldCount === 0) this.#usedBytes = 0;
  }
}

function writeArrayHeader(out: Buffer, at: number, count: number): number {
  if (count > FIXARRAY_COUNT_MAX) return writeSizedHeader(out, at, count, ARRAY16, ARRAY32);
  out[at] = FIXARRAY | count;
  return at + 1;
}

function writeBinHeader(out: Buffer, at: number, length: number): number {
  if (length > U8_MAX) return writeSizedHeader(out, at, length, BIN16, BIN32);
  out[at] = BIN8;
  out[at + 1] = length;
  return at + 2;
}

/** A 16- or 32-bit big-endian length after its type byte. */
function writeSizedHeader(out: Buffer, at: number, length: number, type16: number, type32: number): number {
  if (length <= U16_MAX) {
    out[at] = type16;
    out.writeUInt16BE(length, at + 1);
    return at + 3;
  }
  out[at] = type32;
  out.writeUInt32BE(length, at + 1);
  return at + 5;
}

/** A latin1 key (one char per byte) as bin. */
function writeKey(out: Buffer, at: number, key: string): number {
  return writeLatin1(out, writeBinHeader(out, at, key.length), key);
}

/** A latin1 string's bytes: a short one char by char (cheaper than a call into C++ for a few bytes). */
function writeLatin1(out: Buffer, at: number, key: string): number {
  if (key.length > KEY_BYTES_COPIED_IN_JS_MAX) return at + out.write(key, at, key.length, 'latin1');
  for (let i = 0; i < key.length; i++) out[at + i] = key.charCodeAt(i);
  return at + key.length;
}

function writeBin(out: Buffer, at: number, bytes: Uint8Array): number {
  at = writeBinHeader(out, at, bytes.byteLength);
  out.set(bytes, at);
  return at + bytes.byteLength;
}
