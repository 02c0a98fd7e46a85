/**
 * verifyBackup: reads every file of a backup directory and reports what is wrong, without changing it.
 *
 * The backup's extent comes from its CHECKPOINT: it starts at the start LSN recorded there and is
 * complete up to the checkpoint LSN. Every LSN in between must be in exactly one file of the chain
 * (chain.ts) that verifies. A file a crash left over, holding LSNs the chain holds too with the same
 * record bytes, is reported as REDUNDANT (not damage); with other bytes, BACKUP_CORRUPT naming both.
 * Each fault is reported once: one problem per damaged file, per missing LSN range, per overlap.
 */
import { knownOptionsOnly } from '../core/check.js';
import { FlushpointError } from '../core/errors.js';
import { isFileSystemError, type FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { checkBackupDir, listBackupFiles, readBackupFile, readCheckpoint, type BackupCheckpoint, type BackupFileEntry } from './backup-file.js';
import { checkLeftover, conflictError, describeRedundant, planVerifiedChain, type ChainPlan } from './chain.js';

/**
 * BEYOND_CHECKPOINT and REDUNDANT are not damage (`ok` stays true): a file a crash left beyond the
 * checkpoint, and one below it whose every record another file holds byte for byte. A sink opening the
 * backup adopts or removes the first kind and removes the second.
 */
/**
 * BACKUP_UNREADABLE: a file the file system would not read (EACCES, EIO, EISDIR, ...): its bytes were never
 * seen, so it is not called corrupt (the CLI exits 3, an I/O error, where damage exits 1).
 */
export type BackupProblemCode = 'BACKUP_CORRUPT' | 'BACKUP_UNREADABLE' | 'BACKUP_GAP' | 'NO_CHECKPOINT' | 'BEYOND_CHECKPOINT' | 'REDUNDANT';

/** The problem codes that are not damage. */
const HARMLESS: ReadonlySet<BackupProblemCode> = new Set(['BEYOND_CHECKPOINT', 'REDUNDANT']);

export interface BackupProblem {
  code: BackupProblemCode;
  message: string;
  file?: string;
  offset?: number;
  /** The first LSN concerned (for a gap: the first missing one). */
  lsn?: number;
  /** For a gap: the last missing LSN. */
  lastLsn?: number;
}

export interface VerifyResult {
  /** No corruption, no gap, and a checkpoint whose every LSN is in a verified file. */
  ok: boolean;
  /** Where the backup starts: the start LSN its checkpoint records (else the first file's first LSN). */
  firstLsn: number;
  /** False when the checkpoint (format 1, or none) does not record the start: a lost first file is then invisible. */
  firstLsnRecorded: boolean;
  /** Last LSN of the contiguous run of verified files from firstLsn (firstLsn - 1 when there is none). */
  lastLsn: number;
  checkpointLsn: number;
  /** Backup files listed. */
  files: number;
  /** Records in the files read (leftovers found REDUNDANT not counted: their records are in the chain). */
  records: number;
  /** Bytes of the files read (leftovers found REDUNDANT not counted). */
  bytes: number;
  problems: BackupProblem[];
}

export interface VerifyOptions {
  /** File system of the backup directory. Default: the real one. */
  fs?: FileSystem;
  /** Called after each file is read. */
  onProgress?: (p: { files: number; filesTotal: number }) => void;
}

/**
 * Verifies the backup in `dir`. BACKUP_NOT_FOUND when `dir` does not exist or is not a directory;
 * everything found wrong inside it is reported in `problems`.
 */
export async function verifyBackup(dir: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('dir must be a non-empty string');
  if (options === null || typeof options !== 'object') throw new TypeError('verifyBackup options must be an object');
  knownOptionsOnly(options, ['fs', 'onProgress'], 'verifyBackup');
  const fs = options.fs ?? nodeFileSystem;
  await checkBackupDir(fs, dir);
  const problems: BackupProblem[] = [];
  let checkpoint: BackupCheckpoint | null = null;
  try {
    checkpoint = await readCheckpoint(fs, dir);
    if (checkpoint === null) problems.push({ code: 'NO_CHECKPOINT', message: `${dir} has no CHECKPOINT: nothing in it is known to be complete`, file: `${dir}/CHECKPOINT` });
  } catch (err) {
    if (!(err instanceof FlushpointError)) throw err;
    problems.push({ code: 'BACKUP_CORRUPT', message: err.message, file: err.file, offset: err.offset });
  }
  const files = await listBackupFiles(fs, dir);
  const checkpointLsn = checkpoint?.checkpointLsn ?? 0;
  const firstLsn = checkpoint?.startLsn ?? files[0]?.firstLsn ?? 0;
  const startWhere = checkpoint?.startRecorded ? `the backup starts at LSN ${firstLsn}, its CHECKPOINT says; ` : '';
  // `next`: the first LSN no file seen so far holds. `lastLsn`: end of the verified run from firstLsn.
  let next = Math.max(1, firstLsn);
  let lastLsn = Math.max(0, firstLsn - 1);
  let runOpen = true;
  let records = 0;
  let bytes = 0;
  // Below the checkpoint: the chain, and the files it leaves over. Without a checkpoint: every file, in order.
  const beyondFiles = checkpoint === null ? [] : files.filter((f) => f.firstLsn > checkpointLsn);
  const below = checkpoint === null ? files : files.filter((f) => f.firstLsn <= checkpointLsn);
  const plan: ChainPlan = checkpoint === null ? { chain: below, path: [], leftovers: [], complete: false, coveredLsn: 0 } : await planVerifiedChain(fs, dir, below, next, checkpointLsn);
  const damaged = new Set<string>();
  let filesRead = 0;
  for (const f of [...plan.chain, ...beyondFiles]) {
    const file = `${dir}/${f.name}`;
    const beyond = checkpoint !== null && f.firstLsn > checkpointLsn;
    if (beyond) {
      problems.push({ code: 'BEYOND_CHECKPOINT', message: `${file} holds LSNs ${f.firstLsn}..${f.lastLsn}, beyond the checkpoint ${checkpointLsn} (left by a crash; the sink adopts or removes it on open)`, file });
    }
    let valid = true;
    try {
      const r = await readBackupFile(fs, dir, f);
      records += r.records.length;
      bytes += r.bytes;
    } catch (err) {
      valid = false;
      damaged.add(file);
      problems.push(corruptProblem(err, file));
    }
    options.onProgress?.({ files: ++filesRead, filesTotal: files.length });
    if (beyond) continue; // files sort by first LSN: every one from here on is beyond the checkpoint
    if (f.firstLsn < next) {
      const what = f.firstLsn < firstLsn ? `starts at LSN ${f.firstLsn}, before the backup's start ${firstLsn}` : `overlaps LSNs already held (it starts at ${f.firstLsn}, the files before it reach ${next - 1})`;
      problems.push({ code: 'BACKUP_CORRUPT', message: `${file} ${what}`, file, lsn: f.firstLsn });
      runOpen = false;
    } else if (f.firstLsn > next) {
      problems.push(gap(next, f.firstLsn - 1, `${next === firstLsn ? startWhere : ''}the next file is ${file}`, file));
      runOpen = false;
    }
    if (runOpen && valid && f.firstLsn === lastLsn + 1) lastLsn = f.lastLsn;
    else runOpen = false;
    next = Math.max(next, f.lastLsn + 1);
  }
  for (const f of plan.leftovers) {
    problems.push(...(await leftoverProblems(fs, dir, f, plan, damaged)));
    options.onProgress?.({ files: ++filesRead, filesTotal: files.length });
  }
  if (checkpointLsn >= next) {
    const where = next === Math.max(1, firstLsn) ? `${startWhere}no backup file holds any of it` : `the last file ends at LSN ${next - 1}`;
    problems.push(gap(next, checkpointLsn, `the checkpoint is ${checkpointLsn}; ${where}`));
  }
  const ok = problems.every((p) => HARMLESS.has(p.code));
  return { ok, firstLsn, firstLsnRecorded: checkpoint?.startRecorded ?? false, lastLsn, checkpointLsn, files: files.length, records, bytes, problems };
}

/** A file that does not verify (BACKUP_CORRUPT) or that the file system would not read (BACKUP_UNREADABLE), naming it. */
function corruptProblem(err: unknown, file: string): BackupProblem {
  if (err instanceof FlushpointError) return { code: 'BACKUP_CORRUPT', message: err.message, file: err.file ?? file, ...(err.offset === undefined ? {} : { offset: err.offset }) };
  if (isFileSystemError(err)) return { code: 'BACKUP_UNREADABLE', message: `${file}: cannot read: ${err.message}`, file };
  return { code: 'BACKUP_CORRUPT', message: `${file}: cannot read: ${(err as Error).message}`, file };
}

/** What a leftover of the chain is: REDUNDANT, or BACKUP_CORRUPT (damaged, or other bytes than the chain's). */
async function leftoverProblems(fs: FileSystem, dir: string, f: BackupFileEntry, plan: ChainPlan, damaged: ReadonlySet<string>): Promise<BackupProblem[]> {
  const file = `${dir}/${f.name}`;
  try {
    const v = await checkLeftover(fs, dir, f, plan.path, plan.coveredLsn);
    if (v.kind === 'redundant') return [{ code: 'REDUNDANT', message: describeRedundant(dir, f, v.heldBy, plan.coveredLsn), file, lsn: f.firstLsn, lastLsn: f.lastLsn }];
    if (v.kind === 'damaged') return [corruptProblem(v.error, file)];
    const err = conflictError(dir, f, v.other, v.lsn);
    return [{ code: 'BACKUP_CORRUPT', message: err.message, file, lsn: v.lsn }];
  } catch (err) {
    // A damaged file of the chain is reported once, where the chain reads it.
    if (err instanceof FlushpointError && err.file !== undefined && damaged.has(err.file)) return [];
    return [corruptProblem(err, file)];
  }
}

/** One missing LSN range; `file` is the file right after it, if any. */
function gap(fromLsn: number, toLsn: number, detail: string, file?: string): BackupProblem {
  const range = fromLsn === toLsn ? `LSN ${fromLsn} is` : `LSNs ${fromLsn}..${toLsn} are`;
  return { code: 'BACKUP_GAP', message: `${range} missing: no backup file holds them (${detail})`, lsn: fromLsn, lastLsn: toLsn, ...(file === undefined ? {} : { file }) };
}
