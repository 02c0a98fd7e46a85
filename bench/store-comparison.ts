/**
 * Sections 3 and 4 (and section 7's engine puts) run together, one record size and writer count at a time: the WAL between its paired
 * baselines (device and raw ceiling, just before and just after), then every peer at the same size and
 * writer count. Measured back to back, flushpoint, its baselines and the peers see the same disk; the
 * report still prints them as two sections.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { measureEnginePutRow, type EnginePutMeasurement } from './engine-runner.js';
import { ratioOf } from './format.js';
import { measureLoopCeiling, type LoopCeilingResult } from './loop-ceiling.js';
import { PairedBaselines } from './paired-baselines.js';
import { loadPeers, measurePeerRow, type PeerResult } from './peer-runner.js';
import type { Peer } from './peers/peer.js';
import { writersCountsFor, type BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';
import { measureWalRow, type WalMeasurement, type WalRowMode } from './wal-runner.js';
import { findWal } from './report.js';

export interface StoreComparison {
  wal: WalMeasurement[];
  /** Rows measured with syncMode 'inline' (profile.walInlineWritersCounts), each beside its own baselines. */
  walInline: WalMeasurement[];
  /** Rows measured with commitWait 'sleep' (profile.walSleepWritersCounts), each beside its own baselines. */
  walSleep: WalMeasurement[];
  /** Rows with the log truncated behind the writers (profile.walTruncatingWritersCounts), each beside its own baselines. */
  walTruncating: WalMeasurement[];
  peers: PeerResult[];
  /** Section 7's durable puts, each measured right after the WAL row it is judged beside. */
  enginePuts: EnginePutMeasurement[];
}

function writersUnion(profile: BenchProfile, recordSizeBytes: number): number[] {
  const counts = new Set([
    ...writersCountsFor(profile.walWritersCounts, recordSizeBytes),
    ...writersCountsFor(profile.peerWritersCounts, recordSizeBytes),
    ...writersCountsFor(profile.engineWritersCounts, recordSizeBytes),
  ]);
  return [...counts].sort((a, b) => a - b);
}

/**
 * Section 3's rows beside the default one, each with its own baselines, at the writer counts its profile
 * entry names (where the default row is measured too): the opt-in modes and the truncating use.
 */
function walVariants(profile: BenchProfile): Array<{ key: 'walInline' | 'walSleep' | 'walTruncating'; counts: BenchProfile['walWritersCounts']; tag: string; label: string; mode: WalRowMode }> {
  return [
    { key: 'walInline', counts: profile.walInlineWritersCounts, tag: 'inline', label: "syncMode 'inline'", mode: { syncMode: 'inline' } },
    { key: 'walSleep', counts: profile.walSleepWritersCounts, tag: 'sleep', label: "commitWait 'sleep'", mode: { commitWait: 'sleep' } },
    { key: 'walTruncating', counts: profile.walTruncatingWritersCounts, tag: 'truncating', label: 'truncated behind the writers', mode: { use: 'truncate' } },
  ];
}

/** The engine's 1-writer twins: the engine again in an opt-in WAL mode, where section 3 has that mode's row. */
const ENGINE_TWINS = [
  { key: 'inline', rows: 'walInline', label: "syncMode 'inline'", mode: { syncMode: 'inline' } },
  { key: 'sleep', rows: 'walSleep', label: "commitWait 'sleep'", mode: { commitWait: 'sleep' } },
] as const;

export function storeComparisonStepsCount(profile: BenchProfile, peersCount: number): number {
  let steps = 0;
  for (const size of profile.recordSizesBytes) {
    const walWriters = writersCountsFor(profile.walWritersCounts, size);
    steps += walWriters.length + peersCount * writersCountsFor(profile.peerWritersCounts, size).length;
    const engineWriters = writersCountsFor(profile.engineWritersCounts, size);
    steps += engineWriters.length;
    for (const v of walVariants(profile)) {
      const writers = writersCountsFor(v.counts, size).filter((w) => walWriters.includes(w));
      steps += writers.length;
      // The engine's twins: where section 3 measures the mode's row too.
      if (ENGINE_TWINS.some((t) => t.rows === v.key)) steps += engineWriters.filter((w) => writers.includes(w)).length;
    }
  }
  return Math.max(1, steps);
}

export async function compareStores(dir: string, profile: BenchProfile, progress: Progress, peerList?: readonly Peer[]): Promise<StoreComparison> {
  const loadedPeers = await loadPeers(peerList);
  const wal: WalMeasurement[] = [];
  const variants: Record<'walInline' | 'walSleep' | 'walTruncating', WalMeasurement[]> = { walInline: [], walSleep: [], walTruncating: [] };
  const enginePuts: EnginePutMeasurement[] = [];
  const ceilings = new Map<number, LoopCeilingResult>();
  const baselines = new PairedBaselines(dir, profile);
  try {
    for (const recordSizeBytes of profile.recordSizesBytes) {
      const payload = crypto.randomBytes(recordSizeBytes);
      const walWriters = writersCountsFor(profile.walWritersCounts, recordSizeBytes);
      const peerWriters = writersCountsFor(profile.peerWritersCounts, recordSizeBytes);
      const engineWriters = writersCountsFor(profile.engineWritersCounts, recordSizeBytes);
      for (const writersCount of writersUnion(profile, recordSizeBytes)) {
        if (walWriters.includes(writersCount)) {
          progress.step(`flushpoint ${recordSizeBytes} B x ${writersCount} writers`);
          let ceiling = ceilings.get(writersCount);
          if (ceiling === undefined) {
            ceiling = await measureLoopCeiling(writersCount, profile.warmupMs / 2, profile.loopCeilingWindowMs);
            ceilings.set(writersCount, ceiling);
          }
          const loop = ceiling;
          // One WAL row between its paired baselines.
          const measurePaired = async (tag: string, mode: WalRowMode): Promise<WalMeasurement> => {
            await baselines.before(recordSizeBytes, writersCount);
            const measured = await measureWalRow(path.join(dir, `wal-${tag}${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress, mode);
            const paired = await baselines.after();
            return { recordSizeBytes, syncMode: mode.syncMode ?? 'worker', ...(mode.commitWait === undefined ? {} : { commitWait: mode.commitWait }), use: mode.use ?? 'append', ...measured, paired, loopCeilingOpsPerSec: loop.opsPerSec, loopCeilingBusyUsPerRecord: loop.loopBusyUsPerRecord };
          };
          wal.push(await measurePaired('', {}));
          for (const v of walVariants(profile)) {
            if (!writersCountsFor(v.counts, recordSizeBytes).includes(writersCount)) continue;
            progress.step(`flushpoint ${recordSizeBytes} B x ${writersCount} writers, ${v.label}`);
            variants[v.key].push(await measurePaired(`${v.tag}-`, v.mode));
          }
        }
        if (engineWriters.includes(writersCount)) {
          progress.step(`engine ${recordSizeBytes} B x ${writersCount} writers`);
          const opsPerSec = await measureEnginePutRow(path.join(dir, `engine-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress);
          const walRow = findWal(wal, recordSizeBytes, writersCount);
          const walAloneOpsPerSec = walRow?.opsPerSec ?? Number.NaN;
          const row: EnginePutMeasurement = { recordSizeBytes, writersCount, opsPerSec, walAloneOpsPerSec, ratioToWalAlone: ratioOf(opsPerSec, walAloneOpsPerSec), rawCeilingOpsPerSec: walRow?.paired.rawRecordsPerSec ?? Number.NaN };
          for (const twin of ENGINE_TWINS) {
            const walTwin = findWal(variants[twin.rows], recordSizeBytes, writersCount);
            if (walTwin === undefined) continue;
            progress.step(`engine ${recordSizeBytes} B x ${writersCount} writers, ${twin.label}`);
            const twinOpsPerSec = await measureEnginePutRow(path.join(dir, `engine-${twin.key}-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress, twin.mode);
            row[twin.key] = { opsPerSec: twinOpsPerSec, walAloneOpsPerSec: walTwin.opsPerSec, ratioToWalAlone: ratioOf(twinOpsPerSec, walTwin.opsPerSec), rawCeilingOpsPerSec: walTwin.paired.rawRecordsPerSec };
          }
          enginePuts.push(row);
        }
        if (peerWriters.includes(writersCount)) {
          for (const loaded of loadedPeers) {
            if (loaded.result.status !== 'ok') continue;
            progress.step(`${loaded.peer.id} ${recordSizeBytes} B x ${writersCount} writers`);
            await measurePeerRow(loaded, dir, payload, writersCount, profile, progress);
          }
        }
      }
    }
  } finally {
    baselines.close();
  }
  return { wal, ...variants, peers: loadedPeers.map((loaded) => loaded.result), enginePuts };
}
