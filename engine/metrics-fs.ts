/**
 * SyncTimer: a FileSystem wrapper that times every durability call (commit = writev + fdatasync,
 * datasync, sync, syncDir) and hands each duration to its listeners. The engine wraps the WAL's file
 * system with it, so the fsync latency histogram sees every sync, not a summary. The cost is one
 * performance.now() pair per sync call.
 */
import type { FileHandle, FileSystem, SyncMethod } from '../fs/index.js';

export type SyncOp = 'commit' | 'datasync' | 'sync' | 'syncDir';

export type SyncListener = (op: SyncOp, durationMs: number) => void;

export class SyncTimer {
  readonly #listeners: SyncListener[] = [];

  on(listener: SyncListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  async #time<T>(op: SyncOp, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await run();
    const durationMs = performance.now() - started;
    for (const listener of this.#listeners) listener(op, durationMs);
    return result;
  }

  /** `fs`, with its durability calls timed (failed calls are not timed: the failure counts instead). */
  wrap(fs: FileSystem): FileSystem {
    const wrapHandle = (h: FileHandle): FileHandle => ({
      get path() {
        return h.path;
      },
      writev: (buffers, position) => h.writev(buffers, position),
      read: (buffer, offset, length, position) => h.read(buffer, offset, length, position),
      datasync: () => this.#time('datasync', () => h.datasync()),
      sync: () => this.#time('sync', () => h.sync()),
      truncate: (lengthBytes) => h.truncate(lengthBytes),
      stat: () => h.stat(),
      close: () => h.close(),
      commit: (buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod) => this.#time('commit', () => h.commit(buffers, position, syncMethod)),
    });
    const wrapped: FileSystem = {
      open: async (path, flags) => wrapHandle(await fs.open(path, flags)),
      rename: (from, to) => fs.rename(from, to),
      unlink: (path) => fs.unlink(path),
      readdir: (path) => fs.readdir(path),
      mkdir: (path) => fs.mkdir(path),
      syncDir: (path) => this.#time('syncDir', () => fs.syncDir(path)),
      stat: (path) => fs.stat(path),
      lock: (path) => fs.lock(path),
    };
    if (fs.warmUp) wrapped.warmUp = () => (fs.warmUp as () => Promise<void>).call(fs);
    return wrapped;
  }
}
