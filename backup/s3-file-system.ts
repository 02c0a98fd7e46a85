/**
 * A read-only FileSystem view of an S3 backup prefix, beside an ordinary FileSystem for every other path.
 *
 *   s3://bucket/prefix            a directory: readdir lists the objects directly under the prefix
 *   s3://bucket/prefix/<name>     a file: stat = HEAD, open('r') = one GET of the whole object
 *   anything else                 the inner FileSystem (restoreBackup writes its WAL there)
 *
 * So restoreBackup({ from: 's3://bucket/prefix', to, fs }) and verifyBackup('s3://bucket/prefix', { fs })
 * read a bucket with the very code that reads a directory, and name objects in their messages. Writes
 * under the prefix are refused (EROFS): the sink writes through its S3Target.
 *
 * A checkpoint may carry its flush's data file inline (format.ts, version 3) that is not yet stored under
 * its own name: this view shows the objects as they are, and backup-file.ts (listBackupFiles,
 * readBackupFile) shows the inline file to every reader, on this view as on a directory.
 *
 * `pinnedCheckpoint`: the view a sink's open reads through (S3Target.preparedReadFs) serves the CHECKPOINT
 * bytes prepare() read, whose ETag the target holds, rather than GETting them again: the checkpoint the
 * sink continues from is then the one its first publish replaces, even when another writer's late
 * checkpoint landed in between (its first publish meets that one on a 412).
 */
import { fsError, type FileHandle, type FileLock, type FileStat, type FileSystem, type OpenFlags } from '../fs/file-system.js';
import { CHECKPOINT_NAME } from './format.js';

/** What the view needs from a target: listing, HEAD and GET by file name. */
export interface S3Reader {
  readonly location: string;
  listFiles(): Promise<string[]>;
  headObject(name: string): Promise<{ sizeBytes: number; etag: string } | null>;
  getFile(name: string): Promise<Uint8Array | null>;
}

class ObjectHandle implements FileHandle {
  readonly path: string;
  readonly #bytes: Uint8Array;

  constructor(path: string, bytes: Uint8Array) {
    this.path = path;
    this.#bytes = bytes;
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const n = Math.max(0, Math.min(length, this.#bytes.byteLength - position));
    buffer.set(this.#bytes.subarray(position, position + n), offset);
    return n;
  }

  async stat(): Promise<FileStat> {
    return { sizeBytes: this.#bytes.byteLength, isFile: true, isDirectory: false };
  }

  async close(): Promise<void> {}

  writev(): Promise<number> {
    return Promise.reject(fsError('EROFS', 'write', this.path, 'an S3 object is read-only here'));
  }

  commit(): Promise<void> {
    return Promise.reject(fsError('EROFS', 'write', this.path, 'an S3 object is read-only here'));
  }

  truncate(): Promise<void> {
    return Promise.reject(fsError('EROFS', 'ftruncate', this.path));
  }

  async datasync(): Promise<void> {}

  async sync(): Promise<void> {}
}

export function s3ReadFileSystem(reader: S3Reader, inner: FileSystem, pinnedCheckpoint?: () => Uint8Array | null): FileSystem {
  const root = reader.location;
  const getFile = async (name: string): Promise<Uint8Array | null> => (name === CHECKPOINT_NAME && pinnedCheckpoint !== undefined ? pinnedCheckpoint() : reader.getFile(name));
  /** null: not ours; '': the prefix itself; else the file name under it. */
  const nameOf = (path: string): string | null => {
    if (path === root) return '';
    if (path.startsWith(`${root}/`)) {
      const name = path.slice(root.length + 1);
      return name.length > 0 && !name.includes('/') ? name : null;
    }
    return null;
  };
  const ours = (path: string): boolean => path === root || path.startsWith(`${root}/`);
  const readOnly = (syscall: string, path: string): Promise<never> => Promise.reject(fsError('EROFS', syscall, path, 'S3 backup objects are written by the sink only'));
  return {
    async open(path: string, flags: OpenFlags): Promise<FileHandle> {
      if (!ours(path)) return inner.open(path, flags);
      const name = nameOf(path);
      if (flags !== 'r') return readOnly('open', path);
      if (name === null || name === '') throw fsError('EISDIR', 'open', path);
      const bytes = await getFile(name);
      if (bytes === null) throw fsError('ENOENT', 'open', path, 'no such object');
      return new ObjectHandle(path, bytes);
    },
    rename: (from, to) => (ours(from) || ours(to) ? readOnly('rename', from) : inner.rename(from, to)),
    unlink: (path) => (ours(path) ? readOnly('unlink', path) : inner.unlink(path)),
    async readdir(path: string): Promise<string[]> {
      if (!ours(path)) return inner.readdir(path);
      if (nameOf(path) !== '') throw fsError('ENOTDIR', 'scandir', path);
      return reader.listFiles();
    },
    mkdir: (path) => (ours(path) ? readOnly('mkdir', path) : inner.mkdir(path)),
    syncDir: (path) => (ours(path) ? readOnly('fsync', path) : inner.syncDir(path)),
    async stat(path: string): Promise<FileStat> {
      if (!ours(path)) return inner.stat(path);
      const name = nameOf(path);
      if (name === '') {
        try {
          await reader.listFiles(); // the bucket answers: a prefix with no object is an empty directory
        } catch (err) {
          if ((err as { name?: string }).name === 'NoSuchBucket') throw fsError('ENOENT', 'stat', path, 'no such bucket');
          throw err;
        }
        return { sizeBytes: 0, isFile: false, isDirectory: true };
      }
      if (name === CHECKPOINT_NAME && pinnedCheckpoint !== undefined) {
        const pinned = pinnedCheckpoint();
        if (pinned === null) throw fsError('ENOENT', 'stat', path, 'no such object');
        return { sizeBytes: pinned.byteLength, isFile: true, isDirectory: false };
      }
      const head = name === null ? null : await reader.headObject(name);
      if (head === null) throw fsError('ENOENT', 'stat', path, 'no such object');
      return { sizeBytes: head.sizeBytes, isFile: true, isDirectory: false };
    },
    lock: (path): Promise<FileLock> => (ours(path) ? readOnly('lock', path) : inner.lock(path)),
  };
}
