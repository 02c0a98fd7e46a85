/**
 * Retention: holds, and truncation of whole segments below them.
 *
 * A hold names the lowest LSN a reader (a backup sink) still needs; nothing at or above any hold is
 * deleted. truncateBefore(lsn) deletes whole segments whose records are all below min(lsn, durable LSN
 * + 1, every hold), oldest first, never the last segment, one truncation at a time.
 *
 * Ordering rules, each against a defect seen:
 * - The holds are read again before each segment is deleted: a hold taken while a truncation runs is
 *   honoured from the next segment on.
 * - A segment leaves the list (firstLsn moves) before its unlink starts, so a hold or a read placed
 *   meanwhile sees where the log now begins.
 * - The directory is fsynced after each unlink, before the next: a power loss keeps any subset of the
 *   unsynced directory operations, and only one at a time keeps the log on disk a contiguous suffix.
 * - Recycling (segment-recycler.ts): a segment of at most segmentSizeBytes, while the recycler has room,
 *   is brought to segmentSizeBytes (a fresh one that large commits grew, not the fill, ends at its last
 *   record: its file is extended with ftruncate, the rest a hole) and renamed to a free name instead of
 *   unlinked, under the same rules (it leaves the list first; the directory is fsynced before the
 *   next), and is offered for reuse only after that fsync.
 */
import { ErrorCode, FlushpointError, assert } from '../core/errors.js';
import { retryOnDescriptorShortage, type FileSystem } from '../fs/file-system.js';
import { checkLsnArgument } from '../core/lsn.js';
import { wrapIoError } from './io-error.js';
import type { Segment } from './segment-writer.js';
import type { SegmentRecycler } from './segment-recycler.js';

export class Retention {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #segments: Segment[];
  readonly #holds = new Map<string, number>();
  #truncating: Promise<void> = Promise.resolve();
  /** Set once a segment's free failed: later truncations are refused (see #truncate). */
  #stranded: FlushpointError | null = null;
  readonly #recycler: SegmentRecycler;
  #segmentsDeleted = 0;

  /** `segments` is the log's list (oldest first), shared with the writer, which appends to it. */
  constructor(fs: FileSystem, dir: string, segments: Segment[], recycler: SegmentRecycler) {
    this.#fs = fs;
    this.#dir = dir;
    this.#segments = segments;
    this.#recycler = recycler;
  }

  get segmentsDeleted(): number {
    return this.#segmentsDeleted;
  }

  get holds(): Record<string, number> {
    return Object.fromEntries(this.#holds);
  }

  hold(name: string, lsn: number): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('hold name must be a non-empty string');
    checkLsnArgument(lsn, 'lsn');
    // Below the first segment the records are gone, or going: a truncation that runs has taken its
    // segment off the list before freeing it. Accepting the hold would tell the caller they are kept.
    const first = this.#segments[0]?.firstLsn;
    if (first !== undefined && lsn < first) {
      throw new FlushpointError(ErrorCode.WAL_TRUNCATED, `cannot hold LSN ${lsn} of ${this.#dir} under '${name}': the log starts at LSN ${first} (the segments below it were deleted)`, { lsn });
    }
    this.#holds.set(name, lsn);
  }

  release(name: string): void {
    this.#holds.delete(name);
  }

  /** Runs after every truncation already asked for; resolves with the number of segments deleted. */
  truncate(lsn: number, durableLsn: () => number): Promise<number> {
    const run = this.#truncating.then(() => this.#truncate(lsn, durableLsn));
    this.#truncating = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Resolves when no truncation runs. */
  async idle(): Promise<void> {
    await this.#truncating;
  }

  /** The lowest LSN that must stay: min(lsn, durableLsn + 1, every hold), read now. */
  #retainFrom(lsn: number, durableLsn: number): number {
    let limit = Math.min(lsn, durableLsn + 1);
    for (const held of this.#holds.values()) limit = Math.min(limit, held);
    return limit;
  }

  async #truncate(lsn: number, durableLsn: () => number): Promise<number> {
    if (this.#stranded) throw this.#stranded;
    let deleted = 0;
    while (this.#segments.length > 1 && (this.#segments[1] as Segment).firstLsn <= this.#retainFrom(lsn, durableLsn())) {
      const seg = this.#segments.shift() as Segment;
      assert(seg.lastLsn < this.#retainFrom(lsn, durableLsn()), `segment ${seg.name} holds no retained LSN`);
      let freed: string | null;
      try {
        freed = await this.#free(seg);
        try {
          await retryOnDescriptorShortage(() => this.#fs.syncDir(this.#dir));
        } catch (err) {
          throw wrapIoError(err, `directory sync of ${this.#dir} after ${freed === null ? 'unlinking' : 'recycling'} ${seg.name}`);
        }
      } catch (err) {
        // The segment may still be on disk under its name (or its removal not durable): freeing a later
        // one would leave a gap in the log on disk. No truncation from now until the log is reopened
        // (which finds the segment again, or not, and either way a contiguous log).
        this.#stranded = new FlushpointError(
          ErrorCode.WAL_FAILED,
          `truncation of ${this.#dir} is refused until the WAL is reopened: freeing ${seg.name} failed (${(err as Error).message.split('\n')[0]}), and freeing a later segment could leave a gap on disk`,
          { cause: err },
        );
        throw err;
      }
      // Offered for reuse only now: an overwrite must never precede the durable rename (segment-recycler.ts).
      if (freed !== null) this.#recycler.add(freed);
      deleted++;
      this.#segmentsDeleted++;
    }
    return deleted;
  }

  /** Renames the segment to a free name if the recycler keeps it (returns that name), else unlinks it (null). */
  async #free(seg: Segment): Promise<string | null> {
    const path = `${this.#dir}/${seg.name}`;
    if (seg.recycledSizeBytes > 0 ? this.#recycler.wants(seg.recycledSizeBytes) : await this.#wantedFresh(path)) {
      const name = this.#recycler.nextName();
      try {
        await this.#fs.rename(path, `${this.#dir}/${name}`);
      } catch (err) {
        throw wrapIoError(err, `rename of ${seg.name} to ${name}`);
      }
      return name;
    }
    try {
      await this.#fs.unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw wrapIoError(err, `unlink of ${seg.name}`);
    }
    return null;
  }

  /**
   * A fresh segment is kept if the recycler has room, brought to the full segment size first when its
   * file is shorter by at most a quarter: the fill stops for large commits (segment-preparer.ts), so
   * such a segment ends at its last record (a hole of less than one commit remains). The extension
   * (ftruncate: a hole, no data written) happens while the file still has its segment name: a crash
   * then leaves zeros after the segment's records, as a fill step does.
   * If it fails, the segment is unlinked as before.
   */
  async #wantedFresh(path: string): Promise<boolean> {
    if (!this.#recycler.hasRoom) return false;
    let sizeBytes: number;
    try {
      sizeBytes = (await this.#fs.stat(path)).sizeBytes;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw wrapIoError(err, `stat of ${path}`);
    }
    const fullBytes = this.#recycler.segmentSizeBytes;
    // A large hole would make its next life a growing file (each commit allocating blocks): unlink it.
    if (sizeBytes > fullBytes || fullBytes - sizeBytes > fullBytes / 4) return false;
    if (sizeBytes < fullBytes) {
      try {
        const handle = await this.#fs.open(path, 'r+');
        try {
          await handle.truncate(fullBytes);
        } finally {
          await handle.close();
        }
      } catch {
        return false; // unlinked instead: a free file must be full size (segment-recycler.ts)
      }
    }
    return this.#recycler.wants(fullBytes);
  }
}
