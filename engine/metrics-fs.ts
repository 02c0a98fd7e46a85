/**
 * SyncTimer: a FileSystem wrapper that times every durability call (commit = writev + fdatasync, also
 * when the WAL's syncMode 'inline' makes them as synchronous calls; datasync, sync, syncDir) and hands
 * each duration to its listeners. The engine wraps the WAL's file system with it when it has an admin
 * endpoint (the only reader of the fsync histogram), so the histogram sees every sync, not a summary.
 *
 * On the commit path it costs one performance.now() pair and one reaction on the commit's own promise:
 * the wrapper returns the inner promise itself, so the WAL sees the commit settle in the same turn as
 * without it (an async wrapper would add two promise hops between the sync and every waiter).
 */
import type { CommitWait, FileHandle, FileSystem, SyncMethod } from '../fs/index.js';

export type SyncOp = 'commit' | 'datasync' | 'sync' | 'syncDir';

export type SyncListener = (op: SyncOp, durationMs: number) => void;

function ignore(): void {}

export class SyncTimer {
  readonly #listeners: SyncListener[] = [];

  on(listener: SyncListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  #report(op: SyncOp, startedMs: number): void {
    const durationMs = performance.now() - startedMs;
    for (const listener of this.#listeners) listener(op, durationMs);
  }

  /** `run()`'s promise itself, timed when it fulfils (a failed call is not timed: the failure counts instead). */
  #time<T>(op: SyncOp, run: () => Promise<T>): Promise<T> {
    const startedMs = performance.now();
    const p = run();
    p.then(() => this.#report(op, startedMs), ignore);
    return p;
  }

  /** `fs`, with its durability calls timed; its synchronous calls (syncCalls) are kept. */
  wrap(fs: FileSystem): FileSystem {
    const wrapHandle = (h: FileHandle): FileHandle => {
      const w: FileHandle = {
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
        commit: (buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod, wait?: CommitWait) => this.#time('commit', () => h.commit(buffers, position, syncMethod, wait)),
      };
      // Only the WAL's syncMode 'inline' makes synchronous calls: writevSync then datasyncSync (or
      // syncSync) is one commit, timed from the writev as the worker's commit is.
      const { writevSync, datasyncSync, syncSync } = h;
      let commitStartedMs = Number.NaN;
      const commitSync = (sync: () => void): void => {
        const startedMs = Number.isNaN(commitStartedMs) ? performance.now() : commitStartedMs;
        commitStartedMs = Number.NaN;
        sync.call(h);
        this.#report('commit', startedMs);
      };
      if (writevSync) {
        w.writevSync = (buffers, position) => {
          commitStartedMs = performance.now();
          return writevSync.call(h, buffers, position);
        };
      }
      if (h.dropCache) w.dropCache = (offset, lengthBytes) => (h.dropCache as NonNullable<FileHandle['dropCache']>).call(h, offset, lengthBytes);
      if (h.writeBack) w.writeBack = (offset, lengthBytes) => (h.writeBack as NonNullable<FileHandle['writeBack']>).call(h, offset, lengthBytes);
      if (datasyncSync) w.datasyncSync = () => commitSync(datasyncSync);
      if (syncSync) w.syncSync = () => commitSync(syncSync);
      return w;
    };
    const wrapped: FileSystem = {
      open: async (path, flags) => wrapHandle(await fs.open(path, flags)),
      rename: (from, to) => fs.rename(from, to),
      unlink: (path) => fs.unlink(path),
      ...(fs.rmdir ? { rmdir: fs.rmdir.bind(fs) } : {}),
      readdir: (path) => fs.readdir(path),
      mkdir: (path) => fs.mkdir(path),
      syncDir: (path) => this.#time('syncDir', () => fs.syncDir(path)),
      stat: (path) => fs.stat(path),
      lock: (path) => fs.lock(path),
      ...(fs.syncCalls === true ? { syncCalls: true } : {}),
      ...(fs.dropsCache === true ? { dropsCache: true } : {}),
      ...(fs.writesBack === true ? { writesBack: true } : {}),
      ...(fs.hostPaths === true ? { hostPaths: true } : {}),
    };
    if (fs.warmUp) wrapped.warmUp = () => (fs.warmUp as () => Promise<void>).call(fs);
    return wrapped;
  }
}
