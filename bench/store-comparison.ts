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
import { measureWalRow, type WalMeasurement } from './wal-runner.js';
import { findWal } from './report.js';

export interface StoreComparison {
  wal: WalMeasurement[];
  /** Rows measured with syncMode 'inline' (profile.walInlineWritersCounts), each beside its own baselines. */
  walInline: WalMeasurement[];
  /** Rows measured with commitWait 'poll' (profile.walPollWritersCounts), each beside its own baselines. */
  walPoll: WalMeasurement[];
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

export function storeComparisonStepsCount(profile: BenchProfile, peersCount: number): number {
  let steps = 0;
  for (const size of profile.recordSizesBytes) {
    steps += writersCountsFor(profile.walWritersCounts, size).length + peersCount * writersCountsFor(profile.peerWritersCounts, size).length;
    steps += writersCountsFor(profile.walInlineWritersCounts, size).filter((w) => writersCountsFor(profile.walWritersCounts, size).includes(w)).length;
    steps += writersCountsFor(profile.walPollWritersCounts, size).filter((w) => writersCountsFor(profile.walWritersCounts, size).includes(w)).length;
    steps += writersCountsFor(profile.walTruncatingWritersCounts, size).filter((w) => writersCountsFor(profile.walWritersCounts, size).includes(w)).length;
    steps += writersCountsFor(profile.engineWritersCounts, size).length;
    // The engine's inline rows: where section 3 measures an inline row too.
    steps += writersCountsFor(profile.engineWritersCounts, size).filter((w) => writersCountsFor(profile.walInlineWritersCounts, size).includes(w) && writersCountsFor(profile.walWritersCounts, size).includes(w)).length;
    steps += writersCountsFor(profile.engineWritersCounts, size).filter((w) => writersCountsFor(profile.walPollWritersCounts, size).includes(w) && writersCountsFor(profile.walWritersCounts, size).includes(w)).length;
  }
  return Math.max(1, steps);
}

export async function compareStores(dir: string, profile: BenchProfile, progress: Progress, peerList?: readonly Peer[]): Promise<StoreComparison> {
  const loadedPeers = await loadPeers(peerList);
  const wal: WalMeasurement[] = [];
  const walInline: WalMeasurement[] = [];
  const walPoll: WalMeasurement[] = [];
  const walTruncating: WalMeasurement[] = [];
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
          await baselines.before(recordSizeBytes, writersCount);
          const measured = await measureWalRow(path.join(dir, `wal-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress);
          const paired = await baselines.after();
          wal.push({ recordSizeBytes, syncMode: 'worker', use: 'append', ...measured, paired, loopCeilingOpsPerSec: ceiling.opsPerSec, loopCeilingBusyUsPerRecord: ceiling.loopBusyUsPerRecord });
          if (writersCountsFor(profile.walInlineWritersCounts, recordSizeBytes).includes(writersCount)) {
            progress.step(`flushpoint ${recordSizeBytes} B x ${writersCount} writers, syncMode 'inline'`);
            await baselines.before(recordSizeBytes, writersCount);
            const inline = await measureWalRow(path.join(dir, `wal-inline-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress, 'inline');
            const pairedInline = await baselines.after();
            walInline.push({ recordSizeBytes, syncMode: 'inline', use: 'append', ...inline, paired: pairedInline, loopCeilingOpsPerSec: ceiling.opsPerSec, loopCeilingBusyUsPerRecord: ceiling.loopBusyUsPerRecord });
          }
          if (writersCountsFor(profile.walPollWritersCounts, recordSizeBytes).includes(writersCount)) {
            progress.step(`flushpoint ${recordSizeBytes} B x ${writersCount} writers, commitWait 'poll'`);
            await baselines.before(recordSizeBytes, writersCount);
            const poll = await measureWalRow(path.join(dir, `wal-poll-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress, 'worker', 'append', 'poll');
            const pairedPoll = await baselines.after();
            walPoll.push({ recordSizeBytes, syncMode: 'worker', commitWait: 'poll', use: 'append', ...poll, paired: pairedPoll, loopCeilingOpsPerSec: ceiling.opsPerSec, loopCeilingBusyUsPerRecord: ceiling.loopBusyUsPerRecord });
          }
          if (writersCountsFor(profile.walTruncatingWritersCounts, recordSizeBytes).includes(writersCount)) {
            progress.step(`flushpoint ${recordSizeBytes} B x ${writersCount} writers, truncated behind the writers`);
            await baselines.before(recordSizeBytes, writersCount);
            const truncating = await measureWalRow(path.join(dir, `wal-truncating-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress, 'worker', 'truncate');
            const pairedTruncating = await baselines.after();
            walTruncating.push({ recordSizeBytes, syncMode: 'worker', use: 'truncate', ...truncating, paired: pairedTruncating, loopCeilingOpsPerSec: ceiling.opsPerSec, loopCeilingBusyUsPerRecord: ceiling.loopBusyUsPerRecord });
          }
        }
        if (engineWriters.includes(writersCount)) {
          progress.step(`engine ${recordSizeBytes} B x ${writersCount} writers`);
          const opsPerSec = await measureEnginePutRow(path.join(dir, `engine-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress);
          const walRow = findWal(wal, recordSizeBytes, writersCount);
          const walAloneOpsPerSec = walRow?.opsPerSec ?? Number.NaN;
          const row: EnginePutMeasurement = { recordSizeBytes, writersCount, opsPerSec, walAloneOpsPerSec, ratioToWalAlone: ratioOf(opsPerSec, walAloneOpsPerSec), rawCeilingOpsPerSec: walRow?.paired.rawRecordsPerSec ?? Number.NaN };
          const walInlineRow = findWal(walInline, recordSizeBytes, writersCount);
          if (walInlineRow) {
            progress.step(`engine ${recordSizeBytes} B x ${writersCount} writers, syncMode 'inline'`);
            const inlineOpsPerSec = await measureEnginePutRow(path.join(dir, `engine-inline-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress, 'inline');
            row.inline = { opsPerSec: inlineOpsPerSec, walAloneOpsPerSec: walInlineRow.opsPerSec, ratioToWalAlone: ratioOf(inlineOpsPerSec, walInlineRow.opsPerSec), rawCeilingOpsPerSec: walInlineRow.paired.rawRecordsPerSec };
          }
          const walPollRow = findWal(walPoll, recordSizeBytes, writersCount);
          if (walPollRow) {
            progress.step(`engine ${recordSizeBytes} B x ${writersCount} writers, commitWait 'poll'`);
            const pollOpsPerSec = await measureEnginePutRow(path.join(dir, `engine-poll-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress, 'worker', 'poll');
            row.poll = { opsPerSec: pollOpsPerSec, walAloneOpsPerSec: walPollRow.opsPerSec, ratioToWalAlone: ratioOf(pollOpsPerSec, walPollRow.opsPerSec), rawCeilingOpsPerSec: walPollRow.paired.rawRecordsPerSec };
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
  return { wal, walInline, walPoll, walTruncating, peers: loadedPeers.map((loaded) => loaded.result), enginePuts };
}
