/**
 * Power loss, simulated: concurrent writers append to a WAL on a MemoryFileSystem and await waitDurable;
 * at a moment the seeded random source picks (after N acknowledgements, or while a commit step is held
 * open by the FaultFileSystem), the test takes "the disk after a power loss" with mem.crash(), opens a
 * new WAL on it and checks:
 *   - every acknowledged LSN (and everything durable at the crash) is there, byte for byte;
 *   - the log is the contiguous prefix 1..lastLsn, each payload exactly what was appended under that
 *     LSN (unacknowledged records that survived included), nothing beyond what was appended;
 *   - the recovered WAL takes new appends, and they (with everything recovered) survive a second crash.
 * Now and then the power goes out again in the middle of recovery (while it removes temp files, cuts
 * a torn tail or syncs what it found); the next recovery must give the same guarantees.
 *
 * Segments are small (4-16 KiB) so that batches roll into new segments, use the preallocated file and
 * its rename; payloads include empty ones and ones within 64 bytes of the segment's limit.
 * Three seeds in four truncate the log behind the writers as a checkpointing consumer does
 * (truncateBefore at an acknowledged LSN, now and then) with recycleSegments 1..3, so freed segments
 * are renamed to free files and reused (format version 3 over old bytes) during the run, and the
 * crash can land in any of those renames, the reuse's first commit or its rename. A new log's first
 * segment, zero-filling in its own file, ends early once its next file is filled (segmentsHandedOver):
 * the campaign counts those rolls.
 * Any failure names its seed: FLUSHPOINT_SEED=<n> replays it (FLUSHPOINT_SEEDS=<count> runs more).
 */
import { describe, expect, it } from 'vitest';
import { Wal, type PipelineMode, type SyncMode } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem, type FsOp } from '../fs/index.js';
import { seededRandom, type Random } from '../core/random.js';
import { deferred, turns } from './helpers/async.js';
import { randomPayload, type PayloadKind, type PayloadProfile } from './helpers/payload.js';
import { replayHint, replaying, seedList } from './helpers/seeds.js';
import { ExpectedLog, verifyLog } from './helpers/wal-log.js';
import { FORMAT_VERSION_RECYCLED, SEGMENT_HEADER_BYTES, SEGMENT_NAME_RE, decodeSegmentHeader } from '../wal/format.js';

const TEST_FILE = 'test/wal-power-loss.test.ts';
const DIR = '/data/wal';
const SEGMENT_SIZES_BYTES = [4096, 8192, 16384] as const;
/** Two modes x 500 seeds: 1,000 cut points (each seed crashes twice: after the first run, and again after recovery). */
const SEEDS_PER_MODE = 500;
const MODES = ['none', 'random'] as const;
type KeepUnsynced = (typeof MODES)[number];
/**
 * Commit steps a crash can land in the middle of: the batch's write, its sync (twice as likely: the
 * window where written bytes are not yet durable), a new segment's rename and directory sync.
 */
const HOLD_OPS: readonly FsOp[] = ['writev', 'datasync', 'datasync', 'rename', 'syncDir'];
/** With syncMode 'inline' a commit's writev and sync block the loop and cannot be held: the steps after them can. */
const HOLD_OPS_INLINE: readonly FsOp[] = ['rename', 'syncDir'];
/** Every fourth seed runs the WAL with syncMode 'inline' (commits on the event loop's thread); the rest 'worker'. */
function syncModeOf(seed: number): SyncMode {
  return seed % 4 === 3 ? 'inline' : 'worker';
}
/** Torn writes keep whole sectors of this size (512: a disk sector; 64: finer, harsher tearing). */
const SECTOR_SIZES_BYTES = [512, 64] as const;
/** What opening a crashed log does to it: remove temp files, cut and keep a torn tail, sync what it found. */
const RECOVERY_HOLD_OPS: readonly FsOp[] = ['unlink', 'rename', 'sync', 'datasync', 'syncDir'];
const WRITERS_COUNT_MAX = 8;
const APPENDS_PER_RUN_MAX = 160;

type Trigger = 'acks' | 'hold' | 'end';

interface Tally {
  cutPoints: number;
  crashes: number;
  triggers: Record<Trigger, number>;
  tornTailsCut: number;
  /** Records recovered beyond the durable LSN the WAL reported at the crash. */
  unackedRecovered: number;
  /** Appended records that did not survive (never acknowledged). */
  unackedLost: number;
  recordsAcked: number;
  /** Power lost again while the crashed log was being opened (recovery after a crash in recovery). */
  crashesInRecovery: number;
  segmentsMax: number;
  kinds: Record<PayloadKind, number>;
  /** Crash images that kept a directory operation after losing an earlier one (not a prefix). */
  nonPrefixDirImages: number;
  /** Unsynced directory operations at the crashes, and how many the images kept. */
  dirOpsUnsynced: number;
  dirOpsKept: number;
  /** Seeds run with syncMode 'inline'. */
  inlineSeeds: number;
  /** truncateBefore calls made during runs, segments started in a recycled file, and recoveries that found a version-3 (recycled) segment. */
  truncations: number;
  segmentsRecycled: number;
  recoveriesWithRecycled: number;
  /** dropCache calls the WAL made (seeds with a file system that drops cache: wal/cache-dropper.ts). */
  cacheDrops: number;
  /** Torn tails cut in a version-3 segment (a torn batch over old bytes). */
  tornTailsRecycled: number;
  /** Flushes run pipelined (pipelineCommits 'always' seeds). */
  pipelinedBatches: number;
  /** Segments the WAL ended early for a filled next file (a new log's first segment: SegmentPreparer.handOverDue). */
  segmentsHandedOver: number;
  /** Crash images taken after a hand-over (its early roll staged, under way or done). */
  crashesAfterHandOver: number;
}

function newTally(): Tally {
  return {
    cutPoints: 0,
    crashes: 0,
    triggers: { acks: 0, hold: 0, end: 0 },
    tornTailsCut: 0,
    unackedRecovered: 0,
    unackedLost: 0,
    recordsAcked: 0,
    crashesInRecovery: 0,
    segmentsMax: 0,
    kinds: { empty: 0, small: 0, medium: 0, nearMax: 0 },
    nonPrefixDirImages: 0,
    dirOpsUnsynced: 0,
    dirOpsKept: 0,
    inlineSeeds: 0,
    truncations: 0,
    segmentsRecycled: 0,
    recoveriesWithRecycled: 0,
    cacheDrops: 0,
    tornTailsRecycled: 0,
    pipelinedBatches: 0,
    segmentsHandedOver: 0,
    crashesAfterHandOver: 0,
  };
}

interface CrashPoint {
  /** The disk as a reboot finds it. */
  image: MemoryFileSystem;
  trigger: Trigger;
  /** wal.durableLsn at the crash. */
  durableLsn: number;
  /** Highest LSN whose waitDurable had resolved (and been seen by its writer) at the crash. */
  ackedLsnMax: number;
  /** wal.lastLsn at the crash: nothing above it was ever appended. */
  lastAppendedLsn: number;
}

interface Run {
  wal: Wal;
  fault: FaultFileSystem;
  disk: MemoryFileSystem;
  rng: Random;
  log: ExpectedLog;
  keepUnsynced: KeepUnsynced;
  tally: Tally;
  /** Acknowledged appends made one at a time before the concurrent writers start. */
  warmupAcks: number;
  syncMode: SyncMode;
  /** Truncation behind the writers (null: none this seed); lsnMax is the highest LSN passed to truncateBefore. */
  truncation: { lsnMax: number } | null;
}

/** Adds what a crash did to directories to the tally. */
function countDirOps(image: MemoryFileSystem, tally: Tally): void {
  const report = image.crashReport;
  if (report === null) throw new Error('a crash image carries its crash report');
  tally.dirOpsUnsynced += report.dirOpsUnsynced;
  tally.dirOpsKept += report.dirOpsKept;
  if (report.dirsWithNonPrefixKept > 0) tally.nonPrefixDirImages++;
}

/** Runs concurrent writers until the crash point the seeded random source picked; returns the crash image. */
async function runUntilCrash(run: Run): Promise<CrashPoint> {
  const { wal, fault, disk, rng, log, keepUnsynced, tally } = run;
  let ackedLsnMax = 0;
  // Half the runs write only small records: many per segment and per sector, so crashes tear them.
  const profile: PayloadProfile = rng.int(2) === 0 ? 'mixed' : 'small';
  const appendOne = (): number => {
    const { payload, kind } = randomPayload(rng, wal.payloadBytesMax, profile);
    const lsn = wal.append(payload);
    log.set(lsn, payload);
    tally.kinds[kind]++;
    return lsn;
  };
  for (let i = 0; i < run.warmupAcks; i++) {
    const lsn = appendOne();
    await wal.waitDurable(lsn);
    ackedLsnMax = lsn;
    tally.recordsAcked++;
  }

  const writersCount = 1 + rng.int(WRITERS_COUNT_MAX);
  const appendsBudget = 1 + rng.int(APPENDS_PER_RUN_MAX);
  const crashSeed = rng.int(0x7fff_ffff);
  const sectorBytes = SECTOR_SIZES_BYTES[rng.int(SECTOR_SIZES_BYTES.length)] as number;
  const gate = deferred();
  const crashed = deferred<CrashPoint>();
  let crash: CrashPoint | null = null;
  const crashNow = (trigger: Trigger): void => {
    if (crash !== null) return;
    crash = { image: disk.crash({ keepUnsynced, seed: crashSeed, sectorBytes }), trigger, durableLsn: wal.durableLsn, ackedLsnMax, lastAppendedLsn: wal.lastLsn };
    if (wal.stats().segmentsHandedOver > 0) tally.crashesAfterHandOver++;
    countDirOps(crash.image, tally);
    crashed.resolve(crash);
  };

  let afterAcks = Number.POSITIVE_INFINITY;
  let hold: { op: FsOp; nth: number; base: number; extraTurns: number } | null = null;
  if (rng.int(5) < 2) {
    afterAcks = rng.int(appendsBudget + 1);
  } else {
    const holdOps = run.syncMode === 'inline' ? HOLD_OPS_INLINE : HOLD_OPS;
    const op = holdOps[rng.int(holdOps.length)] as FsOp;
    hold = { op, nth: 1 + rng.int(4), base: fault.counts[op], extraTurns: rng.int(4) };
    fault.inject({ op, nth: hold.nth, hold: gate.promise });
  }
  if (afterAcks === 0) crashNow('acks');

  let appended = 0;
  let acks = 0;
  let writersDone = false;
  const writer = async (): Promise<void> => {
    while (crash === null && appended < appendsBudget) {
      const lsns: number[] = [];
      const burst = 1 + rng.int(3);
      for (let k = 0; k < burst && appended < appendsBudget; k++, appended++) lsns.push(appendOne());
      const durable = await Promise.all(lsns.map((lsn) => wal.waitDurable(lsn)));
      if (crash !== null) return; // resolved after the power went out: not counted as acknowledged
      lsns.forEach((lsn, i) => {
        if ((durable[i] as number) < lsn) throw new Error(`waitDurable(${lsn}) resolved with durable LSN ${durable[i]}`);
        if (wal.durableLsn < lsn) throw new Error(`waitDurable(${lsn}) resolved while wal.durableLsn is ${wal.durableLsn}`);
        ackedLsnMax = Math.max(ackedLsnMax, lsn);
      });
      acks += lsns.length;
      tally.recordsAcked += lsns.length;
      if (run.truncation !== null && rng.int(3) === 0) {
        // A checkpoint covered everything acknowledged (or a little less): drop what lies below it.
        const lsn = Math.max(1, ackedLsnMax + 1 - rng.int(4));
        run.truncation.lsnMax = Math.max(run.truncation.lsnMax, lsn);
        tally.truncations++;
        wal.truncateBefore(lsn).catch((err: unknown) => {
          // The run ends by closing the log: a truncation still queued then gets WAL_CLOSED.
          if ((err as { code?: string }).code !== 'WAL_CLOSED') throw err;
        });
      }
      if (acks >= afterAcks) crashNow('acks');
    }
  };
  const watchHold = async (): Promise<void> => {
    if (hold === null) return;
    // The op's count goes up when the call begins, before it waits at the gate: the nth call is held.
    while (crash === null && !writersDone) {
      if (fault.counts[hold.op] - hold.base >= hold.nth) {
        await turns(hold.extraTurns);
        crashNow('hold');
        return;
      }
      await turns(1);
    }
  };

  const writers = Promise.all(Array.from({ length: writersCount }, writer)).finally(() => {
    writersDone = true;
  });
  const watching = watchHold();
  try {
    await Promise.race([writers, crashed.promise]);
    await watching;
    crashNow('end');
  } finally {
    gate.resolve();
  }
  await writers;
  tally.segmentsRecycled += wal.stats().segmentsRecycled;
  tally.segmentsHandedOver += wal.stats().segmentsHandedOver;
  await wal.close();
  return crashed.promise;
}

/**
 * Sometimes the power goes out again while the crashed log is being opened: hold one of recovery's
 * operations, take the disk at that moment, and let the open finish on the old disk. Returns the disk
 * the next boot finds.
 */
async function maybeCrashInRecovery(image: MemoryFileSystem, segmentSizeBytes: number, recycleSegments: number, rng: Random, keepUnsynced: KeepUnsynced, tally: Tally): Promise<MemoryFileSystem> {
  if (rng.int(4) !== 0) return image;
  const op = RECOVERY_HOLD_OPS[rng.int(RECOVERY_HOLD_OPS.length)] as FsOp;
  const crashSeed = rng.int(0x7fff_ffff);
  const fault = new FaultFileSystem(image);
  const gate = deferred();
  fault.inject({ op, hold: gate.promise });
  let opened = false;
  const opening = Wal.open({ dir: DIR, fs: fault, segmentSizeBytes, recycleSegments }).finally(() => {
    opened = true;
  });
  let next = image;
  try {
    while (!opened && fault.counts[op] === 0) await turns(1);
    if (fault.counts[op] > 0) {
      next = image.crash({ keepUnsynced, seed: crashSeed });
      countDirOps(next, tally);
      tally.crashesInRecovery++;
    }
  } finally {
    gate.resolve();
  }
  await (await opening).close();
  return next;
}

/** `salts`: the seed's own source of segment salts (one stream across reopens, so salts never repeat). */
async function openWal(disk: MemoryFileSystem, segmentSizeBytes: number, salts: Random, syncMode: SyncMode, recycleSegments: number, pipelineCommits: PipelineMode): Promise<{ wal: Wal; fault: FaultFileSystem }> {
  const fault = new FaultFileSystem(disk);
  return { wal: await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes, random: salts, syncMode, recycleSegments, pipelineCommits }), fault };
}

/**
 * A third of the seeds pipeline every flush ('always': a flush starts at once when half the last
 * batch waits, and at a flush's completion with what was appended meanwhile, inside append() and before
 * the completed flush's waiters run); the rest the default 'auto', which a short run never switches on.
 */
function pipelineOf(seed: number): PipelineMode {
  return seed % 3 === 0 ? 'always' : 'auto';
}

/** Half the seeds run on a file system that drops cache (the WAL then drops durable pages behind its writer). */
function dropsCacheOf(seed: number): boolean {
  return seed % 2 === 0;
}

/** Three seeds in four truncate behind the writers, with 1..3 free files kept for reuse; the rest never truncate (recycleSegments 0). */
function recycleSegmentsOf(seed: number): number {
  return seed % 4 === 1 ? 0 : 1 + (seed % 3);
}

/** Segments of format version 3 (written over a recycled file) among those in the directory. */
async function recycledSegmentsIn(disk: MemoryFileSystem): Promise<number> {
  let n = 0;
  for (const name of await disk.readdir(DIR).catch(() => [] as string[])) {
    if (!SEGMENT_NAME_RE.test(name)) continue;
    const header = decodeSegmentHeader(disk.readFileNow(`${DIR}/${name}`).subarray(0, SEGMENT_HEADER_BYTES));
    if (header.ok && header.version === FORMAT_VERSION_RECYCLED) n++;
  }
  return n;
}

/** One seed: run, crash, recover and check; write more, crash again, recover and check. */
async function cutPoint(seed: number, keepUnsynced: KeepUnsynced, tally: Tally): Promise<void> {
  const rng = seededRandom(seed);
  const salts = seededRandom((seed ^ 0x5a17_5a17) >>> 0);
  const segmentSizeBytes = SEGMENT_SIZES_BYTES[rng.int(SEGMENT_SIZES_BYTES.length)] as number;
  const log = new ExpectedLog();
  let disk = new MemoryFileSystem();
  disk.dropsCache = dropsCacheOf(seed);
  const syncMode = syncModeOf(seed);
  if (syncMode === 'inline') tally.inlineSeeds++;
  const recycleSegments = recycleSegmentsOf(seed);
  const truncation = recycleSegments > 0 ? { lsnMax: 0 } : null;
  const pipelineCommits = pipelineOf(seed);
  let { wal, fault } = await openWal(disk, segmentSizeBytes, salts, syncMode, recycleSegments, pipelineCommits);
  let mustSurviveLsn = 0;
  for (const generation of [1, 2]) {
    const crash = await runUntilCrash({ wal, fault, disk, rng, log, keepUnsynced, tally, warmupAcks: generation === 1 ? 0 : 1, syncMode, truncation });
    tally.crashes++;
    tally.triggers[crash.trigger]++;
    tally.pipelinedBatches += wal.stats().pipelinedBatches;
    // A drop is a hint on durable bytes only: none may have covered a byte not yet synced.
    const unsyncedDrop = disk.cacheDrops.find((d) => d.unsynced);
    if (unsyncedDrop !== undefined) throw new Error(`seed ${seed}: the WAL dropped the cache of unsynced bytes: ${JSON.stringify(unsyncedDrop)}`);
    tally.cacheDrops += disk.cacheDrops.length;
    disk = await maybeCrashInRecovery(crash.image, segmentSizeBytes, recycleSegments, rng, keepUnsynced, tally);
    disk.dropsCache = dropsCacheOf(seed);
    if ((await recycledSegmentsIn(disk)) > 0) tally.recoveriesWithRecycled++;
    ({ wal, fault } = await openWal(disk, segmentSizeBytes, salts, syncMode, recycleSegments, pipelineCommits));
    const lastLsn = await verifyLog(wal, (lsn) => log.get(lsn), {
      mustSurviveLsn: Math.max(mustSurviveLsn, crash.ackedLsnMax, crash.durableLsn),
      lastAppendedLsn: crash.lastAppendedLsn,
      truncatedBeforeLsn: truncation?.lsnMax ?? 0,
    });
    const torn = wal.recovery.tornTail;
    if (torn !== null) {
      tally.tornTailsCut++;
      const header = decodeSegmentHeader(disk.readFileNow(torn.file).subarray(0, SEGMENT_HEADER_BYTES));
      if (header.ok && header.version === FORMAT_VERSION_RECYCLED) tally.tornTailsRecycled++;
    }
    tally.unackedRecovered += Math.max(0, lastLsn - crash.durableLsn);
    tally.unackedLost += crash.lastAppendedLsn - lastLsn;
    tally.segmentsMax = Math.max(tally.segmentsMax, wal.recovery.segments);
    // What was recovered is durable now (open syncs it): it must survive the next crash too.
    mustSurviveLsn = lastLsn;
    log.truncateAfter(lastLsn);
  }
  await wal.close();
  tally.cutPoints++;
}

describe('WAL under simulated power loss (MemoryFileSystem.crash)', () => {
  for (const keepUnsynced of MODES) {
    const name = `keepUnsynced '${keepUnsynced}': acknowledged records survive, the log is an exact contiguous prefix, and it survives a second crash`;
    // The campaign (FLUSHPOINT_SEEDS=4000) needs more than the default 60 s on a busy 2-core machine.
    it(name, { timeout: Math.max(60_000, seedList(SEEDS_PER_MODE).length * 60) }, async () => {
      expect(MODES).toContain(keepUnsynced);
      const seeds = seedList(SEEDS_PER_MODE);
      const tally = newTally();
      for (const seed of seeds) {
        try {
          await cutPoint(seed, keepUnsynced, tally);
        } catch (err) {
          const hint = replayHint(seed, TEST_FILE, name);
          console.error(`power-loss seed ${seed} (keepUnsynced '${keepUnsynced}') failed; ${hint}`);
          throw new Error(`seed ${seed} (keepUnsynced '${keepUnsynced}'): ${(err as Error).message}\n${hint}`, { cause: err });
        }
      }
      expect(tally.cutPoints).toBe(seeds.length);
      expect(tally.crashes).toBe(2 * seeds.length);
      expect(tally.inlineSeeds).toBe(seeds.filter((seed) => syncModeOf(seed) === 'inline').length);
      if (!replaying()) expect(tally.inlineSeeds).toBeGreaterThan(0);
      // The mode really is the one named: only synced state survives 'none', so a crash never tears a
      // record; 'random' keeps parts of unsynced writes, which recovery must cut or keep whole.
      if (keepUnsynced === 'none') expect(tally.tornTailsCut).toBe(0);
      if (replaying()) return;
      if (keepUnsynced === 'random') {
        expect(tally.tornTailsCut).toBeGreaterThan(0);
        expect(tally.unackedRecovered).toBeGreaterThan(0);
        // Directory operations: some kept, some lost, and some images kept a non-prefix of them.
        expect(tally.dirOpsKept).toBeGreaterThan(0);
        expect(tally.dirOpsKept).toBeLessThan(tally.dirOpsUnsynced);
        expect(tally.nonPrefixDirImages).toBeGreaterThan(0);
        // Torn batches over the old bytes of a recycled file were cut (rows 5r).
        expect(tally.tornTailsRecycled).toBeGreaterThan(0);
      } else expect(tally.dirOpsKept).toBe(0);
      // The run covered what it claims: both kinds of cut point, lost unacknowledged records, many
      // segments, and every kind of payload.
      expect(tally.triggers.acks).toBeGreaterThan(seeds.length / 4);
      expect(tally.triggers.hold).toBeGreaterThan(seeds.length / 2);
      expect(tally.unackedLost).toBeGreaterThan(0);
      expect(tally.crashesInRecovery).toBeGreaterThan(seeds.length / 10);
      expect(tally.segmentsMax).toBeGreaterThanOrEqual(5);
      for (const kind of Object.keys(tally.kinds) as PayloadKind[]) expect(tally.kinds[kind], kind).toBeGreaterThan(100);
      // Truncation and recycling happened during the runs, and crashes left recycled segments to recover.
      expect(tally.truncations).toBeGreaterThan(seeds.length);
      expect(tally.segmentsRecycled).toBeGreaterThan(seeds.length / 4);
      // New logs' first segments ended early for a filled next file, and power went out after that.
      expect(tally.segmentsHandedOver, 'segments handed over early').toBeGreaterThan(seeds.length / 50);
      expect(tally.crashesAfterHandOver, 'crashes after a hand-over').toBeGreaterThan(seeds.length / 50);
      expect(tally.recoveriesWithRecycled).toBeGreaterThan(seeds.length / 10);
      expect(tally.cacheDrops, 'the WAL dropped cache in the seeds that can').toBeGreaterThan(seeds.length / 10);
      expect(tally.pipelinedBatches, "flushes ran pipelined in the 'always' seeds").toBeGreaterThan(seeds.length / 10);
      console.log(`power loss, keepUnsynced '${keepUnsynced}': ${JSON.stringify(tally)}`);
    });
  }
});
