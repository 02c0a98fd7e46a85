/**
 * The WAL's facade: the only module of wal/ that other layers (backup/, engine/, cli/, bench/) import.
 */
export { Wal, type WalStats, type WalStatus, type RecoveryInfo, type WalEvents } from './wal.js';
export type { WalOptions, RecoveryMode } from './options.js';
export type { WalRecord, RawSpan } from './reader.js';
export { READ_CHUNK_BYTES } from './reader.js';
export type { TornTail } from './recovery.js';
export { FlushScheduler, checkWaitOptions, type FlushSource, type FlushResult, type WaitOptions, type FlushSchedulerOptions } from './flush-scheduler.js';
