export { Wal, type WalStats, type WalStatus, type RecoveryInfo, type WalEvents } from './wal.js';
export type { WalOptions, Logger, RecoveryMode } from './options.js';
export type { WalRecord, RawSpan } from './reader.js';
export type { TornTail } from './recovery.js';
export { FlushpointError, ErrorCode, isFlushpointError } from './errors.js';
export { FlushScheduler, type FlushSource, type FlushResult, type WaitOptions, type FlushSchedulerOptions } from './flush-scheduler.js';
export * from './fs/index.js';
