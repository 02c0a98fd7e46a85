export type { FileSystem, FileHandle, FileLock, FileStat, OpenFlags, SyncMethod, CommitWait } from './file-system.js';
export { readWholeFile, fsError, isFileSystemError } from './file-system.js';
export { publishFileDurably, sweepTempFiles, makeDirDurable, isTempName, tempNameFor, tempPathPattern, TEMP_SUFFIX, type PublishTimings } from './durable-publish.js';
export { NodeFileSystem, nodeFileSystem, type NodeFileSystemOptions } from './node-file-system.js';
export { MemoryFileSystem, type CacheDrop, type CrashOptions, type CrashReport } from './memory-file-system.js';
export { FaultFileSystem, type FaultRule, type FsOp } from './fault-file-system.js';
export { pageCacheDrop, type PageCacheDropStatus } from './page-cache.js';
