/**
 * Every type in a public signature of the WAL can be imported from its facade (issue 9: WaitOptions,
 * LatencySummary, WalEvents, SyncMethod and RawSpan could not). This file fails to compile (npm test
 * runs tsc over the tests) if one of them is no longer exported.
 */
import { describe, expect, it } from 'vitest';
import {
  Wal,
  type LatencySummary,
  type RawReadOptions,
  type RawSpan,
  type ReadOptions,
  type RecoveryInfo,
  type SlowCommit,
  type SyncMethod,
  type WaitOptions,
  type WalEvents,
  type WalOptions,
  type WalRecord,
  type WalStats,
  type WalStatus,
} from '../wal/index.js';
import { MemoryFileSystem } from '../fs/index.js';

describe('the WAL facade exports the types of its public signatures', () => {
  it('a program can name every parameter and result type', async () => {
    const syncMethod: SyncMethod = 'fdatasync';
    const options: WalOptions = { dir: '/types', fs: new MemoryFileSystem(), syncMethod };
    const wal = await Wal.open(options);
    const wait: WaitOptions = { timeoutMs: Number.POSITIVE_INFINITY };
    const lsn: number = await wal.appendDurable(new Uint8Array(3), wait);
    const slow: Array<SlowCommit> = [];
    const onSlow: (...args: WalEvents['slowSync']) => void = (info) => slow.push(info);
    wal.on('slowSync', onSlow);
    const read: ReadOptions = { fromLsn: lsn };
    const records: WalRecord[] = [];
    for await (const r of wal.read(read)) records.push(r);
    const raw: RawReadOptions = { fromLsn: lsn, chunkBytesMax: 64 };
    const spans: RawSpan[] = [];
    for await (const span of wal.readRaw(raw)) spans.push(span);
    const stats: WalStats = wal.stats();
    const latency: LatencySummary = stats.syncLatency;
    const recovery: RecoveryInfo = wal.recovery;
    const status: WalStatus = wal.status;
    expect([records.length, spans.length, latency.count, recovery.lastLsn, status]).toEqual([1, 1, 1, 0, 'open']);
    await wal.close();
  });
});
