/** flushpoint: the public API. Each name is exported once its layer really exists. */
export { Wal, FlushpointError, ErrorCode, isFlushpointError } from './wal/index.js';
export type { WalOptions, WalStats, WalStatus, WalRecord, RecoveryInfo, TornTail, Logger, RecoveryMode } from './wal/index.js';
export { NodeFileSystem, MemoryFileSystem, FaultFileSystem } from './wal/index.js';
export type { FileSystem, FileHandle, FaultRule, FsOp, CrashOptions } from './wal/index.js';
export { BackupSink, restoreBackup, verifyBackup } from './backup/index.js';
export type {
  BackupSinkOptions,
  ForceFlushMode,
  ForceFlushOptions,
  ForceFlushResult,
  FlushEvent,
  BackupStats,
  RestoreOptions,
  RestoreResult,
  RestoreProgress,
  VerifyResult,
  BackupProblem,
} from './backup/index.js';
