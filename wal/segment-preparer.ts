/**
 * SegmentPreparer: keeps the next segment ready ahead of need, off the commit path (etcd's file
 * pipeline). A prepared segment is a temp file filled with zeros to the full segment size and fsynced,
 * so a commit into it overwrites allocated blocks and its fdatasync writes no size metadata. It gets its
 * real name only when its first batch is durable in it (wal.ts renames it and syncs the directory).
 */
import type { FileHandle, FileSystem } from './fs/file-system.js';

export const PREALLOC_SUFFIX = '.prealloc.tmp';
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
  #stalls = 0;
  #ready = false;

  constructor(fs: FileSystem, dir: string, segmentSizeBytes: number) {
    this.#fs = fs;
    this.#dir = dir;
    this.#segmentSizeBytes = segmentSizeBytes;
  }

  /** Times take() had to wait for a segment that was not ready yet. */
  get stalls(): number {
    return this.#stalls;
  }

  /** Starts preparing the next segment in the background if none is under way. */
  prepareAhead(): void {
    if (this.#next) return;
    this.#ready = false;
    const p = this.#prepare();
    // A failure is reported to whoever takes it; keep it from being an unhandled rejection meanwhile.
    p.then(
      () => {
        this.#ready = true;
      },
      () => {},
    );
    this.#next = p;
  }

  /**
   * The prepared segment (waiting for it if needed); the next one starts preparing at once. A background
   * preparation that failed (a full disk that has since been cleared, say) is tried once more here: it
   * is a new temp file holding nothing acknowledged, so retrying it is safe, unlike retrying a sync.
   */
  async take(): Promise<PreparedSegment> {
    this.prepareAhead();
    if (!this.#ready) this.#stalls++;
    const p = this.#next as Promise<PreparedSegment>;
    this.#next = null;
    try {
      return await p;
    } catch {
      return await this.#prepare();
    }
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
