/**
 * Section 4, the peers: each peer store under the same closed-loop load as the WAL (same record sizes,
 * same writer counts), one fresh directory per measurement. A peer that cannot be loaded is "skipped",
 * one that fails while running is "failed"; both keep their reason, and the run goes on.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runClosedLoop, type ClosedLoopResult } from './closed-loop.js';
import { betterSqlite3BatchedPeer, betterSqlite3Peer } from './peers/better-sqlite3.js';
import { classicLevelPeer } from './peers/classic-level.js';
import { lmdbPeer } from './peers/lmdb.js';
import { installedVersion, reasonOf, type Peer, type PeerOpener } from './peers/peer.js';
import { writersCountsFor, type BenchProfile } from './profile.js';
import type { Progress } from './progress.js';

export const peers: readonly Peer[] = [lmdbPeer, betterSqlite3Peer, betterSqlite3BatchedPeer, classicLevelPeer];

export interface PeerMeasurement extends ClosedLoopResult {
  recordSizeBytes: number;
}

export interface PeerResult {
  id: string;
  packageName: string;
  version: string | undefined;
  durableSetting: string;
  status: 'ok' | 'skipped' | 'failed';
  /** Why the peer was skipped or failed. */
  reason?: string;
  measurements: PeerMeasurement[];
}

export function peerStepsCount(profile: BenchProfile, peerList: readonly Peer[] = peers): number {
  const perPeer = profile.recordSizesBytes.reduce((sum, size) => sum + writersCountsFor(profile.peerWritersCounts, size).length, 0);
  return Math.max(1, perPeer * peerList.length);
}

async function measurePeer(peer: Peer, open: PeerOpener, dir: string, profile: BenchProfile, progress: Progress, result: PeerResult): Promise<void> {
  for (const recordSizeBytes of profile.recordSizesBytes) {
    const payload = crypto.randomBytes(recordSizeBytes);
    for (const writersCount of writersCountsFor(profile.peerWritersCounts, recordSizeBytes)) {
      progress.step(`${peer.id} ${recordSizeBytes} B x ${writersCount} writers`);
      const storeDir = path.join(dir, `peer-${peer.id}-${recordSizeBytes}-${writersCount}`);
      fs.mkdirSync(storeDir, { recursive: true });
      try {
        const store = await open(storeDir, payload);
        try {
          const measured = await runClosedLoop({
            writersCount,
            warmupMs: profile.warmupMs,
            windowMs: profile.windowMs,
            write: () => store.write(),
            onTick: (fraction) => progress.advance(fraction),
          });
          result.measurements.push({ recordSizeBytes, ...measured });
        } finally {
          await store.close();
        }
      } finally {
        fs.rmSync(storeDir, { recursive: true, force: true });
      }
    }
  }
}

export async function measurePeers(dir: string, profile: BenchProfile, progress: Progress, peerList: readonly Peer[] = peers): Promise<PeerResult[]> {
  const results: PeerResult[] = [];
  for (const peer of peerList) {
    const result: PeerResult = {
      id: peer.id,
      packageName: peer.packageName,
      version: installedVersion(peer.packageName),
      durableSetting: peer.durableSetting,
      status: 'ok',
      measurements: [],
    };
    results.push(result);
    let open: PeerOpener;
    try {
      open = await peer.load();
    } catch (err) {
      result.status = 'skipped';
      result.reason = reasonOf(err);
      continue;
    }
    try {
      await measurePeer(peer, open, dir, profile, progress, result);
    } catch (err) {
      result.status = 'failed';
      result.reason = reasonOf(err);
    }
  }
  return results;
}
