/**
 * SegmentRecycler: segment files freed by truncation, kept for reuse instead of unlinked (RocksDB's
 * recycle_log_file_num, Pebble's log recycler). A commit into a recycled file overwrites blocks that
 * are already allocated (but for a hole of less than one commit at the end of a segment that large
 * commits grew), so nothing is zero-filled and no fdatasync writes size metadata.
 *
 *   retention.ts         truncateBefore frees a segment of segmentSizeBytes (a shorter fresh one, by at
 *                        most a quarter, is first extended to it with ftruncate): it leaves the
 *                        segment list, is renamed to `recycle-<n>.free`, the directory is fsynced, and
 *                        only then is the name offered here (add)
 *   segment-preparer.ts  takes a free file (take) as the next segment: no zero-fill; its first commit
 *                        writes a version-3 header (new salt, new first LSN) and the records over the
 *                        old bytes, then it is renamed to its segment name and the directory fsynced
 *
 * Ordering rule: a free name is offered only after the rename that made it is durable. Were the file
 * overwritten first, a power loss that lost the rename would bring back the old segment's name over
 * new bytes (a segment whose header disagrees with its name). With the rule, a lost rename brings back
 * the old segment intact, below the log's start, as an unlink lost to a power loss does.
 *
 * At most countMax free files exist at once (those offered plus the one the preparer holds); beyond
 * that a freed segment is unlinked. Free files found at open are reused when they have the segment
 * size and there is room, else removed.
 */
import { assert } from '../core/errors.js';
import { retryOnDescriptorShortage, type FileSystem } from '../fs/file-system.js';

/** A free file's name: `recycle-<n>.free`, n a decimal counter (not a segment name, not a temp name). */
export const FREE_NAME_RE = /^recycle-(\d+)\.free$/;

export function freeName(n: number): string {
  return `recycle-${n}.free`;
}

export class SegmentRecycler {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #segmentSizeBytes: number;
  readonly #countMax: number;
  /** Free files whose rename is durable, oldest first. */
  readonly #free: string[] = [];
  /** Free files taken by the preparer, not yet renamed to a segment name. */
  #held = 0;
  #counter = 0;
  #recycled = 0;

  constructor(fs: FileSystem, dir: string, segmentSizeBytes: number, countMax: number) {
    assert(Number.isSafeInteger(countMax) && countMax >= 0, `recycleSegments ${countMax}`);
    this.#fs = fs;
    this.#dir = dir;
    this.#segmentSizeBytes = segmentSizeBytes;
    this.#countMax = countMax;
  }

  /** The size a free file has (a segment's). */
  get segmentSizeBytes(): number {
    return this.#segmentSizeBytes;
  }

  /** Free files waiting to be reused (not counting one the preparer holds). */
  get freeCount(): number {
    return this.#free.length;
  }

  /** Segments started in a recycled file since open. */
  get recycled(): number {
    return this.#recycled;
  }

  /** Fewer than countMax free files exist. */
  get hasRoom(): boolean {
    return this.#free.length + this.#held < this.#countMax;
  }

  /** A segment of `sizeBytes` being freed is kept (renamed to nextName()) rather than unlinked. */
  wants(sizeBytes: number): boolean {
    return sizeBytes === this.#segmentSizeBytes && this.hasRoom;
  }

  /** A name no file in the directory has. */
  nextName(): string {
    return freeName(++this.#counter);
  }

  /** `name` (a free file) has been renamed durably: it may be reused. */
  add(name: string): void {
    assert(FREE_NAME_RE.test(name), `free file name ${name}`);
    this.#free.push(name);
  }

  /** A free file to reuse, or null. The caller holds it until done(). */
  take(): string | null {
    const name = this.#free.shift();
    if (name === undefined) return null;
    this.#held++;
    return name;
  }

  /** A taken file became a segment (`reused`), or was left under its free name (closing). */
  done(reused: boolean): void {
    assert(this.#held > 0, 'a free file was taken');
    this.#held--;
    if (reused) this.#recycled++;
  }

  /**
   * At open: keeps the free files among `names` that have the segment size, up to countMax, and
   * removes the rest (then fsyncs the directory). Sets the counter past every name found.
   */
  async adopt(names: readonly string[]): Promise<void> {
    const found = names.filter((n) => FREE_NAME_RE.test(n)).sort((a, b) => freeNumber(a) - freeNumber(b));
    let removed = 0;
    for (const name of found) {
      this.#counter = Math.max(this.#counter, freeNumber(name));
      const path = `${this.#dir}/${name}`;
      const { sizeBytes } = await this.#fs.stat(path);
      if (this.wants(sizeBytes)) {
        this.#free.push(name);
        continue;
      }
      await this.#fs.unlink(path);
      removed++;
    }
    if (removed > 0) await retryOnDescriptorShortage(() => this.#fs.syncDir(this.#dir));
  }
}

function freeNumber(name: string): number {
  const m = FREE_NAME_RE.exec(name);
  assert(m !== null, `free file name ${name}`);
  return Number(m[1]);
}
