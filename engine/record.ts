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
 * FORMAT: the version and the op codes are on disk; changing one breaks every WAL already written.
 * A clear is recorded as its range, not as the keys it removed: applied in LSN order, it removes exactly
 * the keys present at its LSN, also those of earlier writes not yet visible when clear() was called.
 */
import { Packr, Unpackr } from 'msgpackr';
import { FlushpointError, ErrorCode } from '../core/errors.js';

export const RECORD_FORMAT_VERSION = 1;
export const OP_PUT = 0;
export const OP_DEL = 1;
export const OP_CLEAR = 2;

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

/** Decodes one record; ENGINE_CORRUPT (naming the LSN) if it is not one this version wrote. */
export function decodeRecord(payload: Uint8Array, lsn: number): Op[] {
  let raw: unknown;
  try {
    raw = unpackr.unpack(payload);
  } catch (err) {
    throw corrupt(lsn, `msgpack decode failed (${(err as Error).message})`);
  }
  if (!Array.isArray(raw) || raw[0] !== RECORD_FORMAT_VERSION) throw corrupt(lsn, 'unknown format version');
  const ops: Op[] = [];
  for (let i = 1; i < raw.length; i++) {
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
