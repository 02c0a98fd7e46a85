/**
 * The WAL's facade: the only module of wal/ that other layers (backup/, engine/, cli/, bench/) import.
 * Every type used in a public signature of the WAL is exported here.
 */
export { Wal } from './wal.js';
export type { WalStats, WalStatus, WalEvents, ReadOptions, RawReadOptions } from './types.js';
export type { RecoveryInfo } from './open-log.js';
export type { SlowCommit } from './segment-writer.js';
export type { WalOptions, RecoveryMode, SyncMode, PipelineMode, Logger } from './options.js';
export { walDefaults } from './options.js';
export type { WalRecord, RawSpan } from './reader.js';
export { recoverSegments, type TornTail, type RecoveryResult, type RecoveredSegment } from './recovery.js';
export { SEGMENT_NAME_RE } from './format.js';
export type { LatencySummary } from '../core/latency.js';
export type { SyncMethod, FileSystem } from '../fs/file-system.js';
export {
  READ_CHUNK_BYTES,
  PAYLOAD_BYTES_MAX,
  RECORD_BYTES_MAX,
  RECYCLE_SEGMENTS_DEFAULT,
  RECYCLE_SEGMENTS_MAX,
  SEGMENT_SIZE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_MIN,
  SEGMENT_SIZE_BYTES_MAX,
  TIMEOUT_MS_MAX,
  WAITERS_COUNT_MAX_DEFAULT,
  WAITERS_COUNT_MAX_MIN,
  WAITERS_COUNT_MAX_MAX,
} from './limits.js';
export { TORN_SUFFIX } from './repair.js';
export { FlushScheduler, checkWaitOptions, type FlushSource, type FlushResult, type WaitOptions, type FlushSchedulerOptions } from './flush-scheduler.js';
