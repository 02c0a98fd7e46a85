/**
 * Opening a backup after a crash: read the checkpoint, check it against the WAL, and decide about files
 * a crash left beyond the checkpoint. The target (target.ts: a directory or an S3 prefix) was prepared
 * first (a directory's temp files swept); it is read through its FileSystem view.
 *
 * A file beyond the checkpoint was published but never acknowledged (the crash came before the
 * checkpoint). Decision table, in LSN order (the first refusal removes every later file too, since
 * those no longer continue the checkpoint):
 *
 *   straddles the checkpoint                         -> BACKUP_CORRUPT (cannot happen by our publish order)
 *   does not start at checkpoint + 1                 -> remove
 *   read fails with an I/O error                     -> fail the open (BACKUP_FAILED); the file stays
 *   does not verify (BACKUP_CORRUPT)                 -> remove
 *   holds LSNs past the WAL's durable LSN            -> remove (another history: the WAL never had them)
 *   a record differs from the WAL's copy             -> remove (another history)
 *   overlaps a file adopted before it                -> remove (a crash's leftover: nothing needs it)
 *   otherwise                                        -> adopt: the checkpoint moves to its last LSN
 *
 * Below the checkpoint, the files tile it (chain.ts); a crash can leave one more there, a killed sink's
 * upload that landed after a new sink listed the backup. When the chain holds its records byte for byte,
 * or it does not verify (the chain holds its LSNs), it is removed (with the files beyond); when a record
 * differs it stays (verify reports it) unless it straddles the checkpoint, which is BACKUP_CORRUPT as
 * before: the sink's next file would overlap it. One that holds the chain's records byte for byte and
 * runs past the checkpoint (a newer sink's file, when a frozen older sink's late CHECKPOINT moved the
 * checkpoint back) is adopted like a file beyond it, never removed: it may hold the only copy of LSNs
 * past the checkpoint. A gap between the checkpoint and the WAL is refused before anything is removed.
 */
import { FlushpointError, ErrorCode, assert, isFlushpointError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { FileSystem } from '../fs/file-system.js';
import type { Wal } from '../wal/index.js';
import { checkpointBytes, listBackupFiles, readBackupFile, readCheckpoint, type BackupFileEntry } from './backup-file.js';
import type { BackupTarget } from './target.js';
import { checkLeftover, conflictError, planVerifiedChain } from './chain.js';

export interface RecoveredBackup {
  /** Every LSN <= this is in the backup (the persisted checkpoint, moved over adopted files). */
  checkpointLsn: number;
  /** The first LSN of the backup, recorded in every checkpoint (fixed when the backup is created). */
  startLsn: number;
  adopted: number;
  removed: number;
}

/** The lowest LSN the WAL can still hand out: its first record, or (empty) the next LSN it will make durable. */
export function walStartLsn(wal: Wal): number {
  return wal.firstLsn > 0 ? wal.firstLsn : wal.durableLsn + 1;
}

/** Brings a prepared (and, for a directory, locked) backup target to a state the sink continues from. */
export async function recoverBackupDir(target: BackupTarget, wal: Wal, logger: Logger | undefined): Promise<RecoveredBackup> {
  const fs = target.preparedReadFs ?? target.readFs; // S3: the CHECKPOINT prepare() read, not a second read
  const dir = target.location;
  // No checkpoint yet: the backup starts where the WAL starts.
  const persisted = await readCheckpoint(fs, dir);
  let checkpoint = persisted?.checkpointLsn ?? walStartLsn(wal) - 1;
  const startLsn = persisted?.startLsn ?? checkpoint + 1;
  if (checkpoint > wal.durableLsn) {
    throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup checkpoint ${checkpoint} is ahead of the WAL's durable LSN ${wal.durableLsn}: is this the backup of another WAL?`, {
      lsn: checkpoint,
    });
  }
  let adopted = 0;
  const listed = await listBackupFiles(fs, dir);
  if (persisted) await checkSameWal(fs, dir, listed, checkpoint, wal);
  const { removed, extenders } = await leftoversBelow(fs, dir, listed, startLsn, checkpoint, logger);
  const persistedLsn = checkpoint;
  // A leftover that holds the chain's records byte for byte up to the checkpoint and more after it (a
  // newer sink's file, when a frozen older sink's late CHECKPOINT moved the checkpoint back): adopted
  // like a file beyond the checkpoint, the longest first. Never removed: it may be the only copy. Only the
  // longest is tried: if it is refused, a shorter one is not adopted instead, since the refused file would
  // stay beside the chain, straddling the new checkpoint, and the next open would refuse it again; the
  // sink stops now with BACKUP_CORRUPT naming it, for an operator to look at.
  for (const f of [...extenders].sort((a, b) => b.lastLsn - a.lastLsn)) {
    const refused = await whyNotAdopt(fs, dir, f, wal);
    if (refused === null) {
      checkpoint = f.lastLsn;
      adopted++;
      logger?.warn({ dir, file: f.name, checkpointLsn: checkpoint }, 'backup checkpoint moved over a file that continues it past the checkpoint read (a late checkpoint of an older sink had moved it back)');
      break;
    }
    throw new FlushpointError(ErrorCode.BACKUP_CORRUPT, `backup file ${dir}/${f.name} straddles the checkpoint ${persistedLsn} and cannot be adopted: ${refused}`, { file: `${dir}/${f.name}`, offset: 0 });
  }
  for (const f of listed) {
    if (f.firstLsn <= persistedLsn) continue; // the chain's, or a leftover decided above
    let refused: string | null;
    if (f.firstLsn <= checkpoint) refused = `it overlaps LSNs ${f.firstLsn}..${Math.min(f.lastLsn, checkpoint)} adopted from another file`;
    else refused = f.firstLsn === checkpoint + 1 ? await whyNotAdopt(fs, dir, f, wal) : `it does not start at LSN ${checkpoint + 1}`;
    if (refused === null) {
      checkpoint = f.lastLsn;
      adopted++;
    } else {
      logger?.warn({ dir, file: f.name, reason: refused }, 'backup file beyond the checkpoint removed');
      removed.push(f.name);
    }
  }
  assert(checkpoint <= wal.durableLsn, `adoption reached ${checkpoint}, beyond the WAL's durable LSN ${wal.durableLsn}`);
  // A gap is refused before anything is removed or published: the files stay as they were found.
  const walStart = walStartLsn(wal);
  if (walStart > checkpoint + 1) {
    throw new FlushpointError(ErrorCode.BACKUP_GAP, `the WAL starts at LSN ${walStart} but the backup checkpoint is ${checkpoint}: LSNs ${checkpoint + 1}..${walStart - 1} are gone`, {
      lsn: checkpoint + 1,
    });
  }
  if (removed.length > 0 && target.claimsByCheckpoint) {
    // Nothing locks an S3 prefix: take it over first (a conditional checkpoint; BACKUP_LOCKED if another
    // sink published since we read it), so a sink still writing there cannot name what we delete.
    await target.publishCheckpoint(checkpointBytes(checkpoint, startLsn));
    await target.deleteFiles(removed);
  } else {
    if (removed.length > 0) await target.deleteFiles(removed);
    if (adopted > 0) await target.publishCheckpoint(checkpointBytes(checkpoint, startLsn));
  }
  return { checkpointLsn: checkpoint, startLsn, adopted, removed: removed.length };
}

/**
 * Leftovers of a crash below the checkpoint (chain.ts) to remove: those whose records the chain holds
 * byte for byte. No I/O unless the listing holds more files than the chain.
 */
async function leftoversBelow(
  fs: FileSystem,
  dir: string,
  listed: readonly BackupFileEntry[],
  startLsn: number,
  checkpointLsn: number,
  logger: Logger | undefined,
): Promise<{ removed: string[]; extenders: BackupFileEntry[] }> {
  const plan = await planVerifiedChain(
    fs,
    dir,
    listed.filter((f) => f.firstLsn <= checkpointLsn),
    startLsn,
    checkpointLsn,
  );
  const straddling = (f: BackupFileEntry): boolean => f.lastLsn > checkpointLsn;
  const straddler = plan.chain.find(straddling); // leftovers are decided below
  if (straddler !== undefined) {
    throw new FlushpointError(ErrorCode.BACKUP_CORRUPT, `backup file ${dir}/${straddler.name} straddles the checkpoint ${checkpointLsn}`, { file: `${dir}/${straddler.name}`, offset: 0 });
  }
  if (!plan.complete) return { removed: [], extenders: [] }; // a damaged chain: verify reports it, and a leftover cannot be told apart
  const out: string[] = [];
  const extenders: BackupFileEntry[] = [];
  for (const f of plan.leftovers) {
    let verdict: Awaited<ReturnType<typeof checkLeftover>>;
    try {
      verdict = await checkLeftover(fs, dir, f, plan.path, plan.coveredLsn);
    } catch (err) {
      if (!isFlushpointError(err, ErrorCode.BACKUP_CORRUPT)) {
        throw new FlushpointError(ErrorCode.BACKUP_FAILED, `cannot read backup files of ${dir} to compare ${f.name} (a leftover below the checkpoint) with the chain: ${(err as Error).message}`, {
          cause: err,
          file: `${dir}/${f.name}`,
        });
      }
      // A file of the chain is damaged: nothing is removed on its word (verify reports it).
      if (straddling(f)) throw err;
      logger?.warn({ dir, file: f.name, reason: err.message }, 'backup file below the checkpoint left in place: the chain it overlaps does not verify');
      continue;
    }
    if (verdict.kind === 'redundant' && straddling(f)) {
      extenders.push(f);
      continue;
    }
    if (verdict.kind === 'redundant') {
      logger?.warn({ dir, file: f.name, heldBy: verdict.heldBy.map((h) => h.name) }, 'backup file below the checkpoint removed: a leftover of a crash, its records held byte for byte by the chain');
      out.push(f.name);
      continue;
    }
    if (verdict.kind === 'damaged') {
      logger?.warn({ dir, file: f.name, reason: verdict.error.message }, 'backup file below the checkpoint removed: a leftover of a crash that does not verify (the chain holds its LSNs)');
      out.push(f.name);
      continue;
    }
    const conflict = conflictError(dir, f, verdict.other, verdict.lsn);
    if (straddling(f)) throw conflict;
    logger?.warn({ dir, file: f.name, reason: conflict.message }, 'backup file below the checkpoint left in place: it differs from the chain');
  }
  return { removed: out, extenders };
}

/**
 * Refuses a backup of another WAL (BACKUP_GAP), before anything is adopted, removed or published: its
 * record at the checkpoint LSN, in the chain's file that ends there, must be the WAL's (the same
 * payload), wherever the WAL still holds that LSN. Without this a sink pointed at another database's
 * backup (the wrong directory or prefix, a database recreated and filled before its sink was attached)
 * continued it past its checkpoint, and verify and restore then gave the two histories end to end.
 * Where the WAL starts just after the checkpoint there is no record to compare, and nothing is said; a
 * damaged file is left to verify and restore, which name it.
 */
async function checkSameWal(fs: FileSystem, dir: string, listed: readonly BackupFileEntry[], checkpoint: number, wal: Wal): Promise<void> {
  if (checkpoint < 1 || checkpoint < walStartLsn(wal) || checkpoint > wal.durableLsn) return;
  const file = listed.find((f) => f.lastLsn === checkpoint && f.firstLsn <= checkpoint);
  if (file === undefined) return;
  let mine: Uint8Array | undefined;
  try {
    mine = (await readBackupFile(fs, dir, file)).records.at(-1)?.payload;
  } catch (err) {
    if (isFlushpointError(err, ErrorCode.BACKUP_CORRUPT)) return;
    throw err;
  }
  if (mine === undefined) return;
  for await (const r of wal.read({ fromLsn: checkpoint, toLsn: checkpoint })) {
    if (Buffer.compare(mine, r.payload) !== 0) {
      throw new FlushpointError(
        ErrorCode.BACKUP_GAP,
        `backup ${dir} is not this WAL's: its record at the checkpoint LSN ${checkpoint} (${dir}/${file.name}) differs from the record of WAL ${wal.dir} at that LSN (another database's backup?)`,
        { lsn: checkpoint, file: `${dir}/${file.name}` },
      );
    }
  }
}

/**
 * Why a file that continues the checkpoint must not be adopted, or null to adopt it. Only a verified
 * defect removes a file; an I/O error fails the open, since the file may be fine. The WAL decides what
 * the records are, where it still has them.
 */
async function whyNotAdopt(fs: FileSystem, dir: string, f: BackupFileEntry, wal: Wal): Promise<string | null> {
  let records: Array<{ lsn: number; payload: Uint8Array }>;
  try {
    records = (await readBackupFile(fs, dir, f)).records;
  } catch (err) {
    if (isFlushpointError(err, ErrorCode.BACKUP_CORRUPT)) return `it does not verify: ${err.message}`;
    throw new FlushpointError(ErrorCode.BACKUP_FAILED, `cannot read backup file ${dir}/${f.name} (beyond the checkpoint) to adopt it: ${(err as Error).message}`, {
      cause: err,
      file: `${dir}/${f.name}`,
    });
  }
  assert(records.length === f.lastLsn - f.firstLsn + 1, `verified file ${f.name} holds ${records.length} records`);
  if (f.lastLsn > wal.durableLsn) return `it holds LSNs up to ${f.lastLsn}, beyond the WAL's durable LSN ${wal.durableLsn}`;
  const fromLsn = Math.max(f.firstLsn, walStartLsn(wal));
  if (fromLsn > f.lastLsn) return null; // the WAL no longer has any of them: nothing to compare with
  for await (const r of wal.read({ fromLsn, toLsn: f.lastLsn })) {
    const mine = records[r.lsn - f.firstLsn];
    assert(mine !== undefined && mine.lsn === r.lsn, `backup file ${f.name} has LSN ${r.lsn}`);
    if (Buffer.compare(mine.payload, r.payload) !== 0) return `its LSN ${r.lsn} differs from the WAL's`;
  }
  return null;
}
