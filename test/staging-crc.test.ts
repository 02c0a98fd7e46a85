/**
 * The WAL's staging stores its records' CRCs one run at a time through the addon (recordCrcFill), where it
 * once computed each record's CRC in JavaScript at append (wal/staging.ts). What it hands the writer must
 * not change: the same bytes, whatever the record sizes (some over CRC_WALK_RECORD_BYTES_MAX, whose CRC is
 * still computed at append), rolls to a new segment, full chunks and freezes fall.
 */
import { describe, expect, it } from 'vitest';
import { recordCrcFiller, type RecordCrcFill } from '../fs/page-cache.js';
import { seededRandom } from '../core/random.js';
import { SALT_ANY, decodeRecord } from '../record/format.js';
import { recoverSegments } from '../wal/recovery.js';
import { SEGMENT_HEADER_BYTES } from '../wal/format.js';
import { CRC_WALK_RECORD_BYTES_MAX } from '../wal/limits.js';
import { Staging, type Piece } from '../wal/staging.js';
import { MemoryFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { patternBytes } from './helpers/payload.js';
import { countCalls } from './helpers/counting.js';

const fill = recordCrcFiller();
const SEGMENT_BYTES = 64 * 1024;
const CHUNK_BYTES = 16 * 1024;

/** The bytes of each frozen batch: one Buffer per piece (its buffers concatenated), with where it goes. */
function flatten(pieces: Piece[]): { segmentFirstLsn: number; position: number; bytes: Buffer }[] {
  return pieces.map((p) => ({ segmentFirstLsn: p.segmentFirstLsn, position: p.position, bytes: Buffer.concat(p.buffers) }));
}

function newStaging(seed: number, crcFill: RecordCrcFill | null): Staging {
  return new Staging(SEGMENT_BYTES, CHUNK_BYTES, { segmentFirstLsn: 0, salt: 0, offset: 0, capacityBytes: 0 }, seededRandom(seed), crcFill);
}

/** Stages a seeded run of appends and freezes through `crcFill`; returns every batch as bytes. */
function stage(seed: number, crcFill: RecordCrcFill | null): ReturnType<typeof flatten>[] {
  const staging = newStaging(seed, crcFill);
  const rnd = seededRandom(seed * 7 + 1);
  const batches: ReturnType<typeof flatten>[] = [];
  for (let lsn = 1; lsn <= 3000; lsn++) {
    const pick = rnd.int(20);
    const size = pick === 0 ? 0 : pick === 1 ? CRC_WALK_RECORD_BYTES_MAX + rnd.int(20_000) : pick === 2 ? rnd.int(2 * CRC_WALK_RECORD_BYTES_MAX) : rnd.int(300);
    staging.add(lsn, patternBytes(seed * 100_000 + lsn, size));
    if (rnd.int(12) === 0) {
      const pieces = staging.freeze();
      batches.push(flatten(pieces));
      staging.release(pieces); // chunks are reused: stale CRCs must never survive
    }
  }
  const pieces = staging.freeze();
  batches.push(flatten(pieces));
  return batches;
}

describe('staging with the addon storing CRCs', () => {
  it('is built with the addon', () => {
    expect(fill).not.toBeNull();
  });

  it('hands the writer the same bytes as CRCs computed at append, for 6 seeds of mixed sizes, rolls and reused chunks', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const { counting, calls } = countCalls(fill as RecordCrcFill);
      const withFill = stage(seed, counting);
      const plain = stage(seed, null);
      // Where each piece goes, then its bytes (compared as buffers: a deep compare of the bytes is slow).
      const places = (bs: typeof plain) => bs.map((b) => b.map((p) => [p.segmentFirstLsn, p.position, p.bytes.length]));
      expect(places(withFill)).toEqual(places(plain));
      withFill.forEach((batch, i) => batch.forEach((piece, j) => expect(piece.bytes.equals((plain[i] as typeof batch)[j]?.bytes as Buffer), `batch ${i} piece ${j}`).toBe(true)));
      expect(calls()).toBeGreaterThan(withFill.length); // one call per run: freezes, rolls and full chunks
      // And those bytes are records whose CRCs the decoder accepts (JavaScript's CRC, not the addon's).
      let lsn = 1;
      for (const batch of withFill) {
        for (const piece of batch) {
          const view = new DataView(piece.bytes.buffer, piece.bytes.byteOffset, piece.bytes.byteLength);
          let off = piece.position === 0 ? SEGMENT_HEADER_BYTES : 0;
          while (off < piece.bytes.length) {
            const size = decodeRecord(piece.bytes, view, off, piece.bytes.length, lsn, SALT_ANY);
            expect(size, `LSN ${lsn}`).toBeGreaterThan(0);
            off += size;
            lsn++;
          }
        }
      }
      expect(lsn).toBe(3001);
    }
  });

  it('calls the addon only for runs holding a record whose CRC it stores (records over the limit get theirs at append)', () => {
    const { counting, calls } = countCalls(fill as RecordCrcFill);
    const staging = newStaging(3, counting);
    for (let lsn = 1; lsn <= 40; lsn++) staging.add(lsn, patternBytes(lsn, CRC_WALK_RECORD_BYTES_MAX));
    staging.release(staging.freeze());
    expect(calls()).toBe(0);
    staging.add(41, patternBytes(41, 10));
    staging.add(42, patternBytes(42, CRC_WALK_RECORD_BYTES_MAX));
    const pieces = staging.freeze();
    expect(calls()).toBe(1);
    const bytes = Buffer.concat((pieces[0] as Piece).buffers);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const first = decodeRecord(bytes, view, 0, bytes.length, 41, SALT_ANY);
    expect(first).toBeGreaterThan(0);
    expect(decodeRecord(bytes, view, first, bytes.length, 42, SALT_ANY)).toBeGreaterThan(0);
  });

  it('a WAL written through it recovers every record, the JavaScript CRC checking each', async () => {
    const fs = new MemoryFileSystem();
    const dir = '/data/wal';
    const wal = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES, syncMode: 'inline' });
    const rnd = seededRandom(11);
    const sizes: number[] = [];
    for (let b = 0; b < 60; b++) {
      for (let i = 1 + rnd.int(40); i > 0; i--) {
        const size = rnd.int(10) === 0 ? 3000 + rnd.int(4000) : rnd.int(200);
        sizes.push(size);
        wal.append(patternBytes(sizes.length, size));
      }
      await wal.sync();
    }
    await wal.close();
    // Recovery with every CRC computed in JavaScript (no addon walk), strict: nothing torn, nothing skipped.
    const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
    expect(names.length).toBeGreaterThan(2);
    const recovered = await recoverSegments(fs, dir, names, true, null);
    expect(recovered.torn).toBeNull();
    expect(recovered.lastLsn).toBe(sizes.length);
    const reopened = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES, syncMode: 'inline' });
    let n = 0;
    for await (const r of reopened.read()) {
      n++;
      expect(Buffer.from(r.payload).equals(Buffer.from(patternBytes(n, sizes[n - 1] as number))), `LSN ${n}`).toBe(true);
    }
    expect(n).toBe(sizes.length);
    await reopened.close();
  });
});
