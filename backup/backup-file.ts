/**
 * Reading and publishing backup segment files and the checkpoint, through the FileSystem layer.
 *
 * Publish order for every file: write under a temp name, fdatasync, close, rename into place, fsync the
 * directory. The checkpoint is published the same way, and only after the data it covers.
 *
 * A CHECKPOINT of format version 3 (format.ts; written by the S3 target) carries its flush's data file
 * inline, which may not be stored under its own name yet (its writer stores it right after, or the next
 * sink's open does). Every reader sees it here, on any FileSystem (an S3 prefix, or a directory the bucket
 * was copied to): listBackupFiles lists it (reading the CHECKPOINT before the directory: a writer stores an
 * inline file under its name before it publishes any later checkpoint, so a file of the checkpoint read is
 * in a listing made after it, or is that checkpoint's inline file), and readBackupFile reads the copy the
 * checkpoint carries when no file of that name exists. A file of that name with other bytes is compared,
 * never silently preferred: if it does not verify, the checkpoint's copy is read (it verified with the
 * checkpoint); if it verifies, it is a second history, BACKUP_CORRUPT naming both.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { crc32 } from '../core/crc.js';
import { FlushpointError, ErrorCode } from '../core/errors.js';
import { readWholeFile, type FileStat, type FileSystem } from '../fs/file-system.js';
import { publishFileDurably } from '../fs/durable-publish.js';
import {
  BACKUP_HEADER_BYTES,
  CHECKPOINT_NAME,
  FLAG_DEFLATE,
  HEADER_OFFSET,
  backupFileName,
  deflatedBytesMax,
  decodeBackupHeader,
  decodeBody,
  decodeCheckpoint,
  decodeCheckpointFieldsOnly,
  encodeBackupHeader,
  type InlineFile,
  encodeCheckpoint,
  parseBackupFileName,
  type BackupHeader,
  type BodyBuilder,
  type BodyRecord,
} from './format.js';

const deflateRaw = promisify(zlib.deflateRaw);
const inflateRaw = promisify(zlib.inflateRaw);

export type Compression = 'none' | 'deflate';

export interface PublishTimings {
  writeMs: number;
  publishMs: number;
}

/** Writes one backup file durably under its final name. Returns its size and stage timings. */
export async function publishBackupFile(
  fs: FileSystem,
  dir: string,
  body: BodyBuilder,
  compression: Compression,
): Promise<{ name: string; bytes: number } & PublishTimings> {
  const { name, chunks, bytes } = await encodeBackupFile(body, compression);
  const { writeMs, publishMs } = await publishFileDurably(fs, dir, name, chunks);
  return { name, bytes, writeMs, publishMs };
}

/** One backup file as bytes: its name, header + (compressed) body chunks, and total size. */
export async function encodeBackupFile(body: BodyBuilder, compression: Compression): Promise<{ name: string; chunks: Uint8Array[]; bytes: number }> {
  const stored = compression === 'deflate' ? [new Uint8Array(await deflateRaw(Buffer.concat(body.parts)))] : body.parts;
  let bodyCrc = 0;
  let storedBytes = 0;
  for (const part of stored) {
    bodyCrc = crc32(part, bodyCrc);
    storedBytes += part.byteLength;
  }
  const header = encodeBackupHeader({
    flags: compression === 'deflate' ? FLAG_DEFLATE : 0,
    firstLsn: body.firstLsn,
    lastLsn: body.lastLsn,
    recordCount: body.recordCount,
    storedBodyBytes: storedBytes,
    rawBodyBytes: body.bytes,
    bodyCrc,
  });
  return { name: backupFileName(body.firstLsn, body.lastLsn), chunks: [header, ...stored], bytes: header.byteLength + storedBytes };
}

/** The CHECKPOINT's bytes, stamped now: every LSN in startLsn..checkpointLsn is durable in the backup. */
export function checkpointBytes(checkpointLsn: number, startLsn: number): Uint8Array {
  return encodeCheckpoint(checkpointLsn, startLsn, Date.now());
}

/** Publishes the checkpoint: every LSN in startLsn..checkpointLsn is durable in a file of `dir`. */
export async function publishCheckpoint(fs: FileSystem, dir: string, checkpointLsn: number, startLsn: number): Promise<void> {
  await publishFileDurably(fs, dir, CHECKPOINT_NAME, [checkpointBytes(checkpointLsn, startLsn)]);
}

function corrupt(file: string, offset: number, reason: string): FlushpointError {
  return new FlushpointError(ErrorCode.BACKUP_CORRUPT, `backup corrupt: ${file} at byte offset ${offset}: ${reason}`, { file, offset });
}

export interface BackupCheckpoint {
  /** Every LSN in startLsn..checkpointLsn is durable in the backup. */
  checkpointLsn: number;
  /** The first LSN the backup holds. */
  startLsn: number;
  /** False for a format 1 checkpoint: startLsn is then the first file present (or checkpointLsn + 1). */
  startRecorded: boolean;
}

/**
 * Reads the checkpoint; null when there is none. BACKUP_CORRUPT when it is damaged. A format 1
 * checkpoint recorded no start: the first file present stands in for it.
 */
export async function readCheckpoint(fs: FileSystem, dir: string): Promise<BackupCheckpoint | null> {
  const file = `${dir}/${CHECKPOINT_NAME}`;
  const bytes = await readIfExists(fs, file);
  if (bytes === null) return null;
  const d = decodeCheckpoint(bytes);
  if (!d.ok) {
    const vouched = await fieldsVouchedForByStoredFile(fs, dir, bytes);
    if (vouched === null) throw corrupt(file, d.offset, d.reason);
    return vouched;
  }
  const { checkpointLsn, startLsn } = d.value;
  if (startLsn !== null) return { checkpointLsn, startLsn, startRecorded: true };
  const first = (await listBackupFiles(fs, dir))[0];
  return { checkpointLsn, startLsn: first !== undefined && first.firstLsn <= checkpointLsn ? first.firstLsn : checkpointLsn + 1, startRecorded: false };
}

/**
 * A version 3 CHECKPOINT whose inline copy is damaged but whose own fields verify (their CRC): still a
 * checkpoint, when the file it carried is also stored under its name and verifies (its writer, or the next
 * sink's open, stored it there): readers and a sink then use that copy, as for any other file. The stored
 * file must be that very file: when the inline copy's header still verifies, the stored file's 64 header
 * bytes must equal it (the header holds the body's CRC); when it does not, the stored file must end at the
 * checkpoint LSN and the stored files must tile the backup from its start up to it (so the only copy of no
 * LSN is in the damaged section). Null otherwise: the CHECKPOINT is damaged (BACKUP_CORRUPT), the only
 * copy may be in it.
 */
async function fieldsVouchedForByStoredFile(fs: FileSystem, dir: string, bytes: Uint8Array): Promise<BackupCheckpoint | null> {
  const fields = decodeCheckpointFieldsOnly(bytes); // fails for any checkpoint but a version 3 one with sound fields
  if (!fields.ok || fields.value.startLsn === null) return null;
  const { checkpointLsn, startLsn } = fields.value;
  const header = decodeBackupHeader(bytes);
  const names = await fs.readdir(dir);
  const reached = header.ok ? null : boundariesReached(names, startLsn);
  for (const name of names) {
    const p = parseBackupFileName(name);
    if (p === null || p.lastLsn !== checkpointLsn || p.firstLsn < startLsn || (header.ok && header.value.firstLsn !== p.firstLsn)) continue;
    if (reached !== null && !reached.has(p.firstLsn)) continue; // the files below it do not reach its start
    try {
      const stored = await readWholeFile(fs, `${dir}/${name}`);
      // A sound inline header holds the inline file's body CRC: the stored file is that file only if its header is the same.
      if (header.ok && !Buffer.from(stored.buffer, stored.byteOffset, Math.min(stored.byteLength, BACKUP_HEADER_BYTES)).equals(bytes.subarray(0, BACKUP_HEADER_BYTES))) continue;
      await decodeBackupFile(`${dir}/${name}`, stored, { name, ...p });
      return { checkpointLsn, startLsn, startRecorded: true };
    } catch (err) {
      if (!(err instanceof FlushpointError && err.code === ErrorCode.BACKUP_CORRUPT)) throw err;
    }
  }
  return null;
}

/** The LSN boundaries that the backup files named in `names` reach from `startLsn`, each starting where one before it ends (names only). */
function boundariesReached(names: readonly string[], startLsn: number): Set<number> {
  const files = names.map(parseBackupFileName).filter((p): p is { firstLsn: number; lastLsn: number } => p !== null).sort((a, b) => a.firstLsn - b.firstLsn);
  const reached = new Set([startLsn]);
  for (const f of files) if (reached.has(f.firstLsn)) reached.add(f.lastLsn + 1);
  return reached;
}

/** BACKUP_NOT_FOUND unless `dir` exists and is a directory. */
export async function checkBackupDir(fs: FileSystem, dir: string): Promise<void> {
  let stat: FileStat;
  try {
    stat = await fs.stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    throw new FlushpointError(ErrorCode.BACKUP_NOT_FOUND, `no backup at ${dir}: the path does not exist`, { file: dir, cause: err });
  }
  if (!stat.isDirectory) throw new FlushpointError(ErrorCode.BACKUP_NOT_FOUND, `no backup at ${dir}: it is a file, not a backup directory`, { file: dir });
}

export interface BackupFileEntry {
  name: string;
  firstLsn: number;
  lastLsn: number;
  /** The file as the CHECKPOINT read by the listing carries it inline (format version 3), if it does. */
  inline?: Uint8Array;
}

/** The file a version 3 CHECKPOINT carries inline; null when there is no CHECKPOINT, it carries none, or it is damaged (readCheckpoint reports that). */
export async function checkpointInlineFile(fs: FileSystem, dir: string): Promise<InlineFile | null> {
  const bytes = await readIfExists(fs, `${dir}/${CHECKPOINT_NAME}`);
  if (bytes === null) return null;
  const d = decodeCheckpoint(bytes);
  return d.ok ? d.value.inline : null;
}

async function readIfExists(fs: FileSystem, file: string): Promise<Uint8Array | null> {
  try {
    return await readWholeFile(fs, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Backup files in the directory, in LSN order (by name), with the file the CHECKPOINT carries inline (see the module comment). */
export async function listBackupFiles(fs: FileSystem, dir: string): Promise<BackupFileEntry[]> {
  const inline = await checkpointInlineFile(fs, dir); // before the listing: see the module comment
  const out: BackupFileEntry[] = [];
  for (const name of await fs.readdir(dir)) {
    const p = parseBackupFileName(name);
    if (p) out.push({ name, ...p });
  }
  if (inline !== null) {
    const listed = out.find((f) => f.name === inline.name);
    if (listed === undefined) out.push({ name: inline.name, firstLsn: inline.firstLsn, lastLsn: inline.lastLsn, inline: inline.bytes });
    else listed.inline = inline.bytes;
  }
  return out.sort((a, b) => a.firstLsn - b.firstLsn || a.lastLsn - b.lastLsn);
}

/**
 * Reads and fully verifies one backup file: header, whole-file CRC, every record's CRC and LSN. A file
 * the checkpoint carries inline: the copy under its name if there is one and it is the same file
 * (compareWithInlineCopy: the same bytes, or the same records), else the checkpoint's copy when the one
 * under the name does not verify; two copies that both verify with other records are BACKUP_CORRUPT
 * naming both.
 */
export async function readBackupFile(fs: FileSystem, dir: string, entry: BackupFileEntry): Promise<{ header: BackupHeader; records: BodyRecord[]; bytes: number }> {
  const file = `${dir}/${entry.name}`;
  if (entry.inline === undefined) return decodeBackupFile(file, await readWholeFile(fs, file), entry);
  const inCheckpoint = `${dir}/${CHECKPOINT_NAME}`;
  const stored = await readIfExists(fs, file);
  if (stored === null || (await compareWithInlineCopy(dir, entry, stored, entry.inline)) === 'damaged') return decodeBackupFile(inCheckpoint, entry.inline, entry);
  return decodeBackupFile(file, stored, entry);
}

/**
 * How `stored`, the bytes under an inline file's name, relate to the checkpoint's copy `inline`: 'same'
 * when the bytes are equal, or both verify and hold the same records as the WAL framed them (one range
 * encoded twice, e.g. with another compression or zlib version: either copy may be read); 'damaged' when
 * `stored` does not verify (the checkpoint's copy is the one to read). Two copies that both verify with
 * other records are two histories: BACKUP_CORRUPT naming both.
 */
export async function compareWithInlineCopy(dir: string, entry: BackupFileEntry, stored: Uint8Array, inline: Uint8Array): Promise<'same' | 'damaged'> {
  const file = `${dir}/${entry.name}`;
  const inCheckpoint = `${dir}/${CHECKPOINT_NAME}`;
  if (Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(inline)) return 'same';
  let records: BodyRecord[];
  try {
    records = (await decodeBackupFile(file, stored, entry)).records;
  } catch (err) {
    if (!(err instanceof FlushpointError && err.code === ErrorCode.BACKUP_CORRUPT)) throw err;
    return 'damaged'; // the checkpoint's copy verified with the checkpoint
  }
  if (sameRecords(records, (await decodeBackupFile(inCheckpoint, inline, entry)).records)) return 'same';
  throw new FlushpointError(
    ErrorCode.BACKUP_CORRUPT,
    `backup file ${file} holds other bytes than the copy ${inCheckpoint} carries inline (LSNs ${entry.firstLsn}..${entry.lastLsn}; both verify): two histories in one backup. The checkpoint's copy is the one its flush acknowledged: once no other sink writes to ${dir}, delete ${file} and the checkpoint's copy is read (a sink's open stores it under the name)`,
    { file, lsn: entry.firstLsn },
  );
}

/** Whether two verified files hold the same records, each as the WAL framed it (CRC, length, LSN, batch delta, salt, payload). */
export function sameRecords(a: readonly BodyRecord[], b: readonly BodyRecord[]): boolean {
  return a.length === b.length && a.every((r, i) => r.lsn === (b[i] as BodyRecord).lsn && Buffer.compare(r.record, (b[i] as BodyRecord).record) === 0);
}

/** Verifies one backup file's bytes (read from `file`, as errors name it) against its entry. */
export async function decodeBackupFile(file: string, bytes: Uint8Array, entry: BackupFileEntry): Promise<{ header: BackupHeader; records: BodyRecord[]; bytes: number }> {
  const h = decodeBackupHeader(bytes);
  if (!h.ok) throw corrupt(file, h.offset, h.reason);
  const header = h.value;
  if (header.firstLsn !== entry.firstLsn || header.lastLsn !== entry.lastLsn) {
    throw corrupt(file, HEADER_OFFSET.firstLsn, `header says LSNs ${header.firstLsn}..${header.lastLsn}, the name disagrees`);
  }
  const stored = bytes.subarray(BACKUP_HEADER_BYTES);
  if (stored.byteLength !== header.storedBodyBytes) {
    throw corrupt(file, BACKUP_HEADER_BYTES + Math.min(stored.byteLength, header.storedBodyBytes), `body is ${stored.byteLength} bytes, header says ${header.storedBodyBytes} (truncated?)`);
  }
  if (crc32(stored) !== header.bodyCrc) throw corrupt(file, BACKUP_HEADER_BYTES, 'whole-file checksum mismatch');
  let body = stored;
  if (header.flags & FLAG_DEFLATE) {
    if (header.rawBodyBytes > deflatedBytesMax(stored.byteLength)) {
      throw corrupt(file, HEADER_OFFSET.rawBodyBytes, `header says the body inflates to ${header.rawBodyBytes} bytes, more than any ${stored.byteLength}-byte deflate body can`);
    }
    try {
      // Inflate no further than the size the header states: a crafted body cannot take more memory.
      body = new Uint8Array(await inflateRaw(stored, { maxOutputLength: Math.max(1, header.rawBodyBytes) }));
    } catch (err) {
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw corrupt(file, BACKUP_HEADER_BYTES, tooLarge ? `body inflates beyond the ${header.rawBodyBytes} bytes the header states` : `cannot inflate body: ${(err as Error).message}`);
    }
  }
  if (body.byteLength !== header.rawBodyBytes) throw corrupt(file, BACKUP_HEADER_BYTES, `raw body is ${body.byteLength} bytes, header says ${header.rawBodyBytes}`);
  const d = decodeBody(body, header);
  if (!d.ok) throw corrupt(file, BACKUP_HEADER_BYTES + d.offset, d.reason + (header.flags & FLAG_DEFLATE ? ' (offset within the inflated body)' : ''));
  return { header, records: d.value, bytes: bytes.byteLength };
}
