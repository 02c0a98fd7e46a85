/**
 * Section 4, the peers: each peer store under the same closed-loop load as the WAL (same record sizes,
 * same writer counts), one fresh directory per measurement. A peer that cannot be loaded is "skipped",
 * one that fails while running is "failed"; both keep their reason, and the run goes on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runClosedLoop, type ClosedLoopResult } from './closed-loop.js';
import { betterSqlite3BatchedPeer, betterSqlite3Peer } from './peers/better-sqlite3.js';
import { classicLevelPeer } from './peers/classic-level.js';
import { lmdbPeer } from './peers/lmdb.js';
import { installedVersion, reasonOf, type Peer, type PeerOpener } from './peers/peer.js';
import type { BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';

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

/** A peer after its load was tried: `open` is set only when the package loaded. */
export interface LoadedPeer {
  peer: Peer;
  open: PeerOpener | undefined;
  result: PeerResult;
}

/**
 * Why a peer could not be loaded. The peers are not flushpoint's dependencies: in an installed copy they
 * are absent unless the user adds them, so "not installed" says what to install.
 */
export function skipReason(peer: Peer, err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    return `not installed; to compare with it, run 'npm install ${peer.packageName}' beside flushpoint`;
  }
  return reasonOf(err);
}

export async function loadPeers(peerList: readonly Peer[] = peers): Promise<LoadedPeer[]> {
  const loaded: LoadedPeer[] = [];
  for (const peer of peerList) {
    const result: PeerResult = {
      id: peer.id,
      packageName: peer.packageName,
      version: installedVersion(peer.packageName),
      durableSetting: peer.durableSetting,
      status: 'ok',
      measurements: [],
    };
    let open: PeerOpener | undefined;
    try {
      open = await peer.load();
    } catch (err) {
      result.status = 'skipped';
      result.reason = skipReason(peer, err);
    }
    loaded.push({ peer, open, result });
  }
  return loaded;
}

/**
 * Measures one peer at one record size and writer count, adding to its result. A failure marks the
 * peer failed (it is not run again) instead of ending the benchmark.
 */
export async function measurePeerRow(
  loaded: LoadedPeer,
  dir: string,
  payload: Buffer,
  writersCount: number,
  profile: BenchProfile,
  progress: Progress,
): Promise<void> {
  const { peer, open, result } = loaded;
  if (open === undefined || result.status !== 'ok') return;
  const storeDir = path.join(dir, `peer-${peer.id}-${payload.length}-${writersCount}`);
  try {
    fs.mkdirSync(storeDir, { recursive: true });
    const store = await open(storeDir, payload);
    try {
      const measured = await runClosedLoop({
        writersCount,
        warmupMs: profile.warmupMs,
        windowMs: profile.windowMs,
        write: () => store.write(),
        onTick: (fraction) => progress.advance(fraction),
      });
      result.measurements.push({ recordSizeBytes: payload.length, ...measured });
    } finally {
      await store.close();
    }
  } catch (err) {
    result.status = 'failed';
    result.reason = reasonOf(err);
  } finally {
    fs.rmSync(storeDir, { recursive: true, force: true });
  }
}
