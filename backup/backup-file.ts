/**
 * Reading and publishing backup segment files and the checkpoint, through the FileSystem layer.
 *
 * Publish order for every file: write under a temp name, fdatasync, close, rename into place, fsync the
 * directory. The checkpoint is published the same way, and only after the data it covers.
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
  encodeBackupHeader,
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
  let bytes: Uint8Array;
  try {
    bytes = await readWholeFile(fs, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const d = decodeCheckpoint(bytes);
  if (!d.ok) throw corrupt(file, d.offset, d.reason);
  const { checkpointLsn, startLsn } = d.value;
  if (startLsn !== null) return { checkpointLsn, startLsn, startRecorded: true };
  const first = (await listBackupFiles(fs, dir))[0];
  return { checkpointLsn, startLsn: first !== undefined && first.firstLsn <= checkpointLsn ? first.firstLsn : checkpointLsn + 1, startRecorded: false };
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
}

/** Backup files in the directory, in LSN order (by name). */
export async function listBackupFiles(fs: FileSystem, dir: string): Promise<BackupFileEntry[]> {
  const out: BackupFileEntry[] = [];
  for (const name of await fs.readdir(dir)) {
    const p = parseBackupFileName(name);
    if (p) out.push({ name, ...p });
  }
  return out.sort((a, b) => a.firstLsn - b.firstLsn || a.lastLsn - b.lastLsn);
}

/** Reads and fully verifies one backup file: header, whole-file CRC, every record's CRC and LSN. */
export async function readBackupFile(fs: FileSystem, dir: string, entry: BackupFileEntry): Promise<{ header: BackupHeader; records: BodyRecord[]; bytes: number }> {
  const file = `${dir}/${entry.name}`;
  const bytes = await readWholeFile(fs, file);
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
