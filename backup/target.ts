/**
 * Where a backup lives: the BackupTarget interface under the sink, and its local-directory form.
 *
 * The sink speaks to a target in files: whole named files put durably, got, listed and deleted, plus
 * the one CHECKPOINT published last. The publish protocol is the same on every target:
 *
 *   putFile(data 1) ... putFile(data n)      each durable under its final name when it resolves
 *   publishCheckpoint(bytes)                 only after every putFile of the range resolved
 *
 * so the checkpoint never names data the target does not hold. A retried flush puts the same frozen
 * range under the same names again; the target decides what "again" means (the local directory
 * replaces the file atomically by rename, as it always did; S3 compares checksums with what is there).
 *
 * Reading goes through the FileSystem interface (`readFs`, rooted at `location`), so that restoreBackup,
 * verifyBackup and the sink's adoption read an S3 prefix with the very code that reads a directory.
 */
import { ErrorCode, FlushpointError } from '../core/errors.js';
import { readWholeFile, type FileSystem } from '../fs/file-system.js';
import { publishFileDurably, sweepTempFiles } from '../fs/durable-publish.js';
import { checkpointInlineFile, compareWithInlineCopy } from './backup-file.js';
import { CHECKPOINT_NAME } from './format.js';

export interface PutTimings {
  /** Time to send the bytes and make them durable (temp file + fdatasync, or the upload), in ms. */
  writeMs: number;
  /** Time to make them visible under the final name (rename + fsync dir, or the check after an upload), in ms. */
  publishMs: number;
}

export interface TargetStats {
  /** Data files put (each counted once, also when it was found already there). */
  filesPut: number;
  /** Bytes of those files. */
  bytesPut: number;
  /** Puts that found the same bytes already stored under the name (an earlier attempt had landed). */
  alreadyThere: number;
  /** Checkpoints published. */
  checkpointsPublished: number;
  /** Files deleted. */
  filesDeleted: number;
}

/** A checkpoint request made ready while the last data file is put (see BackupTarget.prepareCheckpoint). */
export interface PreparedCheckpoint {
  /** Sends it (only now: every data file is durable) and resolves as publishCheckpoint does. */
  publish(): Promise<PutTimings>;
  /** The flush failed before its checkpoint: the request is dropped unsent. */
  cancel(): void;
}

export interface BackupTarget {
  /** Where the backup is, as messages name it: a directory path, or s3://bucket/prefix. */
  readonly location: string;
  /** Reads the backup: readdir(location), stat/open(location + '/' + name). Writes through it are refused on S3. */
  readonly readFs: FileSystem;
  /**
   * Optional (S3): the backup as prepare() found it, for the sink's open: the CHECKPOINT read there (whose
   * version the target will replace), not read again. Without it, the sink's open reads readFs.
   */
  readonly preparedReadFs?: FileSystem;
  /**
   * No lock keeps other writers out (S3): before deleting anything, a sink re-publishes its checkpoint
   * conditionally, so that a sink still writing there is refused its next publish and never names what
   * was deleted. False for a directory: its lock file keeps every other sink out.
   */
  readonly claimsByCheckpoint: boolean;
  /**
   * Gets the target ready for a sink: sweeps a directory's temp files / learns the S3 checkpoint's version.
   * A CHECKPOINT carrying an inline file (format version 3) has it stored under its name here, before the
   * sink publishes anything that would replace the only copy.
   */
  prepare(): Promise<void>;
  /** Stores `chunks` under `name`, durably when it resolves; the same bytes already there count as stored. */
  putFile(name: string, chunks: readonly Uint8Array[]): Promise<PutTimings>;
  /** The whole file, or null when there is none. */
  getFile(name: string): Promise<Uint8Array | null>;
  /** Names of the files at the location (not paths). */
  listFiles(): Promise<string[]>;
  /** Deletes the files, durably when it resolves; a name already gone is fine. */
  deleteFiles(names: readonly string[]): Promise<void>;
  /** Publishes the CHECKPOINT, last; BACKUP_LOCKED when another writer has published one since this target last did. */
  publishCheckpoint(bytes: Uint8Array): Promise<PutTimings>;
  /**
   * Optional: builds and signs the CHECKPOINT request while the last data file of the flush is being
   * put, without sending it, so that publishing costs the round trip only (S3). Nothing leaves before
   * publish(), which the pipeline calls only after every data file is durable.
   */
  prepareCheckpoint?(bytes: Uint8Array): PreparedCheckpoint;
  /**
   * Optional (S3): whether a flush's only data file, of `bytes` bytes, may go inline in its checkpoint
   * (at most INLINE_FILE_BYTES_MAX).
   */
  acceptsInline?(bytes: number): boolean;
  /**
   * Optional (S3): publishes a version 3 checkpoint (`chunks`: format.ts encodeCheckpointInline) that
   * carries the flush's only data file, `fileName`, in ONE conditional PUT: the flush's commit point.
   * The file is then stored under its name in the background ("materialized"), and every later
   * checkpoint publish first waits until it is: a checkpoint never replaces the only copy of a file.
   */
  publishCheckpointInline?(chunks: readonly Uint8Array[], fileName: string): Promise<PutTimings>;
  /** Optional: resolves when background work (an inline file being materialized) is over, whatever its outcome. */
  settled?(): Promise<void>;
  stats(): TargetStats;
  close(): Promise<void>;
}

export function emptyTargetStats(): TargetStats {
  return { filesPut: 0, bytesPut: 0, alreadyThere: 0, checkpointsPublished: 0, filesDeleted: 0 };
}

export function chunksBytes(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}

/**
 * A backup directory through the FileSystem layer: exactly what the sink always did. Every file is
 * published by fs/durable-publish.ts (temp name, fdatasync, rename, fsync dir); a retried put replaces
 * the file atomically. Exclusion is the directory's lock file, which the sink takes (backup/lock.ts).
 */
export class LocalDirTarget implements BackupTarget {
  readonly location: string;
  readonly readFs: FileSystem;
  readonly claimsByCheckpoint = false;
  readonly #fs: FileSystem;
  readonly #stats = emptyTargetStats();
  #fenced: FlushpointError | null = null;

  constructor(fs: FileSystem, dir: string) {
    this.#fs = fs;
    this.readFs = fs;
    this.location = dir;
  }

  /**
   * The directory's lock was lost (its refresh failed, or another sink took it over as stale): from
   * now on every write here is refused with BACKUP_LOCKED, so a sink that stalled past lockStaleMs
   * never publishes over the new owner's files or checkpoint. A write already past this check ends.
   */
  fence(cause: Error): void {
    this.#fenced ??= new FlushpointError(ErrorCode.BACKUP_LOCKED, `backup directory ${this.location} lost its lock (${cause.message.split('\n')[0]}); this sink no longer writes there: close it and open a new one`, {
      cause,
    });
  }

  #checkNotFenced(): void {
    if (this.#fenced) throw this.#fenced;
  }

  /**
   * The directory exists (the sink made it durably and locked it); sweeps the temp files a crash left.
   * A version 3 CHECKPOINT (an S3 backup copied here, e.g. with `aws s3 sync`, while a file was only in
   * it) has its inline file stored under its name first (temp, fdatasync, rename, fsync dir): the sink's
   * first publish writes a version 2 CHECKPOINT, which would otherwise replace the only copy. A file of
   * that name that does not verify is replaced by the checkpoint's copy; one that verifies with other
   * bytes is BACKUP_CORRUPT naming both (nothing is written).
   */
  async prepare(): Promise<void> {
    await sweepTempFiles(this.#fs, this.location, await this.#fs.readdir(this.location));
    const inline = await checkpointInlineFile(this.#fs, this.location);
    if (inline === null) return;
    const there = await this.getFile(inline.name);
    // The same file (bytes, or records) there: kept. One that does not verify: replaced. Other records: BACKUP_CORRUPT naming both.
    if (there !== null && (await compareWithInlineCopy(this.location, inline, there, inline.bytes)) === 'same') return;
    this.#checkNotFenced();
    await publishFileDurably(this.#fs, this.location, inline.name, [inline.bytes]);
  }

  async putFile(name: string, chunks: readonly Uint8Array[]): Promise<PutTimings> {
    this.#checkNotFenced();
    const t = await publishFileDurably(this.#fs, this.location, name, chunks);
    this.#stats.filesPut++;
    this.#stats.bytesPut += chunksBytes(chunks);
    return t;
  }

  async getFile(name: string): Promise<Uint8Array | null> {
    try {
      return await readWholeFile(this.#fs, `${this.location}/${name}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  listFiles(): Promise<string[]> {
    return this.#fs.readdir(this.location);
  }

  async deleteFiles(names: readonly string[]): Promise<void> {
    this.#checkNotFenced();
    for (const name of names) {
      try {
        await this.#fs.unlink(`${this.location}/${name}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      this.#stats.filesDeleted++;
    }
    if (names.length > 0) await this.#fs.syncDir(this.location);
  }

  async publishCheckpoint(bytes: Uint8Array): Promise<PutTimings> {
    this.#checkNotFenced();
    const t = await publishFileDurably(this.#fs, this.location, CHECKPOINT_NAME, [bytes]);
    this.#stats.checkpointsPublished++;
    return t;
  }

  stats(): TargetStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {}
}
