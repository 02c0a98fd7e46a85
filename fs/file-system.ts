/**
 * The FileSystem layer: every byte flushpoint reads or writes goes through this narrow interface, so that
 * tests can swap the real disk for an in-memory one that simulates power loss (MemoryFileSystem), or wrap
 * either in one that injects faults (FaultFileSystem). Production uses NodeFileSystem.
 *
 * Errors are Node-style: an Error with a string `code` (ENOENT, EIO, ENOSPC, EEXIST, EWOULDBLOCK ...).
 */

import { FlushpointError } from '../core/errors.js';
import { DESCRIPTOR_RETRY_DELAYS_MS } from './limits.js';

export type SyncMethod = 'fdatasync' | 'fsync';
/**
 * How the event loop waits for a commit run on another thread: 'sleep' (an Atomics.waitAsync wake-up:
 * the loop sleeps until the answer, then pays a thread wake-up), 'poll' (a setImmediate turn that
 * checks for the answer: the loop never sleeps while a commit is in flight, keeps serving its other
 * events between checks, and spends a CPU on it; the commit thread, for its part, waits a moment for the
 * next request before it sleeps when requests come back to back), or 'auto' ('poll' for a commit sent
 * within COMMIT_POLL_IDLE_MS_MAX of the previous answer, when the log is busy, while commits take under
 * COMMIT_POLL_MS_MAX on average and for at most that long each; 'sleep' otherwise). The same durability
 * in every mode.
 */
export type CommitWait = 'auto' | 'sleep' | 'poll';

/**
 * Open flags, as node:fs spells them: 'r' read-only; 'r+' read-write, must exist; 'w+' read-write,
 * created or truncated; 'wx+' read-write, created, EEXIST if it exists.
 */
export type OpenFlags = 'r' | 'r+' | 'w+' | 'wx+';

export interface FileStat {
  sizeBytes: number;
  isFile: boolean;
  isDirectory: boolean;
}

export interface FileHandle {
  readonly path: string;
  /** Writes all of `buffers` at `position`, in order. Resolves with the number of bytes written. */
  writev(buffers: readonly Uint8Array[], position: number): Promise<number>;
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`. Resolves with the bytes read. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  truncate(lengthBytes: number): Promise<void>;
  stat(): Promise<FileStat>;
  close(): Promise<void>;
  /**
   * writev, then fdatasync (or fsync): the commit step of a log. One operation so that the real file
   * system can run both system calls in one trip to another thread; the others run them one after the
   * other. Resolves only after the sync returned success. `wait` (default 'sleep'): how the event loop
   * waits where the commit runs on another thread (CommitWait); ignored elsewhere.
   */
  commit(buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod, wait?: CommitWait): Promise<void>;
  /**
   * Optional synchronous calls (a FileSystem with `syncCalls: true` has all three on every handle): the
   * same as writev, datasync and sync, but run on the calling thread, which they block until the system
   * call returns. The WAL's syncMode 'inline' commits with them; nothing else should.
   */
  writevSync?(buffers: readonly Uint8Array[], position: number): number;
  datasyncSync?(): void;
  syncSync?(): void;
  /**
   * Optional hint: the pages of [offset, offset + lengthBytes) (0: to the end) will not be read soon;
   * the OS may drop them from its cache (posix_fadvise DONTNEED). Call it only on bytes already durable.
   * Changes no byte of the file; a caller ignores its failure.
   */
  dropCache?(offset: number, lengthBytes: number): Promise<void>;
  /**
   * Optional: writes the dirty pages of [offset, offset + lengthBytes) to the device and waits for them
   * (sync_file_range), with no metadata and no cache flush: not durability, which takes a datasync. Lets
   * a writer keep its own dirty bytes few (the zero-fill, wal/segment-preparer.ts).
   */
  writeBack?(offset: number, lengthBytes: number): Promise<void>;
}

/** An exclusive lock held on a file; released by release() or by the death of the process. */
export interface FileLock {
  release(): Promise<void>;
}

export interface FileSystem {
  open(path: string, flags: OpenFlags): Promise<FileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Names (not paths) of the entries of a directory. */
  readdir(path: string): Promise<string[]>;
  /** Creates the directory and its parents; no error if it exists. */
  mkdir(path: string): Promise<void>;
  /** Optional: removes an empty directory (ENOTEMPTY if it is not, ENOENT if missing). */
  rmdir?(path: string): Promise<void>;
  /** fsync on the directory itself: makes creates, renames and unlinks in it durable. */
  syncDir(path: string): Promise<void>;
  stat(path: string): Promise<FileStat>;
  /**
   * Takes an exclusive, non-blocking lock on the file at `path` (created if missing). Rejects with an
   * error whose code is 'EWOULDBLOCK' when another holder has it.
   */
  lock(path: string): Promise<FileLock>;
  /**
   * Optional capability: true when paths name files on this host's own disk, as node:fs and other
   * processes see them (NodeFileSystem). Lets a caller pick a mechanism that needs the real disk.
   */
  readonly hostPaths?: boolean;
  /** Optional capability: true when its handles' dropCache really drops cached pages (else it does nothing, or is absent). */
  readonly dropsCache?: boolean;
  /** Optional capability: true when its handles' writeBack really writes pages back (else it does nothing, or is absent). */
  readonly writesBack?: boolean;
  /** Optional capability: true when every handle it opens has writevSync, datasyncSync and syncSync. */
  readonly syncCalls?: boolean;
  /**
   * Optional: get ready for commits (the real file system starts a commit worker, ~100 ms once).
   * Rejects (code ECOMMITWORKER) when commits cannot work, so an opener fails at once, not at its
   * first commit.
   */
  warmUp?(): Promise<void>;
}

/** Reads a whole file through a FileSystem. */
export async function readWholeFile(fs: FileSystem, path: string): Promise<Uint8Array> {
  const handle = await fs.open(path, 'r');
  try {
    const { sizeBytes } = await handle.stat();
    const buffer = new Uint8Array(sizeBytes);
    let done = 0;
    while (done < sizeBytes) {
      const n = await handle.read(buffer, done, sizeBytes - done, done);
      if (n === 0) break;
      done += n;
    }
    return done === sizeBytes ? buffer : buffer.subarray(0, done);
  } finally {
    await handle.close();
  }
}

/**
 * Makes an Error that looks like one from node:fs: `CODE: description, syscall 'path'`. `message` may be
 * the description alone or a whole node:fs message (`ENOSPC: no space left on device, write`, as a
 * descriptor's error has it, naming no file): its code and syscall are not repeated.
 */
export function fsError(code: string, syscall: string, path: string, message?: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${describeFsError(code, syscall, message)}, ${syscall} '${path}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = syscall;
  err.path = path;
  return err;
}

/** The description of a node:fs message, without the `CODE: ` before it and the `, syscall ['path']` after it. */
function describeFsError(code: string, syscall: string, message: string | undefined): string {
  let text = message ?? code.toLowerCase();
  if (text.startsWith(`${code}: `)) text = text.slice(code.length + 2);
  const after = `, ${syscall}`;
  const at = text.lastIndexOf(after);
  if (at > 0 && (at + after.length === text.length || text.startsWith(' \'', at + after.length))) text = text.slice(0, at);
  return text;
}

/**
 * An error of the file system itself (an errno code: EACCES, EIO, EISDIR, ...), as opposed to one about
 * the bytes read (a FlushpointError: WAL_CORRUPT, BACKUP_CORRUPT, ...). A file that gave one is unreadable,
 * not damaged: its bytes were never seen.
 */
export function isFileSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return !(err instanceof FlushpointError) && typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

/** "No descriptor left": the process's limit (EMFILE) or the system's (ENFILE). */
const DESCRIPTOR_SHORTAGE_CODES = new Set(['EMFILE', 'ENFILE']);

/**
 * Runs `call`, and again after a short wait (DESCRIPTOR_RETRY_DELAYS_MS) while it fails for want of a
 * file descriptor. Such a failure means the call did not run: the open that needed the descriptor was
 * refused, so nothing was written or synced (fsync and fdatasync never answer EMFILE), and trying again
 * repeats nothing. Any other error, or a shortage outlasting the waits, is thrown.
 */
export async function retryOnDescriptorShortage<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const delayMs = DESCRIPTOR_RETRY_DELAYS_MS[attempt];
      if (!DESCRIPTOR_SHORTAGE_CODES.has((err as NodeJS.ErrnoException)?.code ?? '') || delayMs === undefined) throw err;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
