/** The engine's limits, each with its unit. Reaching one is a typed error or back-pressure, never growth. */

/** Entries per block of a checkpoint file: each block is one CRC-checked, msgpack-encoded run. */
export const CHECKPOINT_BLOCK_ENTRIES_MAX = 4096;
/** The writer ends a checkpoint block once its keys and values reach this many bytes (one block is built per event-loop turn). */
export const CHECKPOINT_BLOCK_BYTES_TARGET = 256 * 1024;
/** Bytes of checkpoint data buffered before a write to the temp file. */
export const CHECKPOINT_WRITE_CHUNK_BYTES = 4 * 1024 * 1024;
/** A checkpoint being written is fdatasynced (and its synced pages dropped from the cache) every this many bytes. */
export const CHECKPOINT_SYNC_EVERY_BYTES = 32 * 1024 * 1024;
/** Checkpoint files kept: the newest, and the one before it (the fallback if the newest is damaged). */
export const CHECKPOINTS_KEPT_COUNT = 2;
/** Most bytes of entries in one base chunk record (engine/base.ts), or half the WAL's payload limit if less. */
export const BASE_CHUNK_BYTES = 1024 * 1024;
/** Base chunks appended before waiting for them to be durable (bounds what a base stages), a count. */
export const BASE_CHUNKS_IN_FLIGHT = 16;
/** After an automatic checkpoint failed, the next one starts no sooner than this, in ms. */
export const AUTO_CHECKPOINT_RETRY_MS = 1000;
/** Default WAL growth between automatic checkpoints, in bytes. */
export const CHECKPOINT_EVERY_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Smallest allowed checkpointEveryBytes, in bytes. */
export const CHECKPOINT_EVERY_BYTES_MIN = 4096;
/**
 * An automatic checkpoint also waits until the WAL appended since the last one reaches this percent of
 * the state's size, estimated from the newest checkpoint (checkpointStatePercent's default): each checkpoint rewrites the whole
 * state, so without it a state of 1 GiB would be rewritten every 64 MiB of writes (16x write
 * amplification); with it, the checkpoints write about as many bytes as the log (Redis's
 * auto-aof-rewrite-percentage 100 makes the same trade).
 */
export const CHECKPOINT_STATE_PERCENT_DEFAULT = 100;
export const CHECKPOINT_STATE_PERCENT_MAX = 10_000;
/** Entries applied between yields to the event loop when a checkpoint is read or the WAL replayed at open. (A clear()
 * record is applied at once: it becomes visible whole, so a ranged clear of many keys holds the loop meanwhile.) */
export const APPLY_YIELD_ENTRIES = 8192;
/** Size of the buffer put/del records are first encoded into (record.ts RecordEncoder), in bytes. */
export const RECORD_SCRATCH_BYTES_INITIAL = 16 * 1024;
/** Largest reused record buffer, in bytes: a larger record gets a buffer of its own. */
export const RECORD_SCRATCH_BYTES_MAX = 1024 * 1024;

/** Size of the first buffer put records are held in until their key and value are read back (record.ts RecordArena), in bytes. */
export const RECORD_ARENA_BYTES_INITIAL = 64 * 1024;
/**
 * Largest such buffer, in bytes: a buffer that fills up is followed by one twice its size, up to this
 * (one turn of 64 writers of 4 KiB values fits). A record over a quarter of it is encoded the plain way.
 */
export const RECORD_ARENA_BYTES_MAX = 1024 * 1024;

/**
 * Most pending writes the engine applies ahead to a clone of the index while their commit runs (engine.ts
 * #prepareNext), a count. Each write that lands in another leaf of the B-tree copies that leaf in the
 * clone: with many writers and scattered keys that cost more CPU per put than it saved (docs/decisions.md
 * 'Engine put path, third round'), so a larger group is applied when it becomes visible, as before.
 */
export const NEXT_STATE_WRITES_MAX = 16;

/**
 * Most pending writes applied ahead (as NEXT_STATE_WRITES_MAX) when every one of them is a put of a key
 * above the index's largest (an append: counters, timestamps), a count. Those all land at the right edge of
 * the B-tree, so the clone copies one path whatever their number, and their inserts leave the serial part
 * of the commit cycle (docs/decisions.md 'Engine put path, fourth round').
 */
export const NEXT_STATE_APPEND_WRITES_MAX = 256;

/** Samples a per-commit metrics histogram holds before it folds them in without waiting for a scrape (metrics.ts). */
export const SAMPLES_PENDING_COUNT_MAX = 4096;
/** Longest key, in bytes, the record encoder copies byte by byte in JavaScript (longer: Buffer.write). */
export const KEY_BYTES_COPIED_IN_JS_MAX = 32;

/** Size of a full value slab (value-slabs.ts), in bytes. */
export const VALUE_SLAB_BYTES = 1024 * 1024;
/** Size of an engine's first value slab, in bytes; each next one is twice the last, up to VALUE_SLAB_BYTES. */
export const VALUE_SLAB_BYTES_INITIAL = 64 * 1024;
/**
 * Values from this size (bytes) to VALUE_SLAB_VALUE_BYTES_MAX go into slabs. Smaller ones share Node's
 * 8 KiB Buffer pool already (a fault per 8 KiB, a small share of a put); larger ones get their own memory.
 */
export const VALUE_SLAB_VALUE_BYTES_MIN = 1024;
/** Largest value (bytes) copied into a slab: a sixteenth of one, so a slab is never mostly one value. */
export const VALUE_SLAB_VALUE_BYTES_MAX = 64 * 1024;
/** Full-size slabs kept touched (or being touched) ahead of the one being filled, a count. */
export const VALUE_SLABS_AHEAD = 2;
/**
 * Values replaced or removed (a count) since the last scan of the value slabs after which the engine
 * scans them without waiting for a checkpoint, once also more than the keys it holds: deletes write
 * little to the WAL, so a state emptied by them waited for an automatic checkpoint that never came, its
 * few live values holding whole slabs (engine.ts #maybeCompactSlabs).
 */
export const SLAB_SCAN_DROPPED_MIN = 1024;
/**
 * Bytes of shared value slabs that stopped being filled since the last scan, at the least, after which the
 * engine scans them (engine/value-slabs.ts scanDue): V8 learns of a dropped shared slab only from a scan,
 * and with checkpoints rare or off and a state of many small keys, drops alone came too late (a review
 * measured 564 MiB of dead slabs). Past this, a scan is due once the slabs closed since the last one
 * reach a quarter of what that scan kept (SLAB_SCAN_KEPT_DIVISOR): dead slabs V8 does not know of stay
 * under a quarter of the live ones, and a growing state is scanned each time it grew by a quarter.
 */
export const SLAB_SCAN_BYTES_MIN = 32 * 1024 * 1024;
export const SLAB_SCAN_KEPT_DIVISOR = 4;
/**
 * And at least this many bytes per key the index holds: a scan visits every key, so a large state of values
 * outside the slabs' range was scanned every 32 MiB of slab values written (a review: ~2.4 s of scans per
 * GB at 3 million keys).
 */
export const SLAB_SCAN_BYTES_PER_KEY = 64;

/**
 * The engine's backup sink waits for a locked backup directory (lockWaitMs, where not given) for its
 * lockStaleMs and this margin, in ms: long enough for a lock left by a killed predecessor to turn stale
 * and be taken over (engine/options.ts backupWithLockWait); the sink retries every 100 ms meanwhile.
 */
export const ENGINE_BACKUP_LOCK_WAIT_MARGIN_MS = 2000;
