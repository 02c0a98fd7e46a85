/**
 * flushpoint: the public API. Each name is exported once its layer really exists, and so is every type
 * a public signature uses (test/types-public-api.test.ts checks that none is missing).
 */
export { FlushpointError, ErrorCode, isFlushpointError } from './core/errors.js';
export type { ErrorDetails } from './core/errors.js';
export type { Logger } from './core/logger.js';
export type { LatencySummary } from './core/latency.js';
export type { Clock } from './core/clock.js';
export type { Random } from './core/random.js';
export { NodeFileSystem, MemoryFileSystem, FaultFileSystem, pageCacheDrop } from './fs/index.js';
export type { FileSystem, FileHandle, FileLock, FileStat, OpenFlags, SyncMethod, CommitWait, FaultRule, FsOp, CrashOptions, CrashReport, CacheDrop, NodeFileSystemOptions, PageCacheDropStatus } from './fs/index.js';
export { Wal } from './wal/index.js';
export type {
  WalOptions,
  WalStats,
  WalStatus,
  WalEvents,
  WalRecord,
  RawSpan,
  ReadOptions,
  RawReadOptions,
  SlowCommit,
  RecoveryInfo,
  TornTail,
  RecoveryMode,
  SyncMode,
  PipelineMode,
  WaitOptions,
} from './wal/index.js';
export { BackupSink, restoreBackup, verifyBackup, openBackupSource } from './backup/index.js';
export type {
  BackupSinkOptions,
  BackupSinkEvents,
  ForceFlushMode,
  ForceFlushOptions,
  ForceFlushResult,
  FlushEvent,
  ForceFlushEvent,
  ForceFlushOutcome,
  BackupStats,
  RestoreOptions,
  RestoreResult,
  RestoreProgress,
  VerifyResult,
  VerifyOptions,
  BackupProblem,
  BackupProblemCode,
  BackupSource,
  S3TargetOptions,
  S3Credentials,
} from './backup/index.js';
export type { Compression } from './backup/index.js';
export { Engine } from './engine/index.js';
export type { EngineOptions, EngineOwnOptions, EngineWalOptions, EngineBackupOptions, CheckpointResult, EngineStats, EngineRecovery, ValueSlabStats, EngineKey, WriteOptions } from './engine/index.js';
export { msgpackEncoding } from './engine/index.js';
export { installShutdownHandlers, DrainTimeoutError } from './engine/index.js';
export type { ShutdownOptions, Drainable, DrainOptions, DrainResult, EngineAdminOptions } from './engine/index.js';
