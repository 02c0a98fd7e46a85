/**
 * RecordEncoder (engine/record.ts) writes put/del records by hand: they must be byte for byte what
 * msgpackr writes for the same array (the format every WAL already holds), and decode back to the ops.
 * The reference is a Packr built here with the record's options, not the engine's own encodeRecord.
 */
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { seededRandom, type Random } from '../core/random.js';
import { OP_DEL, OP_PUT, RECORD_FORMAT_VERSION, RecordEncoder, decodeRecord, encodeRecord, type Op } from '../engine/record.js';
import { RECORD_SCRATCH_BYTES_INITIAL, RECORD_SCRATCH_BYTES_MAX } from '../engine/limits.js';
import { replayHint, seedList } from './helpers/seeds.js';

const reference = new Packr({ useRecords: false, variableMapSize: true });

function referenceBytes(ops: readonly Op[]): Buffer {
  const out: unknown[] = [RECORD_FORMAT_VERSION];
  for (const op of ops) {
    if (op.type === 'put') out.push([OP_PUT, Buffer.from(op.key, 'latin1'), op.value]);
    else if (op.type === 'del') out.push([OP_DEL, Buffer.from(op.key, 'latin1')]);
    else throw new Error('no clears here');
  }
  return Buffer.from(reference.pack(out));
}

// Lengths on each side of every msgpack size boundary (bin8/16/32, fixarray/array16).
const BOUNDARY_LENGTHS = [0, 1, 2, 15, 16, 17, 254, 255, 256, 257, 65534, 65535, 65536, 65537];

function lengthOf(r: Random): number {
  const pick = r.int(4);
  if (pick === 0) return BOUNDARY_LENGTHS[r.int(BOUNDARY_LENGTHS.length)] as number;
  if (pick === 1) return r.int(300);
  if (pick === 2) return r.int(5000);
  return r.int(40);
}

function latin1Key(r: Random, length: number): string {
  let key = '';
  for (let i = 0; i < length; i++) key += String.fromCharCode(r.int(256));
  return key;
}

function bytes(r: Random, length: number): Buffer {
  // Seeded, and cheap for 64 KiB values: a random byte every 61 bytes over a random fill byte.
  const b = Buffer.alloc(length, r.int(256));
  for (let i = 0; i < length; i += 61) b[i] = r.int(256);
  return b;
}

/** decodeRecord(bytes) holds exactly `ops` (compared without a deep-equal walk over large buffers). */
function decodesTo(record: Buffer, ops: readonly Op[]): boolean {
  const got = decodeRecord(record, 1);
  if (got.length !== ops.length) return false;
  return got.every((g, i) => {
    const want = ops[i] as Op;
    if (g.type !== want.type) return false;
    if (g.type === 'put') return want.type === 'put' && g.key === want.key && g.value.equals(want.value);
    return g.type === 'del' && want.type === 'del' && g.key === want.key;
  });
}

function randomOp(r: Random): Op {
  const key = latin1Key(r, Math.min(lengthOf(r), 1000));
  return r.int(3) === 0 ? { type: 'del', key } : { type: 'put', key, value: bytes(r, lengthOf(r)) };
}

function copy(view: Uint8Array): Buffer {
  return Buffer.from(view);
}

describe('RecordEncoder', () => {
  it.each(seedList(200))('seed %i: put, del and batch records equal msgpackr byte for byte and decode back', (seed) => {
    const r = seededRandom(seed);
    const encoder = new RecordEncoder();
    const hint = replayHint(seed, 'test/engine-record-encoder.test.ts', 'RecordEncoder');
    for (let round = 0; round < 8; round++) {
      const op = randomOp(r);
      const single = op.type === 'put' ? encoder.put(op.key, op.value) : encoder.del((op as { key: string }).key);
      const singleBytes = copy(single);
      expect(singleBytes.equals(referenceBytes([op])), hint).toBe(true);
      expect(singleBytes.equals(encodeRecord([op])), hint).toBe(true);
      expect(decodesTo(singleBytes, [op]), hint).toBe(true);

      const count = r.int(4) === 0 ? 14 + r.int(4) : 1 + r.int(6);
      const ops = Array.from({ length: count }, () => randomOp(r));
      const batch = copy(encoder.ops(ops));
      expect(batch.equals(referenceBytes(ops)), hint).toBe(true);
      expect(decodesTo(batch, ops), hint).toBe(true);
    }
  });

  it('batches of 65,535 and 65,536 records use array16 and array32 headers as msgpackr does', () => {
    const encoder = new RecordEncoder();
    for (const count of [15, 16, 65534, 65535, 65536]) {
      const ops: Op[] = Array.from({ length: count - 1 }, (_, i) => (i % 2 === 0 ? { type: 'del', key: `k${i}` } : { type: 'put', key: `k${i}`, value: Buffer.from([i & 0xff]) }));
      const got = copy(encoder.ops(ops));
      const want = referenceBytes(ops);
      expect(got.subarray(0, 5).toString('hex')).toBe(want.subarray(0, 5).toString('hex'));
      expect(got.equals(want)).toBe(true);
    }
  });

  it('a record larger than the reused buffer, then a small one: both right (the buffer grows, or a large record gets its own)', () => {
    const encoder = new RecordEncoder();
    for (const size of [RECORD_SCRATCH_BYTES_INITIAL * 3, RECORD_SCRATCH_BYTES_MAX + 10, 10, RECORD_SCRATCH_BYTES_INITIAL + 1]) {
      const op: Op = { type: 'put', key: 'k', value: Buffer.alloc(size, size & 0xff) };
      expect(copy(encoder.put(op.key, op.value)).equals(referenceBytes([op]))).toBe(true);
      expect(copy(encoder.del('d')).equals(referenceBytes([{ type: 'del', key: 'd' }]))).toBe(true);
    }
  });

  it('refuses a clear op (encodeRecord writes those)', () => {
    const clear: Op = { type: 'clear', range: { low: undefined, lowInclusive: true, high: undefined, highInclusive: true, limit: -1, reverse: false } };
    expect(() => new RecordEncoder().ops([clear])).toThrow(TypeError);
  });
});
