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
 * its own name (its writer stores it right after, or the next sink's open does). The view shows such a
 * file as if it were an object: readdir GETs the CHECKPOINT before it lists, and adds the inline file
 * when the listing lacks it; open and stat fall back to the inline bytes when the object is missing.
 * Why GET before LIST is enough: a writer stores an inline file under its name before it publishes any
 * later checkpoint, so a file of the checkpoint read is in the listing made after it, or is that
 * checkpoint's inline file, which the view holds.
 */
import { fsError, type FileHandle, type FileLock, type FileStat, type FileSystem, type OpenFlags } from '../fs/file-system.js';
import { CHECKPOINT_NAME, decodeCheckpoint } from './format.js';
import { INLINE_FILES_SEEN_COUNT_MAX } from './limits.js';

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

export function s3ReadFileSystem(reader: S3Reader, inner: FileSystem): FileSystem {
  const root = reader.location;
  /** Inline files of the checkpoints this view read, by name (the last few). */
  const inlineSeen = new Map<string, Uint8Array>();
  /** Remembers the inline file of a checkpoint read; its name, or null when it carries none. */
  const noteCheckpoint = (bytes: Uint8Array): string | null => {
    const d = decodeCheckpoint(bytes);
    if (!d.ok || d.value.inline === null) return null; // a damaged one: readCheckpoint reports it
    inlineSeen.delete(d.value.inline.name);
    inlineSeen.set(d.value.inline.name, d.value.inline.bytes);
    for (const name of inlineSeen.keys()) {
      if (inlineSeen.size <= INLINE_FILES_SEEN_COUNT_MAX) break;
      inlineSeen.delete(name);
    }
    return d.value.inline.name;
  };
  const getFile = async (name: string): Promise<Uint8Array | null> => {
    const bytes = await reader.getFile(name);
    if (bytes !== null && name === CHECKPOINT_NAME) noteCheckpoint(bytes);
    return bytes ?? inlineSeen.get(name) ?? null;
  };
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
      const checkpoint = await reader.getFile(CHECKPOINT_NAME); // before the listing: see the module comment
      const inlineName = checkpoint === null ? null : noteCheckpoint(checkpoint);
      const names = await reader.listFiles();
      if (inlineName !== null && !names.includes(inlineName)) names.push(inlineName);
      return names;
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
      const head = name === null ? null : await reader.headObject(name);
      const inline = head === null && name !== null ? inlineSeen.get(name) : undefined;
      if (head === null && inline === undefined) throw fsError('ENOENT', 'stat', path, 'no such object');
      return { sizeBytes: head?.sizeBytes ?? (inline as Uint8Array).byteLength, isFile: true, isDirectory: false };
    },
    lock: (path): Promise<FileLock> => (ours(path) ? readOnly('lock', path) : inner.lock(path)),
  };
}
