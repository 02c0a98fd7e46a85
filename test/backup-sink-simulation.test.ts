/**
 * Deterministic simulation of the backup sink: appends, WAL syncs, forceFlush in every mode (with
 * timeouts, aborts and bursts of concurrent barrier calls), interval and retry timers, held and failing
 * backup I/O, and a WAL that fails, over MemoryFileSystem + FaultFileSystem with a manual clock and a
 * seeded random source. Every failure prints its seed; FLUSHPOINT_SEED=<n> replays one, FLUSHPOINT_SEEDS
 * runs more (npm run test:campaign).
 *
 * Invariants, after every step:
 *   - the checkpoint never passes the WAL's durable LSN;
 *   - the checkpoint never passes what is durable in the backup (checked on a power-loss image);
 *   - a barrier forceFlush that resolves has checkpointLsn >= targetLsn;
 *   - a failed flush reaches every caller that was waiting when it failed;
 *   - a resolved barrier call saw at most two flushes (the one it joined and one more);
 * and at the end: no call is left pending, close() resolves, and the backup restores to the WAL's records.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem, type FsOp } from '../fs/index.js';
import { BackupSink, type ForceFlushResult } from '../backup/index.js';
import { restoreBackup } from '../backup/restore.js';
import { verifyBackup } from '../backup/verify.js';
import { seededRandom, type Random } from '../core/random.js';
import { FlushpointError } from '../core/errors.js';
import { ManualClock } from './helpers/manual-clock.js';
import { deferred, turns, type Deferred } from './helpers/async.js';
import { replayHint, seedList } from './helpers/seeds.js';
import { equalBytes, readAll } from './helpers/wal-fixtures.js';

const TEST_FILE = 'test/backup-sink-simulation.test.ts';
const TEST_NAME = 'holds its invariants';
const STEPS = 120;
/** A power-loss image of the backup is checked this often (verifying it reads every file). */
const IMAGE_EVERY_STEPS = 20;
/** Time allowed per seed when many run (a campaign), in ms: generous, for a loaded machine. */
const SEED_BUDGET_MS = 250;
const BACKUP_FAULT_OPS: readonly FsOp[] = ['writev', 'datasync', 'rename', 'syncDir'];

type Mode = 'barrier' | 'join' | 'reject';

interface Call {
  mode: Mode;
  state: 'pending' | 'resolved' | 'rejected';
  result?: ForceFlushResult;
  error?: unknown;
  abort?: AbortController;
}

function pick<T>(rnd: Random, items: readonly T[]): T {
  return items[rnd.int(items.length)] as T;
}

async function simulate(seed: number): Promise<{ flushes: number; failures: number; calls: number }> {
  const rnd = seededRandom(seed);
  const clock = new ManualClock();
  const wfs = new FaultFileSystem(new MemoryFileSystem());
  const wal = await Wal.open({ dir: '/wal', fs: wfs, segmentSizeBytes: 4096 });
  const bmem = new MemoryFileSystem();
  const bfs = new FaultFileSystem(bmem);
  const sink = await BackupSink.open({
    wal,
    dir: '/backup',
    fs: bfs,
    clock,
    random: seededRandom(seed ^ 0x5eed),
    flushIntervalMs: 20 + rnd.int(100),
    segmentSizeBytesMax: 1024 + rnd.int(4096),
    retryDelayMsMin: 1 + rnd.int(10),
    retryDelayMsMax: 50,
    failuresCountMax: 2 + rnd.int(20),
  });
  const calls: Call[] = [];
  const gates: Array<Deferred<void>> = [];
  const violations: string[] = [];
  let failures = 0;
  // A failed flush must reach every caller waiting at that moment: remember them, check after the step.
  let waitingAtFailure: Call[] = [];
  sink.on('error', () => {
    failures++;
    waitingAtFailure.push(...calls.filter((c) => c.state === 'pending' && c.mode !== 'reject'));
  });

  const forceFlush = (mode: Mode, options: { timeoutMs?: number; abort?: boolean } = {}): void => {
    const call: Call = { mode, state: 'pending' };
    const abort = options.abort ? new AbortController() : undefined;
    if (abort) call.abort = abort;
    calls.push(call);
    sink.forceFlush({ mode, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }), ...(abort ? { signal: abort.signal } : {}) }).then(
      (r) => {
        call.state = 'resolved';
        call.result = r;
        if (mode === 'barrier' && r.checkpointLsn < r.targetLsn) violations.push(`barrier resolved with checkpoint ${r.checkpointLsn} < target ${r.targetLsn}`);
        if (mode === 'barrier' && r.flushesJoined + r.flushesRun > 2) violations.push(`a barrier call saw ${r.flushesJoined} joined + ${r.flushesRun} run flushes`);
      },
      (err: unknown) => {
        call.state = 'rejected';
        call.error = err;
      },
    );
  };

  const append = (count: number): void => {
    for (let i = 0; i < count; i++) {
      try {
        wal.append(new Uint8Array(1 + rnd.int(200)).fill(wal.lastLsn & 255));
      } catch {
        return; // the WAL failed: it refuses appends
      }
    }
  };

  const checkInvariants = async (step: number, withImage: boolean): Promise<void> => {
    if (sink.checkpointLsn > wal.durableLsn) violations.push(`checkpoint ${sink.checkpointLsn} > WAL durable ${wal.durableLsn}`);
    for (const c of waitingAtFailure) if (c.state === 'pending') violations.push(`a ${c.mode} call still pending after the flush it waited for failed`);
    waitingAtFailure = [];
    if (withImage) {
      // A power loss now: the image's checkpoint covers only files durable in it, and is not behind the sink's.
      const image = bmem.crash();
      const v = await verifyBackup('/backup', { fs: image });
      const bad = v.problems.filter((p) => p.code === 'BACKUP_CORRUPT' || p.code === 'BACKUP_GAP');
      if (bad.length > 0) violations.push(`power-loss image: ${bad.map((p) => p.message).join('; ')}`);
      if (v.checkpointLsn < sink.checkpointLsn) violations.push(`power-loss image checkpoint ${v.checkpointLsn} < the sink's ${sink.checkpointLsn}`);
      if (v.checkpointLsn > 0 && v.lastLsn < v.checkpointLsn) violations.push(`power-loss image: checkpoint ${v.checkpointLsn} beyond the data (${v.lastLsn})`);
    }
    if (violations.length > 0) throw new Error(`step ${step}: ${violations.join(' | ')}`);
  };

  for (let step = 0; step < STEPS; step++) {
    const action = rnd.int(20);
    if (action <= 4) append(1 + rnd.int(8));
    else if (action === 5) void wal.sync().catch(() => {});
    else if (action <= 8) {
      const mode = pick<Mode>(rnd, ['barrier', 'barrier', 'join', 'reject']);
      forceFlush(mode, { ...(rnd.int(4) === 0 ? { timeoutMs: rnd.int(30) } : {}), abort: rnd.int(6) === 0 });
    } else if (action === 9) {
      // A burst of concurrent barrier calls, with appends among them.
      const n = 2 + rnd.int(30);
      for (let i = 0; i < n; i++) {
        if (rnd.int(4) === 0) append(1);
        forceFlush('barrier');
      }
    } else if (action <= 11) clock.runDeferred();
    else if (action === 12) clock.advance(rnd.int(60));
    else if (action === 13) {
      const g = deferred<void>();
      gates.push(g);
      bfs.inject({ op: pick(rnd, ['datasync', 'rename'] as const), hold: g.promise });
    } else if (action === 14) gates.splice(0).forEach((g) => g.resolve());
    else if (action === 15 && rnd.int(3) === 0) {
      bfs.inject({ op: pick(rnd, BACKUP_FAULT_OPS), path: /\.fpb|CHECKPOINT/, error: pick(rnd, ['EIO', 'ENOSPC']), nth: 1 + rnd.int(3) });
    } else if (action === 16) {
      const pending = calls.filter((c) => c.state === 'pending' && c.abort);
      pick(rnd, pending.length > 0 ? pending : [undefined])?.abort?.abort(new Error('caller gave up'));
    } else if (action === 17 && rnd.int(40) === 0) {
      wfs.inject({ op: 'datasync', path: /\.wal$/, error: 'EIO' }); // the WAL fails at its next commit
    } else if (action === 18) {
      if (rnd.int(2) === 0) sink.pause();
      else sink.resume();
    }
    await turns(1 + rnd.int(3));
    await checkInvariants(step, step % IMAGE_EVERY_STEPS === 0);
  }

  // Drain: faults clear, gates open, the sink resumes; run timers and deferred work until all settles.
  bfs.clearFaults();
  gates.splice(0).forEach((g) => g.resolve());
  sink.resume();
  await wal.sync().catch(() => {});
  for (let i = 0; i < 500 && (calls.some((c) => c.state === 'pending') || sink.flushing || clock.deferredCount > 0); i++) {
    clock.runDeferred();
    clock.advance(10);
    await turns(3);
  }
  await checkInvariants(STEPS, true);
  const stuck = calls.filter((c) => c.state === 'pending');
  if (stuck.length > 0) throw new Error(`${stuck.length} forceFlush calls never settled (modes ${[...new Set(stuck.map((c) => c.mode))].join(', ')})`);
  for (const c of calls) {
    if (c.state !== 'rejected' || (c.error instanceof Error && c.error.message === 'caller gave up')) continue;
    if (!(c.error instanceof FlushpointError) || !['BACKUP_FAILED', 'FLUSH_TIMEOUT', 'FLUSH_IN_PROGRESS'].includes(c.error.code)) {
      throw new Error(`a ${c.mode} call was rejected with an unexpected error: ${String(c.error)}`);
    }
  }
  // Close backs up everything the WAL made durable (even after the WAL failed), and the backup restores to it.
  const closing = sink.close();
  for (let i = 0; i < 100 && sink.stats().status !== 'closed'; i++) {
    clock.runDeferred();
    clock.advance(10);
    await turns(3);
  }
  await closing;
  if (sink.checkpointLsn !== wal.durableLsn) throw new Error(`closed at checkpoint ${sink.checkpointLsn}, WAL durable ${wal.durableLsn}`);
  const walRecords = wal.durableLsn > 0 ? await readAll(wal) : [];
  await wal.close().catch(() => {});
  if (walRecords.length > 0) {
    await restoreBackup({ from: '/backup', to: '/restored', fs: bmem, segmentSizeBytes: 8192 });
    const restored = await Wal.open({ dir: '/restored', fs: bmem, segmentSizeBytes: 8192 });
    const got = await readAll(restored);
    await restored.close();
    if (got.length !== walRecords.length) throw new Error(`restored ${got.length} records, the WAL has ${walRecords.length}`);
    for (const [i, r] of walRecords.entries()) {
      const g = got[i];
      if (!g || g.lsn !== r.lsn || !equalBytes(g.payload, r.payload)) throw new Error(`restored record ${i} differs from the WAL's LSN ${r.lsn}`);
    }
  }
  return { flushes: sink.stats().flushes, failures, calls: calls.length };
}

/** The sink's own modules: time and chance only through the injected clock and random source. */
const SINK_MODULES = ['sink.ts', 'adoption.ts', 'triggers.ts', 'retry-policy.ts', 'flush-pipeline.ts', 'stats.ts', 'lock.ts', 'options.ts'];

describe('BackupSink simulation', () => {
  it('the sink reads time and chance only through its injected clock and random source', async () => {
    for (const name of SINK_MODULES) {
      const code = (await readFile(new URL(`../backup/${name}`, import.meta.url), 'utf8')).replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
      expect(code, name).not.toMatch(/(?<![.\w])(setTimeout|setInterval|setImmediate)\(|Math\.random|performance\.now/);
    }
  });

  const seeds = seedList(200);
  // About 20-50 ms a seed; a campaign of thousands needs more than the default 60 s.
  const timeoutMs = Math.max(60_000, seeds.length * SEED_BUDGET_MS);
  it(`${TEST_NAME} for ${seeds.length} seeds`, async () => {
    const totals = { flushes: 0, failures: 0, calls: 0 };
    for (const seed of seeds) {
      try {
        const r = await simulate(seed);
        totals.flushes += r.flushes;
        totals.failures += r.failures;
        totals.calls += r.calls;
      } catch (err) {
        throw new Error(`simulation failed with seed ${seed} (${replayHint(seed, TEST_FILE, TEST_NAME)}): ${(err as Error).message}`, { cause: err });
      }
    }
    // The runs exercised what they claim to (not a vacuous pass).
    expect(totals.calls).toBeGreaterThan(seeds.length);
    if (seeds.length >= 50) {
      expect(totals.flushes).toBeGreaterThan(seeds.length);
      expect(totals.failures).toBeGreaterThan(0);
    }
  }, timeoutMs);
});
