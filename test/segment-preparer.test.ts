/**
 * Preallocation in steps (wal/segment-preparer.ts): a new log takes a step of disk, not a whole
 * segment; the fill runs ahead of the write position without ever writing zeros over records, and a
 * commit waits for a fill step only when it would overlap it. Once the segment being written is half
 * full, the next one is filled to its end in its own file, so after the roll no step runs beside the
 * commits of the segment they write.
 */
import { describe, expect, it } from 'vitest';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { HANDOVER_STEPS, PREALLOC_STEP_BYTES, PREALLOC_SUFFIX } from '../wal/segment-preparer.js';
import { deferred, turns } from './helpers/async.js';
import { recordingFs } from './helpers/recording-fs.js';
import { commitRecords } from './helpers/wal-fixtures.js';

const DIR = '/data/wal';
const KiB = 1024;
const MiB = 1024 * KiB;

async function dirSizeBytes(fs: MemoryFileSystem, dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) total += (await fs.stat(`${dir}/${name}`)).sizeBytes;
  return total;
}

/** A payload whose bytes say which LSN it belongs to. */
function payloadFor(lsn: number, sizeBytes: number): Uint8Array {
  const p = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) p[i] = (lsn * 31 + i) % 251;
  return p;
}

async function expectRecords(wal: Wal, lastLsn: number, sizeBytes: number): Promise<void> {
  let expected = 1;
  for await (const { lsn, payload } of wal.read()) {
    expect(lsn).toBe(expected);
    expect(Buffer.from(payload).equals(Buffer.from(payloadFor(lsn, sizeBytes))), `payload of LSN ${lsn}`).toBe(true);
    expected++;
  }
  expect(expected - 1).toBe(lastLsn);
}

/** Commits ~2.5 MiB more into segment 2 (4 MiB segments, 16 KiB commits), closes, and expects its file zero-filled ahead of them. */
async function expectSegment2FilledAhead(wal: Wal, mem: MemoryFileSystem, commit: (records: number) => Promise<number>): Promise<void> {
  for (let i = 0; i < 160; i++) await commit(4);
  await turns(50);
  const names = (await mem.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
  const sizeBytes = (await mem.stat(`${DIR}/${names[1]}`)).sizeBytes;
  await wal.close();
  expect(sizeBytes, 'segment 2 is zero-filled ahead of its records').toBeGreaterThan(2.6 * MiB);
}

describe('segment preallocation in steps', () => {
  it('a new WAL holding one 5-byte record takes two fill steps of disk, not a 64 MiB segment, and a reopen keeps writing the same segment', async () => {
    const mem = new MemoryFileSystem();
    const wal = await Wal.open({ dir: DIR, fs: mem }); // the default 64 MiB segment
    await wal.waitDurable(wal.append(new Uint8Array([1, 2, 3, 4, 5])));
    // The segment's first step, and the next segment's first step, prepared in the background.
    await wal.close();
    expect(await dirSizeBytes(mem, DIR)).toBeLessThanOrEqual(2 * PREALLOC_STEP_BYTES);

    const again = await Wal.open({ dir: DIR, fs: mem });
    await again.waitDurable(again.append(new Uint8Array([6])));
    expect(again.stats().segments).toBe(1);
    await again.close();
    expect(await dirSizeBytes(mem, DIR)).toBeLessThanOrEqual(2 * PREALLOC_STEP_BYTES);
  });

  it('a commit runs beside a fill step it does not overlap, waits for one it overlaps, and no zero lands on a record (also after a power loss)', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const recordBytes = 32 * KiB;
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes: 8 * MiB });
    const append = (count: number): number => {
      let lsn = 0;
      for (let i = 0; i < count; i++) lsn = wal.append(payloadFor(wal.lastLsn + 1, recordBytes));
      return lsn;
    };
    await wal.waitDurable(append(1)); // the segment's first commit: [0, 32 KiB)

    // Commits of 3 records (~96 KiB, under FILL_COMMIT_BYTES_MAX, so the fill runs) until one ends past
    // half of the first step: the fill starts its next step ([1, 2) MiB), which first opens the segment
    // by name (its own file description), and that open is held.
    await turns(20); // the next segment's preparation (started by the first commit) is done
    const gate = deferred();
    const opensBefore = fault.counts.open;
    fault.inject({ op: 'open', path: `${DIR}/0000000000000001.wal`, hold: gate.promise });
    let beside = 0;
    for (let i = 0; i < 6; i++) beside = await wal.waitDurable(append(3)); // ends at ~608 KiB
    expect(beside).toBe(19);
    expect(fault.counts.open - opensBefore, 'the fill step is under way, held').toBe(1);

    // A commit reaching past 1 MiB would overlap the held step: it waits for it.
    let overlappingDone = false;
    const overlapping = wal.waitDurable(append(20)).then((lsn) => {
      overlappingDone = true;
      return lsn;
    });
    await turns(50);
    expect(overlappingDone, 'the overlapping commit waits for the fill step').toBe(false);
    const image = mem.crash(); // power loss while the fill step is held: records 1..19 are durable
    gate.resolve();
    expect(await overlapping).toBe(39);
    await expectRecords(wal, 39, recordBytes);
    await wal.close();

    const reopened = await Wal.open({ dir: DIR, fs: mem });
    await expectRecords(reopened, 39, recordBytes);
    await reopened.close();
    const recovered = await Wal.open({ dir: DIR, fs: image });
    await expectRecords(recovered, 19, recordBytes);
    await recovered.close();
  });

  it('a new log\'s first segment, filling in its own file, hands over to its next file once that is filled; a filled segment, once half full, has the next one zero-filled to its end before the roll, and the segment it becomes takes no fill step', async () => {
    const { fs, mem, writes } = recordingFs();
    const segmentSizeBytes = 4 * MiB;
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes });
    const payload = new Uint8Array(4 * KiB - 24).fill(5); // 4 KiB on disk with the record header
    const commit = (records: number): Promise<number> => commitRecords(wal, payload, records);
    const preparedSizes = async (): Promise<number[]> => {
      const names = (await mem.readdir(DIR)).filter((n) => n.endsWith(PREALLOC_SUFFIX));
      return Promise.all(names.map(async (n) => (await mem.stat(`${DIR}/${n}`)).sizeBytes));
    };
    const zeroBytesSince = (mark: number): number => writes.slice(mark).reduce((n, w) => n + (w.allZero ? w.lengthBytes : 0), 0);

    // 16 KiB commits (small: the fill runs). Segment 1 is a new log's: it fills in its own file, so from
    // HANDOVER_STEPS steps of records on, its next file is filled at once and the log rolls to it.
    let commits = 0;
    while (wal.stats().segments <= 1 && commits < 256) {
      await commit(4);
      commits++;
    }
    expect(wal.stats().segmentsHandedOver, 'segment 1 handed over to its filled next file').toBe(1);
    expect(commits * 16 * KiB, 'segment 1 ended early').toBeLessThan(segmentSizeBytes / 2 + PREALLOC_STEP_BYTES);
    expect(commits * 16 * KiB).toBeGreaterThanOrEqual(HANDOVER_STEPS * PREALLOC_STEP_BYTES);

    // Segment 2 was filled before it was taken: to just past its half, then the next one fills to its end.
    for (let i = 0; i < 132; i++) await commit(4);
    commits += 132;
    for (let i = 0; i < 400 && (await preparedSizes())[0] !== segmentSizeBytes; i++) await turns(10);
    expect(await preparedSizes(), 'the next segment, filled to its end before it is needed').toEqual([segmentSizeBytes]);

    // On to the roll: segment 2 ends at 4 MiB (it is filled: no hand-over).
    while (wal.stats().segments === 2) {
      await commit(4);
      commits++;
    }
    expect(wal.stats().segmentsHandedOver).toBe(1);
    const rolled = writes.length;
    // Segment 3 written to just under half: no zero lands in it; the one fill since is (at most) segment 4's first step.
    for (let i = 0; i < 120; i++) await commit(4);
    commits += 120;
    await turns(50);
    expect(wal.stats().segments).toBe(3);
    expect(zeroBytesSince(rolled), 'zeros written after the roll').toBeLessThanOrEqual(PREALLOC_STEP_BYTES);
    expect(wal.stats().preallocStalls).toBe(0);
    await wal.close();
    const reopened = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes });
    expect(reopened.lastLsn).toBe(4 * commits);
    await reopened.close();
  });

  it('close while the next segment is being filled: its step ends, its handles close, its file is removed', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const segmentSizeBytes = 8 * MiB;
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes });
    const payload = new Uint8Array(32 * KiB - 24).fill(9);
    let lsn = await commitRecords(wal, payload, 3); // the first commit: segment 2's preparation starts
    await turns(50);
    // Hold the next fill step of the prepared file, then cross half of segment 1.
    const gate = deferred();
    fault.inject({ op: 'writev', path: /-2\.prealloc\.tmp$/, hold: gate.promise }); // segment 2's file (segment 1 was -1)
    for (let c = 0; c < 45; c++) lsn = await commitRecords(wal, payload, 3);
    let closed = false;
    const closing = wal.close().then(() => {
      closed = true;
    });
    await turns(50);
    expect(closed, 'close waits for the fill step in flight').toBe(false);
    gate.resolve();
    await closing;
    expect(mem.openHandlePaths).toEqual([]);
    expect((await mem.readdir(DIR)).filter((n) => n.endsWith(PREALLOC_SUFFIX))).toEqual([]);
    const reopened = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes });
    expect(reopened.lastLsn).toBe(lsn);
    await reopened.close();
  });

  it('a fill of the next segment that fails leaves the roll to a file that grows: no batch fails', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const segmentSizeBytes = 4 * MiB;
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes });
    const payload = new Uint8Array(4 * KiB - 24).fill(1);
    let lsn = await commitRecords(wal, payload, 1); // segment 2's preparation starts
    await turns(50);
    // Every later open of a prepared file but segment 1's fails (commits never open one): segment 2's
    // fill past its first step (the fill opens its own handle), and the preparations after it.
    fault.inject({ op: 'open', path: /-([2-9]|\d\d+)\.prealloc\.tmp$/, error: 'EIO', times: Number.POSITIVE_INFINITY });
    for (let c = 0; c < 400; c++) lsn = await commitRecords(wal, payload, 4);
    expect(wal.stats().segments, 'the roll happened').toBeGreaterThanOrEqual(2);
    await wal.close();
    const reopened = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes });
    expect(reopened.lastLsn).toBe(lsn);
    await reopened.close();
  });

  it('a roll into a segment whose fill step is in flight waits for the step before its first commit: no zero lands on its records', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const segmentSizeBytes = 4 * MiB;
    const recordBytes = 16 * KiB;
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes });
    const append = (count: number): number => {
      let lsn = 0;
      for (let i = 0; i < count; i++) lsn = wal.append(payloadFor(wal.lastLsn + 1, recordBytes));
      return lsn;
    };
    await wal.waitDurable(append(1)); // segment 2's preparation starts: its first step, [0, 1) MiB
    await turns(50);
    // Segment 2's next step, [1, 2) MiB, starts once segment 1 is half full: its first write is held.
    const gate = deferred();
    fault.inject({ op: 'writev', path: /-2\.prealloc\.tmp$/, hold: gate.promise });
    let lsn = 0;
    while (wal.lastLsn * recordBytes < segmentSizeBytes - 256 * KiB) lsn = await wal.waitDurable(append(4));
    expect(wal.stats().segments).toBe(1);
    // A batch of 2 MiB: segment 1's last records, then segment 2's first commit, over [1, 2) MiB.
    let rolled = false;
    const roll = wal.waitDurable(append(128)).then((last) => {
      rolled = true;
      return last;
    });
    await turns(50);
    expect(rolled, 'the roll waits for the fill step in flight in its segment').toBe(false);
    gate.resolve();
    lsn = await roll;
    await turns(50); // the step's zeros, had it gone on after the commit, would have landed by now
    expect(wal.stats().segments).toBe(2);
    await expectRecords(wal, lsn, recordBytes);
    await wal.close();
    const reopened = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes });
    await expectRecords(reopened, lsn, recordBytes);
    await reopened.close();
  });

  it('a failed open of the next file\'s fill handle fails only that fill: a new log opens, a roll is prepared', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const segmentSizeBytes = 4 * MiB;
    // The 2nd open of a prepared file is its fill's own handle (the 1st is the WAL's): segment 1's at open.
    fault.inject({ op: 'open', path: /-1\.prealloc\.tmp$/, nth: 2, error: 'EMFILE' });
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes });
    // And segment 2's, while segment 1 is written past half.
    fault.inject({ op: 'open', path: /-2\.prealloc\.tmp$/, nth: 2, error: 'EMFILE' });
    const payload = new Uint8Array(16 * KiB - 24).fill(3);
    let lsn = 0;
    while (wal.stats().segments < 2) lsn = await commitRecords(wal, payload, 4);
    expect(wal.stats().preallocStalls, 'the roll found its segment prepared').toBe(0);
    await wal.close();
    expect(mem.openHandlePaths).toEqual([]);
    const reopened = await Wal.open({ dir: DIR, fs: mem, segmentSizeBytes });
    expect(reopened.lastLsn).toBe(lsn);
    await reopened.close();
  });

  it('close while the next preparation is under way and the WAL\'s handle on it fails to close: no handle stays open', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes: 4 * MiB });
    const gate = deferred();
    // Segment 2's preparation (started by the first commit) is held at its sync.
    fault.inject({ op: 'sync', path: /-2\.prealloc\.tmp$/, hold: gate.promise });
    await wal.waitDurable(wal.append(new Uint8Array(100)));
    await turns(20);
    const closing = wal.close();
    await turns(20);
    fault.inject({ op: 'close', path: /-2\.prealloc\.tmp$/, error: 'EIO' });
    gate.resolve();
    await closing;
    expect(mem.openHandlePaths).toEqual([]);
  });

  it("the next segment's file is filled without reading it (no commit waits for its lock); the segment it becomes is filled ahead of its records", async () => {
    // Every read of a prepared file fails: a fill step of the next file that read its hole first (as
    // one in the segment being written does, to make its pages outside the inode's lock) would fail,
    // and the segment would grow under its commits instead.
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    fault.inject({ op: 'read', path: /\.prealloc\.tmp$/, error: 'EIO', times: Number.POSITIVE_INFINITY });
    const segmentSizeBytes = 4 * MiB;
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes });
    const payload = new Uint8Array(4 * KiB - 24).fill(1);
    const commit = (records: number): Promise<number> => commitRecords(wal, payload, records);
    while (wal.stats().segments < 2) {
      await commit(4);
      await turns(5); // the next file's steps run between commits, as on a real disk
    }
    expect(wal.stats().preallocStalls, 'segment 2 was prepared').toBe(0);
    await expectSegment2FilledAhead(wal, mem, commit);
  });

  it('a step of the next file that failed once does not leave the segment it becomes to grow unfilled', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const segmentSizeBytes = 4 * MiB;
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes });
    const payload = new Uint8Array(4 * KiB - 24).fill(1);
    const commit = (records: number): Promise<number> => commitRecords(wal, payload, records);
    await commit(1);
    await turns(50);
    // The open of segment 2's prepared file by its fill (its own handle, for the steps after the first) fails, once.
    fault.inject({ op: 'open', path: /-2\.prealloc\.tmp$/, error: 'EIO' });
    while (wal.stats().segments < 2) await commit(4);
    await expectSegment2FilledAhead(wal, mem, commit);
  });
});
