export { BackupSink, forceFlushOutcomeOf, type ForceFlushEvent, type ForceFlushOutcome, type FlushEvent, type ForceFlushOptions, type ForceFlushResult, type BackupStats, type BackupSinkEvents } from './sink.js';
export type { BackupSinkOptions, ForceFlushMode } from './options.js';
export { restoreBackup, type RestoreOptions, type RestoreResult, type RestoreProgress } from './restore.js';
export { verifyBackup, type VerifyResult, type VerifyOptions, type BackupProblem, type BackupProblemCode } from './verify.js';
export type { Compression } from './backup-file.js';
export { openBackupSource, type BackupSource } from './s3-source.js';
export type { S3TargetOptions, S3Credentials } from './s3-options.js';
export type { BackupTarget, PutTimings, TargetStats } from './target.js';
