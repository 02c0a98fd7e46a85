/** flushpoint: the public API. Each name is exported once its layer really exists. */
export { FlushpointError, ErrorCode, isFlushpointError } from './core/errors.js';
export type { Logger } from './core/logger.js';
export { NodeFileSystem, MemoryFileSystem, FaultFileSystem } from './fs/index.js';
export type { FileSystem, FileHandle, FaultRule, FsOp, CrashOptions } from './fs/index.js';
export { Wal } from './wal/index.js';
export type { WalOptions, WalStats, WalStatus, WalRecord, RecoveryInfo, TornTail, RecoveryMode } from './wal/index.js';
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
export { Engine } from './engine/index.js';
export type { EngineOptions, EngineOwnOptions, EngineWalOptions, EngineBackupOptions, CheckpointResult, EngineStats, EngineRecovery } from './engine/index.js';
