/** The WAL's public types, standing alone: what the facade (wal.ts) takes and gives. */
import type { LatencySummary } from '../core/latency.js';
import type { RecoveryInfo } from './open-log.js';
import type { SlowCommit } from './segment-writer.js';

/**
 * 'failed': a write or sync failed; the log refuses appends and waits (WAL_FAILED) until closed and
 * reopened. close() moves every status to 'closing', then 'closed'.
 */
export type WalStatus = 'opening' | 'open' | 'failed' | 'closing' | 'closed';

export interface WalEvents {
  /** durableLsn advanced to this value. */
  durable: [durableLsn: number];
  /** A commit took at least fsyncLatencyMsWarn: its duration in ms, its size in bytes, its file. */
  slowSync: [info: SlowCommit];
}

export interface ReadOptions {
  /** First LSN to read, in [1, lastLsn + 1]. Default firstLsn. */
  fromLsn?: number;
  /** Last LSN to read (capped at durableLsn at the call). Default durableLsn. */
  toLsn?: number;
}

export interface RawReadOptions extends ReadOptions {
  /** Longest run of records per span, in bytes (one record longer than this is a span of its own). Default 1 MiB. */
  chunkBytesMax?: number;
}

export interface WalStats {
  status: WalStatus;
  firstLsn: number;
  lastLsn: number;
  durableLsn: number;
  /** Records appended since open. */
  appends: number;
  appendedBytes: number;
  /** Commits (one writev + one fdatasync each) since open. */
  syncs: number;
  syncedBytes: number;
  /** Flushes (a flush is one batch; it is more than one commit when it crosses into a new segment). */
  batches: number;
  /** Of them, flushes started as a cohort's (pipelined: at the other cohort's completion, or once half a batch waited), beside the other's loop work (worker mode). */
  pipelinedBatches: number;
  recordsPerSync: number;
  bytesPerSync: number;
  syncLatency: LatencySummary;
  slowSyncs: number;
  segments: number;
  segmentsCreated: number;
  /** Segments truncateBefore removed from the log (unlinked, or kept as free files for reuse). */
  segmentsDeleted: number;
  /** Segments started in a recycled file since open (recycleSegments). */
  segmentsRecycled: number;
  /** Free files waiting for reuse now. */
  segmentsFree: number;
  /** Times a roll found the next segment not yet zero-filled and started it as a growing file instead. */
  preallocStalls: number;
  /**
   * Segments ended early, before they were full, because they were still zero-filling in their own file
   * (a new log's first segment, say) and the next segment's file was filled: the log rolled to it.
   */
  segmentsHandedOver: number;
  /** Bytes of durable log whose page cache was dropped behind the writer (options.dropCacheBehind; 0 without the native addon). */
  pageCacheDroppedBytes: number;
  pendingRecords: number;
  pendingBytes: number;
  waiters: number;
  holds: Record<string, number>;
  failure: string | null;
  recovery: RecoveryInfo;
}
