/**
 * SegmentPreparer: keeps the next segment ready ahead of need, off the commit path (etcd's file
 * pipeline), and never makes a commit wait for it. A prepared segment is a temp file filled with zeros to the full segment size and fsynced,
 * so a commit into it overwrites allocated blocks and its fdatasync writes no size metadata. It gets its
 * real name only when its first batch is durable in it (wal.ts renames it and syncs the directory).
 */
import type { FileHandle, FileSystem } from '../fs/file-system.js';

export const PREALLOC_SUFFIX = '.prealloc.tmp';
/** A next segment started without preallocation (its zero-fill was late). */
export const UNPREPARED_SUFFIX = '.new.tmp';
const ZERO_CHUNK_BYTES = 1024 * 1024;

export interface PreparedSegment {
  handle: FileHandle;
  path: string;
}

export class SegmentPreparer {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #segmentSizeBytes: number;
  #counter = 0;
  #next: Promise<PreparedSegment> | null = null;
  #state: 'idle' | 'preparing' | 'ready' | 'failed' = 'idle';
  #unprepared = 0;

  constructor(fs: FileSystem, dir: string, segmentSizeBytes: number) {
    this.#fs = fs;
    this.#dir = dir;
    this.#segmentSizeBytes = segmentSizeBytes;
  }

  /** Times a roll found the next segment not zero-filled yet and started it as a file that grows. */
  get unprepared(): number {
    return this.#unprepared;
  }

  /** Starts preparing the next segment in the background if none is under way. */
  prepareAhead(): void {
    if (this.#next) return;
    this.#state = 'preparing';
    const p = this.#prepare();
    // A failure is reported when the segment is wanted; keep it from being an unhandled rejection meanwhile.
    p.then(
      () => {
        if (this.#next === p) this.#state = 'ready';
      },
      () => {
        if (this.#next === p) this.#state = 'failed';
      },
    );
    this.#next = p;
  }

  /**
   * The next segment, never waiting for a zero-fill: the prepared one when it is ready; otherwise a new
   * plain file that grows as it is written (each commit into it also syncs its size, ~2x slower here,
   * but no writer waits for 64 MiB of zeros). At high throughput the fill cannot keep ahead, and a roll
   * that waited for it stalled every writer for 100-200 ms. A preparation still under way goes on and
   * serves the next roll; one that failed (a disk full for a moment) is started again.
   */
  async take(): Promise<PreparedSegment> {
    if (this.#state === 'ready') {
      const p = this.#next as Promise<PreparedSegment>;
      this.#next = null;
      this.#state = 'idle';
      return await p;
    }
    if (this.#state === 'failed') {
      this.#next = null;
      this.#state = 'idle';
    }
    this.#unprepared++;
    const path = `${this.#dir}/${process.pid}-${++this.#counter}${UNPREPARED_SUFFIX}`;
    return { handle: await this.#fs.open(path, 'w+'), path };
  }

  /** Starts preparing (if needed) and waits until a segment is ready, without taking it. */
  async ready(): Promise<void> {
    this.prepareAhead();
    await this.#next;
  }

  /** Closes and removes a prepared segment nobody took. */
  async dispose(): Promise<void> {
    const p = this.#next;
    this.#next = null;
    this.#state = 'idle';
    if (!p) return;
    try {
      const { handle, path } = await p;
      await handle.close();
      await this.#fs.unlink(path);
    } catch {
      // It was never ready, or is already gone: the next open removes leftovers anyway.
    }
  }

  async #prepare(): Promise<PreparedSegment> {
    const path = `${this.#dir}/${process.pid}-${++this.#counter}${PREALLOC_SUFFIX}`;
    const handle = await this.#fs.open(path, 'w+');
    try {
      // Zeros in 1 MiB steps, each made durable before the next: a single 64 MiB flush at the end would
      // sit in the device queue ahead of the log's own small fdatasyncs for tens of milliseconds.
      const zeros = new Uint8Array(Math.min(ZERO_CHUNK_BYTES, this.#segmentSizeBytes));
      for (let at = 0; at < this.#segmentSizeBytes; at += zeros.byteLength) {
        const n = Math.min(zeros.byteLength, this.#segmentSizeBytes - at);
        await handle.writev([n === zeros.byteLength ? zeros : zeros.subarray(0, n)], at);
        await handle.datasync();
      }
      await handle.sync(); // the size and the rest of the metadata
      return { handle, path };
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }
}
