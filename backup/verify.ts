/**
 * verifyBackup: reads every file of a backup directory and reports what is wrong, without changing it.
 */
import { FlushpointError } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { listBackupFiles, readBackupFile, readCheckpoint } from './backup-file.js';

export type BackupProblemCode = 'BACKUP_CORRUPT' | 'BACKUP_GAP' | 'NO_CHECKPOINT' | 'BEYOND_CHECKPOINT';

export interface BackupProblem {
  code: BackupProblemCode;
  message: string;
  file?: string;
  offset?: number;
  lsn?: number;
}

export interface VerifyResult {
  /** No corruption, no gap, and a checkpoint whose every LSN is in a verified file. */
  ok: boolean;
  firstLsn: number;
  /** Last LSN of the contiguous run of verified files from firstLsn. */
  lastLsn: number;
  checkpointLsn: number;
  files: number;
  records: number;
  bytes: number;
  problems: BackupProblem[];
}

export async function verifyBackup(dir: string, options: { fs?: FileSystem; onProgress?: (p: { files: number; filesTotal: number }) => void } = {}): Promise<VerifyResult> {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('dir must be a non-empty string');
  const fs = options.fs ?? nodeFileSystem;
  const problems: BackupProblem[] = [];
  let checkpointLsn = 0;
  try {
    const cp = await readCheckpoint(fs, dir);
    if (cp === null) problems.push({ code: 'NO_CHECKPOINT', message: `${dir} has no CHECKPOINT: nothing in it is known to be complete`, file: `${dir}/CHECKPOINT` });
    else checkpointLsn = cp;
  } catch (err) {
    if (!(err instanceof FlushpointError)) throw err;
    problems.push({ code: 'BACKUP_CORRUPT', message: err.message, file: err.file, offset: err.offset });
  }
  const files = await listBackupFiles(fs, dir);
  let firstLsn = 0;
  let lastLsn = 0;
  let records = 0;
  let bytes = 0;
  let contiguous = true;
  for (const [i, f] of files.entries()) {
    const file = `${dir}/${f.name}`;
    if (checkpointLsn > 0 && f.firstLsn > checkpointLsn) {
      problems.push({ code: 'BEYOND_CHECKPOINT', message: `${file} holds LSNs ${f.firstLsn}..${f.lastLsn}, beyond the checkpoint ${checkpointLsn} (left by a crash; the sink adopts or removes it on open)`, file });
    }
    let valid = true;
    try {
      const r = await readBackupFile(fs, dir, f);
      records += r.records.length;
      bytes += r.bytes;
    } catch (err) {
      if (!(err instanceof FlushpointError)) {
        problems.push({ code: 'BACKUP_CORRUPT', message: `${file}: cannot read: ${(err as Error).message}`, file });
      } else problems.push({ code: 'BACKUP_CORRUPT', message: err.message, file: err.file, offset: err.offset });
      valid = false;
    }
    if (i === 0) firstLsn = f.firstLsn;
    else if (f.firstLsn > lastLsn + 1) {
      problems.push({ code: 'BACKUP_GAP', message: `LSNs ${lastLsn + 1}..${f.firstLsn - 1} are missing before ${file}`, file, lsn: lastLsn + 1 });
      contiguous = false;
    } else if (f.firstLsn <= lastLsn) {
      problems.push({ code: 'BACKUP_CORRUPT', message: `${file} overlaps the previous file (starts at ${f.firstLsn}, previous ends at ${lastLsn})`, file });
    }
    if (contiguous && valid) lastLsn = f.lastLsn;
    else contiguous = false;
    options.onProgress?.({ files: i + 1, filesTotal: files.length });
  }
  if (checkpointLsn > lastLsn) {
    problems.push({
      code: 'BACKUP_GAP',
      message: `the checkpoint says ${checkpointLsn} but verified files cover only up to ${lastLsn}: LSNs ${lastLsn + 1}..${checkpointLsn} are missing or damaged`,
      lsn: lastLsn + 1,
    });
  }
  const ok = problems.every((p) => p.code === 'BEYOND_CHECKPOINT');
  return { ok, firstLsn, lastLsn, checkpointLsn, files: files.length, records, bytes, problems };
}
