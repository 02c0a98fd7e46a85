/**
 * Every limit of the WAL in one place, each named with its unit. Reaching a limit pushes back (a
 * RangeError, RECORD_TOO_LARGE) rather than growing without bound.
 *
 * Limits owned by other modules of wal/ that are not the WAL's to set (the recovery scan's read size
 * in recovery.ts, the segment index spacing in segment-index.ts, the zero-fill step in
 * segment-preparer.ts) stay beside their mechanism.
 */

import { RECORD_HEADER_BYTES } from '../record/format.js';

// ---- segments ----

/** Default size of a segment file, in bytes. */
export const SEGMENT_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Smallest segment, in bytes. */
export const SEGMENT_SIZE_BYTES_MIN = 1024;
/** Largest segment, in bytes: segment sizes are stored as u32 in the header (and are multiples of 8). */
export const SEGMENT_SIZE_BYTES_MAX = 2 ** 32 - 8;

// ---- records ----

/**
 * Largest record on disk (header + payload + padding), in bytes. One record is one buffer of one
 * writev, and a segment's first record is read in one call together with the 32-byte segment header;
 * node:fs moves at most 2^31 - 1 bytes in one call, and the framing's size arithmetic is 32-bit. So a
 * record stays below 2^31 - 32 bytes whatever the segment size: 2^31 - 64 (a multiple of 8).
 */
export const RECORD_BYTES_MAX = 2 ** 31 - 64;
/** Largest payload of one record, in bytes (RECORD_BYTES_MAX less the record header): 2^31 - 88. */
export const PAYLOAD_BYTES_MAX = RECORD_BYTES_MAX - RECORD_HEADER_BYTES;

// ---- group commit and waiters ----

/** Default and largest extra time a batch gathers before its flush starts, in ms. */
export const COMMIT_DELAY_MS_DEFAULT = 0;
export const COMMIT_DELAY_MS_MAX = 10_000;
/** Default number of waiters the flush scheduler holds at once, over all its wait paths. */
export const WAITERS_COUNT_MAX_DEFAULT = 1_000_000;
/** Bounds of the waitersCountMax option. */
export const WAITERS_COUNT_MAX_MIN = 1;
export const WAITERS_COUNT_MAX_MAX = 100_000_000;
/**
 * Largest finite wait timeout, in ms (2^31 - 1, about 24.8 days): Node's timers cannot hold longer and
 * would fire after 1 ms instead. Longer finite values are refused with a RangeError; Infinity means no
 * timeout.
 */
export const TIMEOUT_MS_MAX = 2 ** 31 - 1;

// ---- logging of slow syncs ----

/** Default and bounds of fsyncLatencyMsWarn (a commit slower than this is logged), in ms. */
export const FSYNC_LATENCY_MS_WARN_DEFAULT = 1000;
export const FSYNC_LATENCY_MS_WARN_MIN = 1;
export const FSYNC_LATENCY_MS_WARN_MAX = 3_600_000;

// ---- memory ----

/** Default and bounds of the shared-memory chunks records are encoded into, in bytes. */
export const STAGING_CHUNK_BYTES_DEFAULT = 1024 * 1024;
export const STAGING_CHUNK_BYTES_MIN = 4096;
export const STAGING_CHUNK_BYTES_MAX = 256 * 1024 * 1024;
/** Staging chunks kept for reuse at most (the rest are left to the garbage collector), a count. */
export const STAGING_CHUNKS_POOLED_COUNT_MAX = 8;
/**
 * Chunks made for a record larger than a chunk (rounded up to a power of two) kept for reuse, a count:
 * the current one plus one in flight. Every new chunk is another shared buffer the commit worker learns,
 * and the worker's heap holds what it learned until its own collection, which hardly ever runs: one new
 * chunk per oversize record grew the process by every such record's size (wal/staging.ts).
 */
export const STAGING_LARGE_CHUNKS_POOLED_COUNT_MAX = 2;
/**
 * Bytes of staging chunks kept from closed logs for the next logs this process opens (wal/staging.ts): the
 * commit worker, shared by every log of the process, keeps each shared buffer it learned until its own
 * collection, so a new chunk per log opened grew the process by a chunk per open/close cycle.
 */
export const STAGING_CLOSED_CHUNKS_BYTES_MAX = 64 * 1024 * 1024;

// ---- reads ----

/** Size of one read of a segment by read()/readBatches(), and default run size of readRaw(), in bytes. */
export const READ_CHUNK_BYTES = 1024 * 1024;
/** Smallest chunkBytesMax readRaw() accepts, in bytes. */
export const READ_CHUNK_BYTES_MIN = 64;

/**
 * Largest record (framed) whose CRC the addon's walk checks (fs/native/record-crc.c), in bytes, where the
 * addon computes by table (recordCrcMethod 'table': no PCLMULQDQ, or not x86-64): its CRC (slicing by 16,
 * in C) runs at ~3.5 GB/s whatever the size, 3x JavaScript's on 152 B records; zlib.crc32 (what
 * decodeRecord uses from 448 B) overtakes it around 2-4 KiB (docs/decisions.md, "Recovery's CRCs in the
 * addon"). Larger records are checked one by one in JavaScript. The same bound for appends: staging
 * leaves the CRCs of records up to this size to the addon's recordCrcFill, one call per run of records
 * (wal/staging.ts), and computes larger records' CRCs at append. Where the addon multiplies carry-less,
 * it is faster than zlib.crc32 at every size and takes every record (wal/crc-walk.ts crcAddonRecordBytesMax).
 */
export const CRC_WALK_RECORD_BYTES_MAX = 2048;
/**
 * Staged bytes after which the WAL's staging stores the CRCs of the records appended since it last did
 * (wal/staging.ts), in bytes: one addon call per step while records come, so a freeze (the way from one
 * commit to the next) stores only the last step's. 32 KiB: ~200 records of 128 B per call (the call's
 * own cost, ~0.1 us, spread thin), 8 of 4 KiB (~2.4 us of CRC by carry-less multiplication).
 */
export const CRC_FILL_STEP_BYTES = 32 * 1024;
/**
 * Most bytes one walk covers in a read (wal/reader.ts), a count: a read may want one record of a 1 MiB
 * chunk (wal.read of an LSN), and a walk checks every record up to its end.
 */
export const CRC_WALK_READ_BYTES_MAX = 64 * 1024;

/** Free segment files kept for reuse (recycleSegments), a count: the default, and the most allowed. */
export const RECYCLE_SEGMENTS_DEFAULT = 2;
export const RECYCLE_SEGMENTS_MAX = 64;
