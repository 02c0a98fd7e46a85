/**
 * Recovery when payloads are WAL-framed bytes (issue 8 item 5): every payload is a readRaw span of
 * another log, as a replica would store it, so the bytes after damage are full of valid-looking records.
 *   - A power loss while the last batch is written but not synced (an unacknowledged batch) must always
 *     open, with every acknowledged record intact and the log a prefix of what was appended.
 *   - Damage to an acknowledged batch that a later batch followed must stay WAL_CORRUPT.
 * The other log numbers its records from 1 (older LSNs than ours) in half the seeds, and from around our
 * own LSNs (the same numbers our next records take) in the other half.
 * FLUSHPOINT_SEEDS=<count> runs more; FLUSHPOINT_SEED=<n> replays one.
 */
import { describe, expect, it } from 'vitest';
import { Wal, type RawSpan } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { FlushpointError } from '../core/errors.js';
import { seededRandom, type Random } from '../core/random.js';
import { deferred, until } from './helpers/async.js';
import { replayHint, seedList } from './helpers/seeds.js';
import { ExpectedLog, verifyLog } from './helpers/wal-log.js';
import { SALT_ANY, decodeRecord } from '../record/format.js';
import { SEGMENT_HEADER_BYTES, parseSegmentName } from '../wal/format.js';

const TEST_FILE = 'test/recovery-raw-payload.test.ts';
const DIR = '/data/wal';
const SEGMENT_BYTES = 64 * 1024;
const SEEDS = seedList(240);

/** Raw spans of another log whose first LSN is `firstLsn`: the payloads of the log under test. */
async function otherLogSpans(rng: Random, firstLsn: number): Promise<Uint8Array[]> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open({ dir: '/other', fs, segmentSizeBytes: SEGMENT_BYTES, firstLsn });
  try {
    for (let written = 0; written < 160; ) {
      const batch = 1 + rng.int(6);
      for (let i = 0; i < batch; i++) wal.append(new Uint8Array(rng.int(60)).map(() => 1 + rng.int(255)));
      written += batch;
      await wal.sync();
    }
    const spans: Uint8Array[] = [];
    for await (const span of wal.readRaw({ chunkBytesMax: 64 + rng.int(400) }) as AsyncIterable<RawSpan>) spans.push(span.bytes.slice());
    return spans;
  } finally {
    await wal.close();
  }
}

interface Built {
  mem: MemoryFileSystem;
  fault: FaultFileSystem;
  wal: Wal;
  log: ExpectedLog;
  next: () => Uint8Array;
}

async function build(rng: Random): Promise<Built> {
  const olderLsns = rng.int(2) === 0;
  const ackedBatches = 1 + rng.int(4);
  const spans = await otherLogSpans(rng, olderLsns ? 1 : 1 + rng.int(8));
  let at = 0;
  const next = (): Uint8Array => spans[at++ % spans.length] as Uint8Array;
  const mem = new MemoryFileSystem();
  const fault = new FaultFileSystem(mem);
  const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes: SEGMENT_BYTES });
  const log = new ExpectedLog();
  for (let b = 0; b < ackedBatches; b++) {
    const count = 1 + rng.int(6);
    for (let i = 0; i < count; i++) {
      const payload = next();
      log.set(wal.append(payload), payload);
    }
    await wal.sync();
  }
  return { mem, fault, wal, log, next };
}

describe('recovery with payloads that carry WAL records (readRaw spans of another log)', () => {
  it(`a power loss during an unacknowledged batch always opens (${SEEDS.length} seeds)`, { timeout: 120_000 }, async () => {
    let tornTails = 0;
    const failures: string[] = [];
    for (const seed of SEEDS) {
      const rng = seededRandom(seed);
      const { mem, fault, wal, log, next } = await build(rng);
      const ackedLsn = wal.durableLsn;
      const gate = deferred();
      fault.inject({ op: 'datasync', hold: gate.promise });
      const datasyncs = fault.counts.datasync;
      const count = 1 + rng.int(12);
      for (let i = 0; i < count; i++) {
        const payload = next();
        log.set(wal.append(payload), payload);
      }
      const synced = wal.sync();
      await until(() => fault.counts.datasync > datasyncs, 'the batch written and its datasync held');
      const image = mem.crash({ keepUnsynced: 'random', seed, sectorBytes: rng.int(2) === 0 ? 512 : 64 });
      gate.resolve();
      await synced;
      await wal.close();
      try {
        const after = await Wal.open({ dir: DIR, fs: image, segmentSizeBytes: SEGMENT_BYTES });
        try {
          await verifyLog(after, (lsn) => log.get(lsn), { mustSurviveLsn: ackedLsn, lastAppendedLsn: log.lastLsn });
          if (after.recovery.tornTail !== null) tornTails++;
        } finally {
          await after.close();
        }
      } catch (err) {
        failures.push(`seed ${seed}: ${String(err)}\n  ${replayHint(seed, TEST_FILE, 'a power loss during an unacknowledged batch')}`);
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
    // The campaign really tore batches (not only lost or kept them whole).
    if (SEEDS.length >= 100) expect(tornTails).toBeGreaterThan(SEEDS.length / 10);
  });

  it(`damage to an acknowledged batch that a later batch followed stays WAL_CORRUPT (${SEEDS.length} seeds)`, { timeout: 120_000 }, async () => {
    for (const seed of SEEDS) {
      const rng = seededRandom(seed);
      const { mem, wal } = await build(rng);
      // One more acknowledged batch, so that every record before it has a later batch after it.
      const firstOfLast = wal.lastLsn + 1;
      for (let i = 0, n = 1 + rng.int(4); i < n; i++) wal.append(new Uint8Array([i]));
      await wal.sync();
      await wal.close();
      const names = (await mem.readdir(DIR)).filter((n) => parseSegmentName(n) !== null).sort();
      const last = names[names.length - 1] as string;
      const image = mem.readFileNow(`${DIR}/${last}`);
      const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
      // Records of the last segment before the last batch; the segment's first record is row 3's case.
      const victims: Array<{ offset: number; size: number }> = [];
      let lsn = parseSegmentName(last) as number;
      for (let offset = SEGMENT_HEADER_BYTES; ; lsn++) {
        const size = decodeRecord(image, view, offset, image.byteLength, 0, SALT_ANY);
        if (size <= 0 || lsn >= firstOfLast) break;
        if (offset > SEGMENT_HEADER_BYTES) victims.push({ offset, size });
        offset += size;
      }
      if (victims.length === 0) continue;
      const victim = victims[rng.int(victims.length)] as { offset: number; size: number };
      const position = victim.offset + rng.int(victim.size);
      const copy = mem.crash();
      copy.corrupt(`${DIR}/${last}`, position, new Uint8Array([(image[position] as number) ^ (1 + rng.int(255))]));
      const err = await Wal.open({ dir: DIR, fs: copy, segmentSizeBytes: SEGMENT_BYTES }).then(
        async (w) => {
          await w.close();
          return null;
        },
        (e: unknown) => e,
      );
      const hint = `seed ${seed}: damage at ${last}:${position}; ${replayHint(seed, TEST_FILE, 'damage to an acknowledged batch')}`;
      expect(err, hint).toBeInstanceOf(FlushpointError);
      expect((err as FlushpointError).code, hint).toBe('WAL_CORRUPT');
      expect((err as FlushpointError).offset, hint).toBe(victim.offset);
      expect((err as FlushpointError).tornTail, hint).toBeUndefined();
    }
  });
});
