/**
 * Preallocation in steps (wal/segment-preparer.ts): a new log takes a step of disk, not a whole
 * segment; the fill runs ahead of the write position without ever writing zeros over records, and a
 * commit waits for a fill step only when it would overlap it.
 */
import { describe, expect, it } from 'vitest';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { PREALLOC_STEP_BYTES } from '../wal/segment-preparer.js';
import { deferred, turns } from './helpers/async.js';

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
});
