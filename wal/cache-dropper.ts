/**
 * CacheDropper: drops the page cache of the log's durable bytes once the writer is well past them
 * (posix_fadvise DONTNEED through FileHandle.dropCache, as PostgreSQL does with a WAL segment it has
 * finished), so a log that grows reuses the same memory for its next pages instead of taking new memory
 * for every page it writes.
 *
 * Why: on this project's machines a new page of page cache costs far more than one reused (first touch
 * of memory the hypervisor took back: docs/decisions.md, "The page cache of a growing log"): a file
 * grown by 256 KiB writes + fdatasync ran at ~50k records/s of 4 KiB with its pages kept and ~230k/s
 * with them dropped behind the writer. Elsewhere it keeps a log from pushing useful data out of cache.
 *
 *   segment  | dropped ...            | kept cached (the lag)             | being written
 *            0                   droppedTo                          durable end
 *
 * - Only durable bytes are dropped: the range ends CACHE_DROP_LAG_BYTES (or a quarter segment) below the end the last commit
 *   made durable, so a reader tailing the log (the backup sink) still finds what it is about to read in
 *   memory, and the partial page the next commit writes into is never dropped (a commit into a page not
 *   cached would read it from disk first).
 * - One drop in flight at a time, CACHE_DROP_CHUNK_BYTES (or an eighth of a segment) or more each, on libuv's pool: never on the
 *   commit path or the event loop.
 * - It opens the segment by name for each drop (its own descriptor: nothing it does can touch the WAL's
 *   descriptor or its error state), and ignores every failure: a drop is a hint, and a segment may be
 *   renamed or removed by retention meanwhile.
 * - When a segment is finished, the rest of it is dropped once the next one has the lag
 *   durable (the lag spans the roll).
 * - A recycled segment is not dropped: its pages are the ones its next life overwrites, and a commit
 *   into an uncached page of an old file reads that page from disk first.
 */
import type { FileSystem } from '../fs/file-system.js';

/** Durable bytes kept cached behind the end of the log (a reader tailing the log reads them from memory), at most a quarter of a segment. */
export const CACHE_DROP_LAG_BYTES = 16 * 1024 * 1024;
/** The least one drop covers (one call to the pool every this many bytes written), at most an eighth of a segment. */
export const CACHE_DROP_CHUNK_BYTES = 4 * 1024 * 1024;
/** Finished segments waiting for their drop, at most (an older one is forgotten: a hint, not a duty). */
const FINISHED_SEGMENTS_COUNT_MAX = 16;
/** Drops start and end on page boundaries. */
const PAGE_BYTES = 4096;

interface Tracked {
  path: string;
  /** Bytes from 0 already dropped (or asked to be); infinite for a recycled segment (never dropped). */
  droppedTo: number;
  /** The durable end its last commit reported. */
  durableEnd: number;
}

export class CacheDropper {
  readonly #fs: FileSystem;
  readonly #enabled: boolean;
  readonly #lagBytes: number;
  readonly #chunkBytes: number;
  #current: Tracked | null = null;
  /** Finished segments (oldest first) whose rest is still to be dropped. */
  readonly #finished: Tracked[] = [];
  #inFlight: Promise<void> | null = null;
  #droppedBytes = 0;

  constructor(fs: FileSystem, enabled: boolean, segmentSizeBytes: number) {
    this.#fs = fs;
    this.#enabled = enabled && fs.dropsCache === true;
    const pages = (bytes: number): number => Math.max(PAGE_BYTES, Math.floor(bytes / PAGE_BYTES) * PAGE_BYTES);
    this.#lagBytes = pages(Math.min(CACHE_DROP_LAG_BYTES, segmentSizeBytes / 4));
    this.#chunkBytes = pages(Math.min(CACHE_DROP_CHUNK_BYTES, segmentSizeBytes / 8));
  }

  /** Bytes it has asked the OS to drop since open. */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /**
   * A commit made the segment at `path` durable up to `durableEnd` (`recycled`: it was written over a
   * recycled file). Starts a drop when one is due and none is in flight; never waits.
   */
  committed(path: string, durableEnd: number, recycled: boolean): void {
    if (!this.#enabled) return;
    let cur = this.#current;
    if (cur?.path !== path) {
      // A new segment: the one before it is dropped to its end once this one is the lag in.
      if (cur !== null && cur.durableEnd > cur.droppedTo) this.#finished.push(cur);
      // Rolls faster than drops (a tiny segment size): forget the oldest (its pages just stay cached).
      if (this.#finished.length > FINISHED_SEGMENTS_COUNT_MAX) this.#finished.shift();
      cur = { path, droppedTo: recycled ? Number.POSITIVE_INFINITY : 0, durableEnd };
      this.#current = cur;
    }
    cur.durableEnd = durableEnd;
    if (this.#inFlight !== null) return;
    const finished = this.#finished[0];
    if (finished !== undefined && (durableEnd >= this.#lagBytes || this.#finished.length > 1)) {
      this.#finished.shift();
      this.#drop(finished.path, finished.droppedTo, finished.durableEnd - finished.droppedTo, true);
      return;
    }
    const end = Math.floor((durableEnd - this.#lagBytes) / PAGE_BYTES) * PAGE_BYTES;
    if (end - cur.droppedTo < this.#chunkBytes) return;
    const from = cur.droppedTo;
    cur.droppedTo = end;
    this.#drop(cur.path, from, end - from);
  }

  /** Waits for the drop in flight (before the log closes, so no call outlives it). */
  async settle(): Promise<void> {
    await this.#inFlight;
  }

  /** Drops [from, from + lengthBytes) of the file at `path`, or from `from` to its end when `toEnd`. */
  #drop(path: string, from: number, lengthBytes: number, toEnd = false): void {
    const run = async (): Promise<void> => {
      const handle = await this.#fs.open(path, 'r');
      try {
        await handle.dropCache?.(from, toEnd ? 0 : lengthBytes);
        this.#droppedBytes += lengthBytes;
      } finally {
        await handle.close();
      }
    };
    this.#inFlight = run().then(
      () => {
        this.#inFlight = null;
      },
      () => {
        // A hint: the segment was removed or renamed meanwhile, or the call failed; nothing to undo.
        this.#inFlight = null;
      },
    );
  }
}
