/**
 * Every limit of the backup layer, named with its unit, in one place. The bounds of the options a user
 * may set are here too (options.ts applies them, defaults included); the rest are fixed.
 */

// ---- option bounds and defaults ----
/** flushIntervalMs: default, and its range. */
export const FLUSH_INTERVAL_MS_DEFAULT = 1000;
export const FLUSH_INTERVAL_MS_MAX = 86_400_000;
/** segmentSizeBytesMax: largest raw body of one backup file; default, and its range. */
export const SEGMENT_SIZE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
export const SEGMENT_SIZE_BYTES_MAX_MIN = 1024;
export const SEGMENT_SIZE_BYTES_MAX_MAX = 2 ** 31;
/** flushLagBytes: bytes durable in the WAL and not yet backed up that start a flush; default, and its range.
 * On a directory a flush costs two fdatasyncs and two directory fsyncs: 256 KiB keeps a drain's flush
 * near an idle one (bench:drain) at about 4 files per MB/s of WAL. On S3 each flush is two PUTs, priced
 * per request: 8 MiB keeps that near one flush per second at 8 MB/s of WAL. */
export const FLUSH_LAG_BYTES_DEFAULT = 256 * 1024;
export const FLUSH_LAG_BYTES_DEFAULT_S3 = 8 * 1024 * 1024;
export const FLUSH_LAG_BYTES_MIN = 1024;
export const FLUSH_LAG_BYTES_MAX = 2 ** 31;
/** forceFlushTimeoutMs: default (its upper bound is the WAL's TIMEOUT_MS_MAX, what a Node timer holds). */
export const FORCE_FLUSH_TIMEOUT_MS_DEFAULT = 60_000;
/** retryDelayMsMin / retryDelayMsMax: defaults, and the upper bound of both. */
export const RETRY_DELAY_MS_MIN_DEFAULT = 100;
export const RETRY_DELAY_MS_MAX_DEFAULT = 10_000;
export const RETRY_DELAY_MS_LIMIT = 3_600_000;
/** failuresCountMax: consecutive failed flushes before the sink pauses; default, and its bound. */
export const FAILURES_COUNT_MAX_DEFAULT = 10;
export const FAILURES_COUNT_MAX_LIMIT = 1_000_000;
/** lockStaleMs: default, and its range (below 2 s a busy holder could look dead). */
export const LOCK_STALE_MS_DEFAULT = 10_000;
export const LOCK_STALE_MS_MIN = 2000;
export const LOCK_STALE_MS_MAX = 3_600_000;
/** lockWaitMs: default (fail at once), and its bound. */
export const LOCK_WAIT_MS_DEFAULT = 0;
export const LOCK_WAIT_MS_MAX = 3_600_000;

// ---- fixed ----
/** Retry of a locked backup directory while open waits (lockWaitMs), in ms. */
export const LOCK_RETRY_INTERVAL_MS = 100;
/** The host-disk lock's holder refreshes it at least this often (and at least every lockStaleMs / 2), in ms. */
export const LOCK_REFRESH_MS_MIN = 1000;
/** Smallest read chunk of a flush's WAL read, in bytes (the WAL refuses less). */
export const READ_CHUNK_BYTES_MIN = 64;
/** Samples kept per flush stage for the percentiles in stats(), a count. */
export const STAGE_SAMPLES_COUNT_MAX = 4096;
/** Durable marks closer than this are coalesced (bounds memory; the lag age is off by at most this), in ms. */
export const DURABLE_MARK_SPACING_MS = 5;
/** Durable marks kept at most; beyond it neighbours are merged in pairs (the oldest time is kept), a count. */
export const DURABLE_MARKS_COUNT_MAX = 100_000;

/** An S3 flush whose one data file is at most this large may go inline in its checkpoint (one PUT, then
 * the file stored under its name in the background; s3-target.ts), in bytes. Larger files take the two
 * PUTs (data, then checkpoint): inlining sends the bytes twice, and a large file's PUT dwarfs the second one. */
export const INLINE_FILE_BYTES_MAX = 8 * 1024 * 1024;

/** A restore makes the new WAL durable at least every this many bytes of payload (bounded commits), in bytes. */
export const RESTORE_SYNC_EVERY_BYTES = 8 * 1024 * 1024;

/** deflate expands at most 1032:1 (a 258-byte match per 2 bits): a header claiming more raw bytes than
 * this times the stored bytes (plus a little framing) is corrupt, and inflation is capped there. */
export const DEFLATE_EXPANSION_MAX = 1032;
