/**
 * The chain of a backup: which of the files listed hold startLsn..endLsn, each LSN in exactly one file.
 *
 * By the publish protocol the files below the checkpoint tile it: each starts where the one before it
 * ends. A crash can leave one more. On S3 a SIGKILLed sink's data PUT may be applied by the store after
 * a new sink listed the prefix (radosgw finishes a request whose client died); on a directory, a sink
 * frozen past its lock's staleness (SIGSTOP, a hung disk) may rename its file into place after a new
 * sink took the lock over. The new sink never saw that file, so it backs the same LSNs up again, under
 * another name when its flush covers another range. The file left over holds LSNs the chain holds too.
 *
 * Such a leftover is harmless when its records are the chain's, byte for byte: readers drop it from the
 * chain (verifyBackup reports it as REDUNDANT, not as damage; restoreBackup skips it), and a sink
 * opening the backup removes it. Records that differ are two histories in one backup: BACKUP_CORRUPT
 * naming both files. A leftover that does not verify (an upload damaged on its way, landed after its
 * writer died) holds nothing usable: verify reports it as BACKUP_CORRUPT, restore reads the chain
 * without it, a sink removes it.
 *
 * Choosing the chain: every file is an edge firstLsn -> lastLsn + 1 over LSN boundaries; the chain is a
 * path from startLsn to past endLsn: one ending at endLsn if any (a sink continues from that one), then
 * the one with the fewest files, then the one ending first. Files sort by first LSN, and an
 * edge always points forward, so one pass in that order is a topological order. When no path reaches
 * past endLsn (a file is missing or overlaps without matching a boundary), the chain is the path that
 * reaches furthest, followed by every file that path does not cover, in LSN order: the readers then
 * report the gap or overlap there exactly as for any damaged backup.
 */
import { FlushpointError, ErrorCode, assert, isFlushpointError } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { readBackupFile, type BackupFileEntry } from './backup-file.js';
import type { BodyRecord } from './format.js';

export interface ChainPlan {
  /** The files to read, in order: any starting before startLsn, the path, then (incomplete only) the files it does not cover. */
  chain: BackupFileEntry[];
  /** The path alone: files that tile startLsn..coveredLsn, in LSN order. */
  path: BackupFileEntry[];
  /** Files of the listing the path covers (every LSN of each in startLsn..coveredLsn is in a chain file). */
  leftovers: BackupFileEntry[];
  /** The path holds every LSN of startLsn..endLsn, each once. */
  complete: boolean;
  /** Last LSN of the path (startLsn - 1 when it is empty). */
  coveredLsn: number;
}

interface Reached {
  filesCount: number;
  /** The file whose last LSN + 1 is this boundary, on the best path; null at startLsn. */
  via: BackupFileEntry | null;
}

/**
 * Plans the chain for startLsn..endLsn over `files` (any order; files beyond endLsn are the caller's
 * to leave out). Files that start before startLsn are never leftovers: they go to the chain, first,
 * for the readers to report.
 */
export function planChain(files: readonly BackupFileEntry[], startLsn: number, endLsn: number, avoid: ReadonlySet<BackupFileEntry> = NONE): ChainPlan {
  assert(Number.isSafeInteger(startLsn) && startLsn >= 1 && endLsn >= startLsn - 1, `chain ${startLsn}..${endLsn}`);
  const sorted = [...files].sort((a, b) => a.firstLsn - b.firstLsn || a.lastLsn - b.lastLsn);
  const before = sorted.filter((f) => f.firstLsn < startLsn);
  const candidates = sorted.filter((f) => f.firstLsn >= startLsn);
  const reached = new Map<number, Reached>([[startLsn, { filesCount: 0, via: null }]]);
  for (const f of candidates) {
    assert(f.lastLsn >= f.firstLsn, `backup file ${f.name} ends before it starts`);
    if (avoid.has(f)) continue; // known not to verify: a leftover at best
    const from = reached.get(f.firstLsn);
    if (from === undefined) continue;
    const to = f.lastLsn + 1;
    const best = reached.get(to);
    if (best === undefined || from.filesCount + 1 < best.filesCount) reached.set(to, { filesCount: from.filesCount + 1, via: f });
  }
  // The end: past endLsn if any boundary is (fewest files, then the nearest); else the furthest.
  let end = startLsn;
  for (const [boundary, r] of reached) if (endsBetter(boundary, r, end, reached.get(end) as Reached, endLsn)) end = boundary;
  const path: BackupFileEntry[] = [];
  for (let b = end, r = reached.get(b); r?.via; b = r.via.firstLsn, r = reached.get(b)) path.push(r.via);
  path.reverse();
  const onPath = new Set(path);
  const complete = end > endLsn;
  const coveredLsn = end - 1;
  const leftovers: BackupFileEntry[] = [];
  const rest: BackupFileEntry[] = [];
  for (const f of candidates) {
    if (onPath.has(f)) continue;
    // Complete: every candidate starts in the path's range (the caller left out those past endLsn).
    if (f.lastLsn <= coveredLsn || (complete && f.firstLsn <= endLsn)) leftovers.push(f);
    else rest.push(f);
  }
  assert(path.length === 0 || (path[0] as BackupFileEntry).firstLsn === startLsn, `chain path starts at ${path[0]?.firstLsn}, not ${startLsn}`);
  return { chain: [...before, ...path, ...rest], path, leftovers, complete, coveredLsn };
}

const NONE: ReadonlySet<BackupFileEntry> = new Set();

/**
 * planChain, then, when the listing leaves files over (so another tiling may exist), reads the path's
 * files that a leftover overlaps (only those can be replaced): one that does not verify is avoided and the chain planned again, as long as the files that
 * verify still tile the range. So a damaged file a crash left (a killed sink's upload, damaged on its
 * way) never stands in the chain for files that hold the same LSNs intact, whatever its length. With no
 * other tiling, the plan stays as it was and readers report the damage. I/O errors are thrown.
 */
export async function planVerifiedChain(fs: FileSystem, dir: string, files: readonly BackupFileEntry[], startLsn: number, endLsn: number): Promise<ChainPlan> {
  const avoid = new Set<BackupFileEntry>();
  let plan = planChain(files, startLsn, endLsn);
  for (;;) {
    if (!plan.complete || plan.leftovers.length === 0) return plan;
    let damaged: BackupFileEntry | null = null;
    // Only a path file that a leftover overlaps can be routed around: no other tiling covers the rest.
    const leftovers = plan.leftovers;
    for (const f of plan.path) {
      if (!leftovers.some((l) => l.firstLsn <= f.lastLsn && l.lastLsn >= f.firstLsn)) continue;
      try {
        await readBackupFile(fs, dir, f);
      } catch (err) {
        if (!isFlushpointError(err, ErrorCode.BACKUP_CORRUPT)) throw err;
        damaged = f;
        break;
      }
    }
    if (damaged === null) return plan;
    avoid.add(damaged);
    const next = planChain(files, startLsn, endLsn, avoid);
    if (!next.complete) return plan;
    plan = next;
  }
}

/**
 * Is a path ending at `boundary` better than the best so far, ending at `end`? Past endLsn: one ending
 * right after endLsn (a checkpoint is always a file's last LSN: a sink continues from such a chain), then
 * the fewest files, then the nearest end. Else the furthest.
 */
function endsBetter(boundary: number, r: Reached, end: number, best: Reached, endLsn: number): boolean {
  const past = boundary > endLsn;
  if (past !== end > endLsn) return past;
  if (!past) return boundary > end;
  const exact = boundary === endLsn + 1;
  if (exact !== (end === endLsn + 1)) return exact;
  return r.filesCount < best.filesCount || (r.filesCount === best.filesCount && boundary < end);
}

export type LeftoverVerdict =
  /** Every LSN it shares with the path is in these files with the same record bytes. */
  | { kind: 'redundant'; heldBy: BackupFileEntry[] }
  /** `other` holds LSN `lsn` with other bytes: two histories. */
  | { kind: 'conflict'; other: BackupFileEntry; lsn: number }
  /** The leftover itself does not verify (BACKUP_CORRUPT naming it): it holds nothing a reader can use. */
  | { kind: 'damaged'; error: FlushpointError };

/**
 * Compares a leftover with the chain's path, record by record over the LSNs both hold (the leftover's
 * LSNs past `coveredLsn` are compared with nothing: they are beyond the checkpoint). Each record is
 * compared as the WAL framed it (CRC, length, LSN, batch delta, salt, payload), after both files were
 * fully verified. A file of the path that does not verify throws, as readBackupFile does.
 */
export async function checkLeftover(fs: FileSystem, dir: string, leftover: BackupFileEntry, path: readonly BackupFileEntry[], coveredLsn: number): Promise<LeftoverVerdict> {
  let mine: BodyRecord[];
  try {
    mine = (await readBackupFile(fs, dir, leftover)).records;
  } catch (err) {
    if (isFlushpointError(err, ErrorCode.BACKUP_CORRUPT)) return { kind: 'damaged', error: err };
    throw err;
  }
  const lastLsn = Math.min(leftover.lastLsn, coveredLsn);
  const heldBy: BackupFileEntry[] = [];
  for (const other of path) {
    if (other.lastLsn < leftover.firstLsn || other.firstLsn > lastLsn) continue;
    heldBy.push(other);
    const theirs = (await readBackupFile(fs, dir, other)).records;
    const fromLsn = Math.max(leftover.firstLsn, other.firstLsn);
    const toLsn = Math.min(lastLsn, other.lastLsn);
    for (let lsn = fromLsn; lsn <= toLsn; lsn++) {
      const a = mine[lsn - leftover.firstLsn] as BodyRecord;
      const b = theirs[lsn - other.firstLsn] as BodyRecord;
      assert(a.lsn === lsn && b.lsn === lsn, `verified files ${leftover.name} and ${other.name} hold LSN ${lsn} where expected`);
      if (Buffer.compare(a.record, b.record) !== 0) return { kind: 'conflict', other, lsn };
    }
  }
  const held = heldBy.reduce((n, f) => n + Math.min(lastLsn, f.lastLsn) - Math.max(leftover.firstLsn, f.firstLsn) + 1, 0);
  assert(held === lastLsn - leftover.firstLsn + 1, `leftover ${leftover.name}: the chain holds ${held} of its LSNs ${leftover.firstLsn}..${lastLsn}`);
  return { kind: 'redundant', heldBy };
}

/** The one line a reader reports for a leftover found redundant. */
export function describeRedundant(dir: string, leftover: BackupFileEntry, heldBy: readonly BackupFileEntry[], coveredLsn: number): string {
  const beyond = leftover.lastLsn > coveredLsn ? ` (its LSNs ${coveredLsn + 1}..${leftover.lastLsn} are beyond the checkpoint)` : '';
  const held = heldBy.map((f) => `${dir}/${f.name}`).join(', ');
  return `${dir}/${leftover.name} holds LSNs ${leftover.firstLsn}..${Math.min(leftover.lastLsn, coveredLsn)} byte for byte as ${held} holds them${beyond}: a duplicate left by a crash (a killed sink's upload that landed late), not read by restore; a sink removes it on open`;
}

/** BACKUP_CORRUPT for two files holding one LSN with different bytes. */
export function conflictError(dir: string, leftover: BackupFileEntry, other: BackupFileEntry, lsn: number): FlushpointError {
  return new FlushpointError(
    ErrorCode.BACKUP_CORRUPT,
    `backup files ${dir}/${leftover.name} and ${dir}/${other.name} both hold LSN ${lsn}, with different bytes: two histories in one backup`,
    { file: `${dir}/${leftover.name}`, lsn },
  );
}
