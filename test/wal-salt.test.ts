/**
 * Segment salts (wal/format.ts, format version 2): each segment draws its own, every record written
 * into it carries it, the reader and recovery accept a record only with its segment's salt, and a
 * backup (which copies records verbatim from several segments) still verifies and restores, the
 * restored log writing its records under its own segments' salts.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { BackupSink, restoreBackup, verifyBackup } from '../backup/index.js';
import { FlushpointError } from '../core/errors.js';
import { MemoryFileSystem } from '../fs/index.js';
import { seededRandom } from '../core/random.js';
import { crc32 } from '../core/crc.js';
import { RECORD_SALT_OFFSET, SALT_ANY, decodeRecord, recordLsn, recordSalt } from '../record/format.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader, parseSegmentName } from '../wal/format.js';

const SEGMENT_BYTES = 2048;

/** Per segment of `dir`: its header's salt and the salts its records carry, in LSN order. */
async function saltsIn(fs: MemoryFileSystem, dir: string): Promise<Array<{ name: string; salt: number; recordSalts: number[]; lsns: number[] }>> {
  const names = (await fs.readdir(dir)).filter((n) => parseSegmentName(n) !== null).sort();
  return names.map((name) => {
    const image = fs.readFileNow(`${dir}/${name}`);
    const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    const header = decodeSegmentHeader(image.subarray(0, SEGMENT_HEADER_BYTES));
    if (!header.ok) throw new Error(header.reason);
    const recordSalts: number[] = [];
    const lsns: number[] = [];
    for (let at = SEGMENT_HEADER_BYTES; ; ) {
      const size = decodeRecord(image, view, at, image.byteLength, 0, SALT_ANY);
      if (size <= 0) break;
      recordSalts.push(recordSalt(view, at));
      lsns.push(recordLsn(view, at));
      at += size;
    }
    return { name, salt: header.salt, recordSalts, lsns };
  });
}

async function writeLog(fs: MemoryFileSystem, dir: string, seed: number, count: number): Promise<void> {
  const wal = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES, random: seededRandom(seed) });
  for (let i = 1; i <= count; i++) {
    wal.append(new Uint8Array(50 + (i % 70)).fill(i & 0xff));
    if (i % 7 === 0) await wal.sync();
  }
  await wal.sync();
  await wal.close();
}

describe('segment salts', () => {
  it('every record carries its segment salt; salts are nonzero, differ between segments, and come from the injected source', async () => {
    const a = new MemoryFileSystem();
    const b = new MemoryFileSystem();
    await writeLog(a, '/wal', 42, 120);
    await writeLog(b, '/wal', 42, 120);
    const segments = await saltsIn(a, '/wal');
    expect(segments.length).toBeGreaterThan(3);
    for (const s of segments) {
      expect(s.salt).not.toBe(0);
      expect(s.recordSalts.length).toBeGreaterThan(0);
      expect(new Set(s.recordSalts)).toEqual(new Set([s.salt]));
    }
    expect(new Set(segments.map((s) => s.salt)).size).toBe(segments.length);
    // The same seed writes the same salts (deterministic simulation).
    expect((await saltsIn(b, '/wal')).map((s) => s.salt)).toEqual(segments.map((s) => s.salt));
    await expect(Wal.open({ dir: '/x', fs: a, random: {} as never })).rejects.toBeInstanceOf(TypeError);
  });

  it('the reader refuses a record that carries another salt (valid CRC) below the durable LSN', async () => {
    const fs = new MemoryFileSystem();
    await writeLog(fs, '/wal', 7, 120);
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: SEGMENT_BYTES });
    const [first, second] = await saltsIn(fs, '/wal');
    // After open, re-frame LSN 3 of the first segment with the second segment's salt, CRC fixed up.
    const image = fs.readFileNow(`/wal/${first!.name}`);
    const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    let at = SEGMENT_HEADER_BYTES;
    for (let lsn = first!.lsns[0]!; lsn < 3; lsn++) at += decodeRecord(image, view, at, image.byteLength, lsn, first!.salt);
    view.setUint32(at + RECORD_SALT_OFFSET, second!.salt, true);
    const size = decodeRecord(image, view, at, image.byteLength, 3, SALT_ANY);
    expect(size).toBeLessThan(0); // CRC no longer matches
    const payloadEnd = at + 24 + view.getUint32(at + 4, true);
    view.setUint32(at, crc32(image.subarray(at + 4, (payloadEnd + 7) & ~7)), true);
    expect(decodeRecord(image, view, at, image.byteLength, 3, SALT_ANY)).toBeGreaterThan(0);
    fs.corrupt(`/wal/${first!.name}`, at, image.subarray(at, at + 24));
    const err = await (async () => {
      for await (const _ of wal.read()) void _;
    })().catch((e: unknown) => e);
    await wal.close();
    expect(err).toBeInstanceOf(FlushpointError);
    expect((err as FlushpointError).code).toBe('WAL_CORRUPT');
    expect((err as FlushpointError).message).toMatch(/record salt is not its segment's \(a record of another segment or log, or damage\) \(LSN 3\)/);
  });

  it('a backup spanning several segments verifies and restores; the restored log writes records under its own salts', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: SEGMENT_BYTES, random: seededRandom(3) });
    const sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000, segmentSizeBytesMax: 8192 });
    const payloads: Uint8Array[] = [];
    for (let i = 1; i <= 150; i++) {
      const p = new Uint8Array(40 + (i % 90)).fill(i & 0xff);
      payloads.push(p);
      wal.append(p);
      if (i % 50 === 0) await sink.forceFlush();
    }
    await sink.forceFlush();
    await sink.close();
    await wal.close();
    const source = await saltsIn(fs, '/wal');
    expect(source.length).toBeGreaterThan(3); // so backup files hold records of several salts
    const verified = await verifyBackup('/bk', { fs });
    expect(verified).toMatchObject({ ok: true, firstLsn: 1, lastLsn: 150, problems: [] });
    const restored = await restoreBackup({ from: '/bk', to: '/restored', fs, segmentSizeBytes: SEGMENT_BYTES });
    expect(restored.lastLsn).toBe(150);
    const after = await saltsIn(fs, '/restored');
    const sourceSalts = new Set(source.map((s) => s.salt));
    for (const s of after) {
      expect(new Set(s.recordSalts)).toEqual(new Set([s.salt]));
      expect(sourceSalts.has(s.salt)).toBe(false);
    }
    const reopened = await Wal.open({ dir: '/restored', fs, segmentSizeBytes: SEGMENT_BYTES });
    const read: Uint8Array[] = [];
    for await (const r of reopened.read()) read.push(r.payload.slice());
    await reopened.close();
    expect(read).toEqual(payloads);
  });
});
