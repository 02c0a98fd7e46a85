/**
 * The one way a whole file is published durably, and the one temp-file convention.
 *
 * Publish order (every caller relies on it; a power loss at any step leaves either the old state or the
 * new file, never a named file with unsynced data):
 *   1. write the bytes under `<name>.tmp` in the same directory,
 *   2. fdatasync (or fsync) the temp file, close it,
 *   3. rename it to `<name>`,
 *   4. fsync the directory, so the rename itself survives a power loss.
 *
 * A crash can leave `<name>.tmp` files behind; `sweepTempFiles` removes them when a directory is opened.
 *
 * A directory is published the same way: `makeDirDurable` creates each missing component and fsyncs
 * its parent, so a log directory made just before its first commit does not vanish in a power loss
 * together with everything acknowledged in it.
 */
import { dirname } from 'node:path';
import { fsError, type FileSystem, type SyncMethod } from './file-system.js';

/** Suffix of every file that is not yet published. Exported so tests and sweeps share it. */
export const TEMP_SUFFIX = '.tmp';

export function tempNameFor(name: string): string {
  return name + TEMP_SUFFIX;
}

/** A pattern matching the temp path of `name` (any temp path when omitted), for fault rules and tests. */
export function tempPathPattern(name = ''): RegExp {
  return new RegExp(`${(name + TEMP_SUFFIX).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

export function isTempName(name: string): boolean {
  return name.endsWith(TEMP_SUFFIX);
}

export interface PublishTimings {
  /** Time to write and sync the temp file, in ms. */
  writeMs: number;
  /** Time to rename it into place and sync the directory, in ms. */
  publishMs: number;
}

/** Writes `chunks` to `dir/name` durably (the four steps above). */
export async function publishFileDurably(
  fs: FileSystem,
  dir: string,
  name: string,
  chunks: readonly Uint8Array[],
  syncMethod: SyncMethod = 'fdatasync',
): Promise<PublishTimings> {
  const tmp = `${dir}/${tempNameFor(name)}`;
  const t0 = performance.now();
  const handle = await fs.open(tmp, 'w+');
  try {
    await handle.commit(chunks, 0, syncMethod);
  } finally {
    await handle.close();
  }
  const t1 = performance.now();
  await fs.rename(tmp, `${dir}/${name}`);
  await fs.syncDir(dir);
  return { writeMs: t1 - t0, publishMs: performance.now() - t1 };
}

/**
 * Removes every temp file in `names` (a listing of `dir`) and syncs the directory if it removed any.
 * Returns the names removed.
 */
export async function sweepTempFiles(fs: FileSystem, dir: string, names: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const name of names) {
    if (!isTempName(name)) continue;
    await fs.unlink(`${dir}/${name}`);
    removed.push(name);
  }
  if (removed.length > 0) await fs.syncDir(dir);
  return removed;
}

/**
 * Creates `path` and any missing parents, durably: after each directory it creates, it fsyncs that
 * directory's parent (the new entry lives there). For an existing directory it fsyncs the parent once
 * (its creation may have been interrupted before that sync). Returns the
 * directories it created, outermost first.
 */
export async function makeDirDurable(fs: FileSystem, path: string): Promise<string[]> {
  const missing: string[] = [];
  for (let at = path; ; ) {
    try {
      const st = await fs.stat(at);
      if (!st.isDirectory) throw fsError('ENOTDIR', 'mkdir', at, 'not a directory');
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(at);
      const parent = dirname(at);
      if (parent === at) break;
      at = parent;
    }
  }
  missing.reverse();
  for (const dir of missing) {
    await fs.mkdir(dir);
    await fs.syncDir(dirname(dir));
  }
  // A directory that already existed may be one whose creation a crash interrupted before its parent
  // was synced: sync the parent once more, so whatever is acknowledged inside it can survive.
  if (missing.length === 0 && dirname(path) !== path) await fs.syncDir(dirname(path));
  return missing;
}
