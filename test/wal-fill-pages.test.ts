/**
 * The zero-fill never makes a large write to bytes the page cache does not hold (wal/segment-preparer.ts,
 * fillStep): on Linux 6.x with ext4's large folios, a 1 MiB write to such bytes allocated 1 MiB folios
 * under the inode's lock, 2-16 ms per step here, and every commit's writev waited behind it. Each step
 * now extends the file with a small write at its end, reads the rest (pages of a hole), and only then
 * writes its zeros over it. The rule is checked on the calls the fill makes, through a file system that
 * records which bytes of each file were read or written before (renames carry them along). A next
 * segment's file has no commit waiting for its lock: its steps skip the read.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { SEGMENT_HEADER_BYTES, parseSegmentName } from '../wal/format.js';
import { turns } from './helpers/async.js';
import { recordingFs } from './helpers/recording-fs.js';
import { commitRecords } from './helpers/wal-fixtures.js';
import { FILL_COMMIT_BYTES_MAX, FILL_EXTEND_BYTES, FILL_WRITEBACK_PIECE_BYTES, PREALLOC_STEP_BYTES } from '../wal/segment-preparer.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';

const DIR = '/data/wal';
const KiB = 1024;
const MiB = 1024 * KiB;
/** The largest write the test lets land on bytes no earlier call read or wrote. */
const FRESH_WRITE_BYTES_MAX = 64 * KiB;

describe('zero-fill and the page cache', () => {
  it('every zero-fill step in the segment being written extends the file with one small write and writes its zeros only over bytes read first, across segments; a next file is filled without reads', async () => {
    const { fs, freshWrites } = recordingFs();
    const segmentSizeBytes = 4 * MiB;
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes });
    const payload = new Uint8Array(4 * KiB - 24).fill(7);
    // ~10 MiB in commits of 16 KiB (under FILL_COMMIT_BYTES_MAX, so the fill runs): the first segment
    // fills ahead of its commits step by step, the next ones are prepared and filled in the background,
    // and two rolls happen.
    for (let batch = 0; batch < 640; batch++) {
      await commitRecords(wal, payload, 4);
      if (batch % 16 === 0) await turns(5); // the background steps run between commits, as on a real disk
    }
    const stats = wal.stats();
    await wal.close();
    expect(stats.segmentsCreated, 'rolls happened').toBeGreaterThanOrEqual(3);
    expect(stats.preallocStalls, 'every segment was prepared').toBe(0);

    // The steps that extend the segment being written (a file with commits in it), and the steps of a
    // next segment's file, which no commit waits on: those write their zeros without reading first.
    const inFile = freshWrites.filter((w) => w.allZero && w.inCommittedFile);
    const nextFile = freshWrites.filter((w) => w.allZero && !w.inCommittedFile);
    expect(inFile.length, 'zero-fill steps in the segment being written were made').toBeGreaterThanOrEqual(segmentSizeBytes / PREALLOC_STEP_BYTES / 2);
    expect(nextFile.some((w) => w.freshBytes > FRESH_WRITE_BYTES_MAX), 'a next file was filled without reading it first').toBe(true);
    for (const w of inFile) {
      expect(w.freshBytes, `zeros at ${w.path} [${w.position}, +${w.lengthBytes}) on bytes never read or written`).toBeLessThanOrEqual(FRESH_WRITE_BYTES_MAX);
      expect(w.lengthBytes, 'the write that extends a step is its last FILL_EXTEND_BYTES').toBeLessThanOrEqual(FILL_EXTEND_BYTES);
    }
  });

  it('commits of FILL_COMMIT_BYTES_MAX or more grow their file (no fill step while they come); steps of PREALLOC_STEP_BYTES start again once small commits follow', async () => {
    const { fs, writes } = recordingFs();
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 64 * MiB });
    const payload = new Uint8Array(4 * KiB - 24).fill(3); // 4 KiB on disk with the record header
    const commit = async (records: number): Promise<void> => {
      let lsn = 0;
      for (let i = 0; i < records; i++) lsn = wal.append(payload);
      await wal.waitDurable(lsn);
    };
    // A step is its extending write: FILL_EXTEND_BYTES of zeros on fresh bytes.
    const steps = (): number => writes.filter((w) => w.allZero && w.lengthBytes === FILL_EXTEND_BYTES && w.freshBytes > 0).length;
    const bigRecords = Math.ceil(FILL_COMMIT_BYTES_MAX / (4 * KiB)) * 4; // 4x the limit: 512 KiB commits
    await commit(bigRecords); // the first crosses the prepared file's first step
    await turns(20);
    const before = steps();
    for (let i = 0; i < 12; i++) await commit(bigRecords); // 6 MiB more, past every step made so far
    await turns(20);
    expect(steps(), 'no fill step while large commits come').toBe(before);
    const dataEnd = Math.max(...writes.filter((w) => !w.allZero).map((w) => w.position + w.lengthBytes));
    for (let i = 0; i < 64; i++) await commit(4); // 16 KiB commits
    await turns(20);
    // Steps in the segment being written (a next segment's file, filled at once once this one holds its
    // hand-over bytes of records, is another file: its steps are not a lead of these commits).
    const stepWrites = writes.filter((w) => w.allZero && w.lengthBytes === FILL_EXTEND_BYTES && w.freshBytes > 0).slice(before).filter((w) => w.inCommittedFile);
    expect(stepWrites.length, 'steps start again after small commits').toBeGreaterThan(0);
    // The large commits earned no longer lead: 1 MiB of small commits takes a few steps, not a string of them to a 16 MiB lead.
    expect(stepWrites.length, `${stepWrites.length} steps after 1 MiB of small commits`).toBeLessThanOrEqual(3);
    // Each new step ends a PREALLOC_STEP_BYTES step that begins at or past the data the large commits wrote.
    for (const w of stepWrites) expect(w.position + w.lengthBytes - PREALLOC_STEP_BYTES).toBeGreaterThanOrEqual(dataEnd);
    await wal.close();
  });

  it('where the file system writes back, a step writes its zeros in pieces, each written back before the next: at most one piece of zeros is ever dirty', async () => {
    const { fs, mem, calls } = recordingFs();
    mem.writesBack = true;
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 8 * MiB });
    const payload = new Uint8Array(4 * KiB - 24).fill(6);
    for (let batch = 0; batch < 200; batch++) await commitRecords(wal, payload, 4); // 16 KiB commits: the fill runs, in-file and then in the next file
    await turns(50);
    await wal.close();
    const isPiece = (c: (typeof calls)[number]): boolean => c.op === 'write' && c.allZero && c.lengthBytes > FILL_EXTEND_BYTES;
    const pieces = calls.filter(isPiece);
    expect(pieces.length, 'zero-fill pieces were written').toBeGreaterThanOrEqual((2 * PREALLOC_STEP_BYTES) / FILL_WRITEBACK_PIECE_BYTES);
    for (let i = 0; i < calls.length; i++) {
      const c = calls[i] as (typeof calls)[number];
      if (!isPiece(c)) continue;
      expect(c.lengthBytes, 'a piece').toBeLessThanOrEqual(FILL_WRITEBACK_PIECE_BYTES);
      // The next call on this file is the piece's writeBack, of the same range.
      const next = calls.slice(i + 1).find((d) => d.path === c.path);
      expect(next, `the call after zeros at ${c.path} ${c.position}`).toMatchObject({ op: 'writeBack', position: c.position, lengthBytes: c.lengthBytes });
    }
  });

  it('a writeBack that fails stops the fill of that file only: commits go on, every record reads back', async () => {
    const mem = new MemoryFileSystem();
    mem.writesBack = true;
    const fault = new FaultFileSystem(mem);
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes: 4 * MiB });
    // The next three (the first segment's steps, the next one's preparation or fill: whichever come).
    fault.inject({ op: 'writeBack', error: 'EIO', times: 3 });
    const payload = new Uint8Array(4 * KiB - 24).fill(2);
    let lsn = 0;
    for (let batch = 0; batch < 400; batch++) lsn = await commitRecords(wal, payload, 4);
    expect(fault.counts.writeBack, 'the failure was met').toBeGreaterThanOrEqual(1);
    expect(wal.stats().segments).toBeGreaterThanOrEqual(2);
    await wal.close();
    const reopened = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes: 4 * MiB });
    let count = 0;
    for await (const r of reopened.read()) {
      count++;
      expect(Buffer.from(r.payload).equals(Buffer.from(payload))).toBe(true);
    }
    expect(count).toBe(lsn);
    await reopened.close();
  });

  it('where the system refuses sync_file_range itself (ENOSYS), a new log opens and the fill goes on in whole steps; the call is not tried again', async () => {
    const mem = new MemoryFileSystem();
    mem.writesBack = true;
    const fault = new FaultFileSystem(mem);
    fault.inject({ op: 'writeBack', error: 'ENOSYS', times: Number.POSITIVE_INFINITY });
    const segmentSizeBytes = 8 * MiB;
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes });
    const payload = new Uint8Array(4 * KiB - 24).fill(8);
    let lsn = 0;
    for (let batch = 0; batch < 200; batch++) lsn = await commitRecords(wal, payload, 4);
    await turns(50);
    expect(fault.counts.writeBack, 'tried once, then not again').toBe(1);
    // The first segment (filling in its own file) went on being zero-filled ahead of its records, in
    // whole steps, until it handed over to its filled next file (2 MiB in): its file reaches past them.
    const names = (await mem.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
    expect(names.length, 'the first segment handed over').toBeGreaterThanOrEqual(2);
    const firstRecords = (parseSegmentName(names[1] as string) as number) - 1;
    const firstFile = (await mem.stat(`${DIR}/${names[0]}`)).sizeBytes;
    expect(firstRecords * 4 * KiB, 'the first segment holds more than its first step of records').toBeGreaterThan(PREALLOC_STEP_BYTES);
    expect(firstFile, 'zero-filled ahead of its records').toBeGreaterThan(SEGMENT_HEADER_BYTES + firstRecords * 4 * KiB);
    await wal.close();
    const reopened = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes });
    expect(reopened.lastLsn).toBe(lsn);
    await reopened.close();
  });
});
