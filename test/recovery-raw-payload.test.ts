/**
 * Recovery when payloads are WAL-framed bytes (issue 8 item 5): every payload is a readRaw span of
 * another log, as a replica would store it, so the bytes after damage are full of valid-looking records.
 *   - A power loss while the last batch is written but not synced (an unacknowledged batch) must always
 *     open, with every acknowledged record intact and the log a prefix of what was appended.
 *   - Damage to an acknowledged batch that a later batch followed must stay WAL_CORRUPT, also when the
 *     last batch is torn as well (two faults), as long as a record of the later batch survived.
 * The other log numbers its records from 1 (older LSNs than ours) in half the seeds, and from around our
 * own LSNs (the same numbers our next records take) in the other half: then only the segment salt (the
 * other log's segment has its own) tells its records from ours (wal/format.ts, format version 2).
 * Salts come from a source seeded by the seed, so every run of a seed writes the same bytes.
 * FLUSHPOINT_SEEDS=<count> runs more; FLUSHPOINT_SEED=<n> replays one.
 */
import { describe, expect, it } from 'vitest';
import { Wal, type RawSpan } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { FlushpointError } from '../core/errors.js';
import { seededRandom, type Random } from '../core/random.js';
import { deferred, until } from './helpers/async.js';
import { replayHint, replaying, seedList } from './helpers/seeds.js';
import { ExpectedLog, verifyLog } from './helpers/wal-log.js';
import { SALT_ANY, decodeRecord, recordSalt } from '../record/format.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader, parseSegmentName } from '../wal/format.js';

const TEST_FILE = 'test/recovery-raw-payload.test.ts';
const DIR = '/data/wal';
const SEGMENT_BYTES = 64 * 1024;
/** Seeds the LSN-walk rule (format version 1) refused as WAL_CORRUPT although the batch was torn: always run. */
const SEEDS_PINNED = [1502];
const SEEDS = replaying() ? seedList(240) : [...new Set([...seedList(240), ...SEEDS_PINNED])];
/** Room for long campaigns (FLUSHPOINT_SEEDS): up to 100 ms a seed on the shared machine under a full campaign, never below 2 minutes. */
const TEST_TIMEOUT_MS = Math.max(120_000, SEEDS.length * 100);

/** Raw spans of another log whose first LSN is `firstLsn`: the payloads of the log under test. */
async function otherLogSpans(rng: Random, firstLsn: number, seed: number): Promise<Uint8Array[]> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open({ dir: '/other', fs, segmentSizeBytes: SEGMENT_BYTES, firstLsn, random: seededRandom(saltSeed(seed, 1)) });
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

/** Seeds of the salt sources, apart from the scenario's own random stream (which they leave untouched). */
function saltSeed(seed: number, log: number): number {
  return (Math.imul(seed, 0x9e37_79b1) ^ (log * 0x85eb_ca6b)) >>> 0;
}

/** The salt of the last segment in `dir` and every distinct salt on records in the payloads. */
function saltsOf(mem: MemoryFileSystem, spans: readonly Uint8Array[], name: string): { ours: number; foreign: Set<number> } {
  const header = decodeSegmentHeader(mem.readFileNow(`${DIR}/${name}`).subarray(0, SEGMENT_HEADER_BYTES));
  if (!header.ok) throw new Error(header.reason);
  const foreign = new Set<number>();
  for (const span of spans) foreign.add(recordSalt(new DataView(span.buffer, span.byteOffset, span.byteLength), 0));
  return { ours: header.salt, foreign };
}

interface Built {
  mem: MemoryFileSystem;
  fault: FaultFileSystem;
  wal: Wal;
  log: ExpectedLog;
  next: () => Uint8Array;
  spans: Uint8Array[];
}

const openOptions = (fs: FaultFileSystem | MemoryFileSystem, seed: number) => ({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, random: seededRandom(saltSeed(seed, 0)) });

async function build(rng: Random): Promise<Built> {
  const olderLsns = rng.int(2) === 0;
  const ackedBatches = 1 + rng.int(4);
  const spans = await otherLogSpans(rng, olderLsns ? 1 : 1 + rng.int(8), rng.seed);
  let at = 0;
  const next = (): Uint8Array => spans[at++ % spans.length] as Uint8Array;
  const mem = new MemoryFileSystem();
  const fault = new FaultFileSystem(mem);
  const wal = await Wal.open(openOptions(fault, rng.seed));
  const log = new ExpectedLog();
  for (let b = 0; b < ackedBatches; b++) {
    const count = 1 + rng.int(6);
    for (let i = 0; i < count; i++) {
      const payload = next();
      log.set(wal.append(payload), payload);
    }
    await wal.sync();
  }
  return { mem, fault, wal, log, next, spans };
}

/** The name of the last segment in DIR. */
async function lastSegmentName(mem: MemoryFileSystem): Promise<string> {
  const names = (await mem.readdir(DIR)).filter((n) => parseSegmentName(n) !== null).sort();
  return names[names.length - 1] as string;
}

/** Records of the last segment before LSN `beforeLsn`, except its first (row 3's case), by offset. */
function recordsBefore(image: Uint8Array, name: string, beforeLsn: number): Array<{ offset: number; size: number }> {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const out: Array<{ offset: number; size: number }> = [];
  let lsn = parseSegmentName(name) as number;
  for (let offset = SEGMENT_HEADER_BYTES; ; lsn++) {
    const size = decodeRecord(image, view, offset, image.byteLength, 0, SALT_ANY);
    if (size <= 0 || lsn >= beforeLsn) break;
    if (offset > SEGMENT_HEADER_BYTES) out.push({ offset, size });
    offset += size;
  }
  return out;
}

/** Opens, or returns the error the open failed with. */
async function openError(fs: MemoryFileSystem, seed: number): Promise<unknown> {
  return Wal.open(openOptions(fs, seed)).then(
    async (w) => {
      await w.close();
      return null;
    },
    (e: unknown) => e,
  );
}

describe('recovery with payloads that carry WAL records (readRaw spans of another log)', () => {
  it(`a power loss during an unacknowledged batch always opens (${SEEDS.length} seeds)`, { timeout: TEST_TIMEOUT_MS }, async () => {
    let tornTails = 0;
    const failures: string[] = [];
    for (const seed of SEEDS) {
      const rng = seededRandom(seed);
      const { mem, fault, wal, log, next, spans } = await build(rng);
      const ackedLsn = wal.durableLsn;
      // The payloads' records are framed with another segment's salt, never ours.
      const salts = saltsOf(mem, spans, await lastSegmentName(mem));
      expect(salts.foreign.has(salts.ours), `seed ${seed}`).toBe(false);
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
        const after = await Wal.open(openOptions(image, seed + 1));
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

  it(`damage to an acknowledged batch that a later batch followed stays WAL_CORRUPT (${SEEDS.length} seeds)`, { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const seed of SEEDS) {
      const rng = seededRandom(seed);
      const { mem, wal } = await build(rng);
      // One more acknowledged batch, so that every record before it has a later batch after it.
      const firstOfLast = wal.lastLsn + 1;
      for (let i = 0, n = 1 + rng.int(4); i < n; i++) wal.append(new Uint8Array([i]));
      await wal.sync();
      await wal.close();
      const last = await lastSegmentName(mem);
      const image = mem.readFileNow(`${DIR}/${last}`);
      const victims = recordsBefore(image, last, firstOfLast);
      if (victims.length === 0) continue;
      const victim = victims[rng.int(victims.length)] as { offset: number; size: number };
      const position = victim.offset + rng.int(victim.size);
      const copy = mem.crash();
      copy.corrupt(`${DIR}/${last}`, position, new Uint8Array([(image[position] as number) ^ (1 + rng.int(255))]));
      const err = await openError(copy, seed + 1);
      const hint = `seed ${seed}: damage at ${last}:${position}; ${replayHint(seed, TEST_FILE, 'damage to an acknowledged batch')}`;
      expect(err, hint).toBeInstanceOf(FlushpointError);
      expect((err as FlushpointError).code, hint).toBe('WAL_CORRUPT');
      expect((err as FlushpointError).offset, hint).toBe(victim.offset);
      expect((err as FlushpointError).tornTail, hint).toBeUndefined();
    }
  });

  it(`two faults: damage to an acknowledged batch, then a torn last batch, stays WAL_CORRUPT (${SEEDS.length} seeds)`, { timeout: TEST_TIMEOUT_MS }, async () => {
    let tornLastBatches = 0;
    for (const seed of SEEDS) {
      const rng = seededRandom(seed);
      const { mem, fault, wal, next } = await build(rng);
      // One more acknowledged batch: its records are the proof that every record before it was acknowledged.
      const firstOfLater = wal.lastLsn + 1;
      for (let i = 0, n = 1 + rng.int(4); i < n; i++) wal.append(next());
      await wal.sync();
      // The last batch, torn by a power loss during its datasync.
      const gate = deferred();
      fault.inject({ op: 'datasync', hold: gate.promise });
      const datasyncs = fault.counts.datasync;
      const lastBatchFirstLsn = wal.lastLsn + 1;
      for (let i = 0, n = 1 + rng.int(12); i < n; i++) wal.append(next());
      const synced = wal.sync();
      await until(() => fault.counts.datasync > datasyncs, 'the last batch written and its datasync held');
      const image = mem.crash({ keepUnsynced: 'random', seed, sectorBytes: rng.int(2) === 0 ? 512 : 64 });
      gate.resolve();
      await synced;
      await wal.close();
      const last = await lastSegmentName(image);
      if ((parseSegmentName(last) as number) >= firstOfLater) continue; // the later batch began a segment: row 3
      const bytes = image.readFileNow(`${DIR}/${last}`);
      const victims = recordsBefore(bytes, last, firstOfLater);
      if (victims.length === 0) continue;
      // Did the power loss tear the last batch? (It may also have kept it whole or lost it whole.)
      const probe = await Wal.open(openOptions(image.crash(), seed + 2));
      if (probe.recovery.tornTail !== null) tornLastBatches++;
      expect(probe.lastLsn, `seed ${seed}`).toBeGreaterThanOrEqual(lastBatchFirstLsn - 1);
      await probe.close();
      const victim = victims[rng.int(victims.length)] as { offset: number; size: number };
      const position = victim.offset + rng.int(victim.size);
      image.corrupt(`${DIR}/${last}`, position, new Uint8Array([(bytes[position] as number) ^ (1 + rng.int(255))]));
      const err = await openError(image, seed + 1);
      const hint = `seed ${seed}: damage at ${last}:${position}; ${replayHint(seed, TEST_FILE, 'two faults')}`;
      expect(err, hint).toBeInstanceOf(FlushpointError);
      expect((err as FlushpointError).code, hint).toBe('WAL_CORRUPT');
      expect((err as FlushpointError).offset, hint).toBe(victim.offset);
      expect((err as FlushpointError).tornTail, hint).toBeUndefined();
    }
    // The campaign really tore last batches behind the damage (the case the old rule cut silently).
    if (SEEDS.length >= 100) expect(tornLastBatches).toBeGreaterThan(SEEDS.length / 10);
  });
});
