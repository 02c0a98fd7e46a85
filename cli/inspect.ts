/**
 * `flushpoint inspect DIR [--json]`: shows what is in a WAL, engine or backup directory, read-only
 * (it takes no lock and repairs nothing, so it is safe beside a running process).
 *
 *   WAL directory      every segment: first and last LSN, size, valid / torn tail / corrupt
 *   engine directory   its wal/ as above, and its checkpoints/: the LSN each one covers, its size, and
 *                      valid / damaged (every block read and its checksums verified, as an open would)
 *   backup directory   its checkpoint (and where the backup starts), every file with its LSN range,
 *                      record count and validity (header, CRCs, LSNs all verified)
 *
 * Exit codes: 0 everything read is valid; 1 something is damaged (a corrupt segment, checkpoint or backup file);
 * 2 usage; 3 the directory does not exist or is none of the three kinds, or a file in it cannot be read
 * (EACCES, EIO, ...: state 'unreadable', not 'corrupt': nothing says its bytes are damaged).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { listBackupFiles, readBackupFile, readCheckpoint } from '../backup/backup-file.js';
import { CHECKPOINT_NAME, parseBackupFileName } from '../backup/format.js';
import { checkpointLsnOf, readEngineCheckpoint } from '../engine/index.js';
import { isFileSystemError, nodeFileSystem } from '../fs/index.js';
import { recoverSegments, SEGMENT_NAME_RE } from '../wal/index.js';
import { parseCommandLine, UsageError, type CliIo, type Subcommand } from './subcommand.js';

export const inspectUsage = `usage: flushpoint inspect DIR [--json]

  show a WAL, engine or backup directory, read-only (no lock taken, nothing repaired):
    WAL      segments with their first and last LSN, size, and validity (ok, torn tail, corrupt)
    engine   its wal/ as above, and its checkpoints/ with the LSN each covers and validity
    backup   its checkpoint, and every file with its LSN range, records and validity

  --json   print the result as JSON

exit codes: 0 all valid; 1 something is damaged; 2 usage; 3 DIR is missing or none of the three kinds,
or a file in it cannot be read (state unreadable)
`;

const EXIT_OK = 0;
const EXIT_DAMAGED = 1;
const EXIT_USAGE = 2;
const EXIT_NOT_FOUND = 3;
/** A file could not be read (the table's "not found or an I/O error"). */
const EXIT_IO = 3;

export interface SegmentInfo {
  name: string;
  firstLsn: number;
  lastLsn: number;
  /** Byte offset just past its last valid record (the rest is preallocated zeros, or a torn tail). */
  endOffset: number;
  sizeBytes: number;
  state: 'ok' | 'torn-tail' | 'corrupt' | 'unreadable';
  problem: string | null;
}

export interface WalInfo {
  dir: string;
  firstLsn: number;
  lastLsn: number;
  segments: SegmentInfo[];
  /** The log as a whole: WAL_CORRUPT's message, or null. */
  problem: string | null;
}

export interface BackupFileInfo {
  name: string;
  firstLsn: number;
  lastLsn: number;
  records: number | null;
  sizeBytes: number;
  beyondCheckpoint: boolean;
  state: 'ok' | 'corrupt' | 'unreadable';
  problem: string | null;
}

export interface BackupInfo {
  dir: string;
  checkpointLsn: number | null;
  startLsn: number | null;
  checkpointProblem: string | null;
  files: BackupFileInfo[];
}

export interface EngineCheckpointInfo {
  name: string;
  /** The LSN its name says it covers (the header must agree, or it is damaged). */
  lsn: number;
  sizeBytes: number;
  /** Entries it holds when valid, else null. */
  entries: number | null;
  state: 'ok' | 'damaged' | 'unreadable';
  /** Why it is damaged (the byte offset and what is wrong), or null. */
  problem: string | null;
}

export interface InspectResult {
  kind: 'wal' | 'engine' | 'backup';
  dir: string;
  ok: boolean;
  /** Some file could not be read (state 'unreadable'): exit 3, unless something is damaged too (exit 1). */
  unreadable: boolean;
  /** Something read is damaged (a corrupt segment or backup file, a damaged checkpoint, a log-level problem). */
  damaged: boolean;
  wal?: WalInfo;
  checkpoints?: EngineCheckpointInfo[];
  backup?: BackupInfo;
}

async function sizeOf(file: string): Promise<number> {
  return (await fsp.stat(file)).size;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] as string;
}

export async function inspectWal(dir: string): Promise<WalInfo> {
  const names = (await fsp.readdir(dir)).filter((n) => SEGMENT_NAME_RE.test(n)).sort();
  const segments: SegmentInfo[] = [];
  try {
    const r = await recoverSegments(nodeFileSystem, dir, names, false);
    for (const s of r.segments) {
      const torn = r.torn !== null && r.torn.file.endsWith(`/${s.name}`);
      segments.push({ name: s.name, firstLsn: s.firstLsn, lastLsn: s.lastLsn, endOffset: s.endOffset, sizeBytes: s.fileSizeBytes, state: torn ? 'torn-tail' : 'ok', problem: torn ? `${r.torn?.bytes} bytes at offset ${r.torn?.offset}: ${r.torn?.reason}` : null });
    }
    return { dir, firstLsn: segments[0]?.firstLsn ?? 0, lastLsn: r.lastLsn, segments, problem: null };
  } catch (err) {
    const file = (err as { file?: string }).file;
    // The scan stops at the first damage: rescan each segment alone for what it holds.
    for (const name of names) {
      const sizeBytes = await sizeOf(path.join(dir, name));
      const broken = file !== undefined && file.endsWith(`/${name}`);
      try {
        const one = await recoverSegments(nodeFileSystem, dir, [name], false);
        const s = one.segments[0];
        segments.push({ name, firstLsn: s?.firstLsn ?? 0, lastLsn: s?.lastLsn ?? 0, endOffset: s?.endOffset ?? 0, sizeBytes, state: broken ? 'corrupt' : 'ok', problem: broken ? firstLine(err) : null });
      } catch (e) {
        // Scanned on its own, every segment is the last one: its own error would call a middle segment
        // "the last segment". The log's scan named this file: say what that scan said.
        segments.push({ name, firstLsn: parseInt(name, 16), lastLsn: 0, endOffset: 0, sizeBytes, state: isFileSystemError(e) ? 'unreadable' : 'corrupt', problem: broken ? firstLine(err) : `read on its own: ${firstLine(e)}` });
      }
    }
    return { dir, firstLsn: segments[0]?.firstLsn ?? 0, lastLsn: 0, segments, problem: firstLine(err) };
  }
}

export async function inspectBackup(dir: string): Promise<BackupInfo> {
  let checkpointLsn: number | null = null;
  let startLsn: number | null = null;
  let checkpointProblem: string | null = null;
  try {
    const c = await readCheckpoint(nodeFileSystem, dir);
    if (c === null) checkpointProblem = 'no checkpoint: nothing in this backup is published yet';
    else ({ checkpointLsn, startLsn } = c);
  } catch (err) {
    checkpointProblem = firstLine(err);
  }
  const files: BackupFileInfo[] = [];
  for (const entry of await listBackupFiles(nodeFileSystem, dir)) {
    const sizeBytes = await sizeOf(path.join(dir, entry.name));
    const beyondCheckpoint = checkpointLsn !== null && entry.lastLsn > checkpointLsn;
    try {
      const f = await readBackupFile(nodeFileSystem, dir, entry);
      files.push({ ...entry, records: f.records.length, sizeBytes, beyondCheckpoint, state: 'ok', problem: null });
    } catch (err) {
      files.push({ ...entry, records: null, sizeBytes, beyondCheckpoint, state: isFileSystemError(err) ? 'unreadable' : 'corrupt', problem: firstLine(err) });
    }
  }
  return { dir, checkpointLsn, startLsn, checkpointProblem, files };
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Every checkpoint file, read whole and verified as the engine's open would (header, blocks, footer). */
async function engineCheckpoints(dir: string): Promise<EngineCheckpointInfo[]> {
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const out: EngineCheckpointInfo[] = [];
  for (const name of names.sort()) {
    const lsn = checkpointLsnOf(name);
    if (lsn === null) continue;
    const file = path.join(dir, name);
    const sizeBytes = await sizeOf(file);
    try {
      const c = await readEngineCheckpoint(nodeFileSystem, file, lsn, yieldToLoop);
      out.push({ name, lsn, sizeBytes, entries: c.entries, state: 'ok', problem: null });
    } catch (err) {
      out.push({ name, lsn, sizeBytes, entries: null, state: isFileSystemError(err) ? 'unreadable' : 'damaged', problem: firstLine(err) });
    }
  }
  return out;
}

/** A path inspect cannot read as a flushpoint directory: its exit code, and a stable code for the line. */
class InspectError extends Error {
  constructor(
    readonly exitCode: number,
    readonly code: 'ENOENT' | 'ENOTDIR' | 'WRONG_DIRECTORY',
    message: string,
  ) {
    super(message);
  }
}

export async function inspect(dir: string): Promise<InspectResult> {
  const st = await fsp.stat(dir).catch(() => null);
  if (st === null) throw new InspectError(EXIT_NOT_FOUND, 'ENOENT', `${dir} does not exist`);
  if (!st.isDirectory()) throw new InspectError(EXIT_NOT_FOUND, 'ENOTDIR', `${dir} is not a directory`);
  const names = await fsp.readdir(dir);
  const isDir = async (name: string): Promise<boolean> => (await fsp.stat(path.join(dir, name)).catch(() => null))?.isDirectory() ?? false;
  if (names.includes('wal') && (await isDir('wal'))) {
    const wal = await inspectWal(path.join(dir, 'wal'));
    const checkpoints = await engineCheckpoints(path.join(dir, 'checkpoints'));
    const unreadable = wal.segments.some((s) => s.state === 'unreadable') || checkpoints.some((c) => c.state === 'unreadable');
    const damaged = wal.segments.some((s) => s.state === 'corrupt') || checkpoints.some((c) => c.state === 'damaged');
    return { kind: 'engine', dir, ok: walOk(wal) && checkpoints.every((c) => c.state === 'ok'), unreadable, damaged, wal, checkpoints };
  }
  if (names.some((n) => SEGMENT_NAME_RE.test(n))) {
    const wal = await inspectWal(dir);
    return { kind: 'wal', dir, ok: walOk(wal), unreadable: wal.segments.some((s) => s.state === 'unreadable'), damaged: wal.segments.some((s) => s.state === 'corrupt'), wal };
  }
  if (names.includes(CHECKPOINT_NAME) || names.some((n) => parseBackupFileName(n) !== null)) {
    const backup = await inspectBackup(dir);
    const ok = backup.checkpointProblem === null && backup.files.every((f) => f.state === 'ok');
    const damaged = backup.checkpointProblem !== null || backup.files.some((f) => f.state === 'corrupt');
    return { kind: 'backup', dir, ok, unreadable: backup.files.some((f) => f.state === 'unreadable'), damaged, backup };
  }
  throw new InspectError(EXIT_NOT_FOUND, 'WRONG_DIRECTORY', `${dir} is not a WAL, engine or backup directory (no segments, no wal/, no backup checkpoint or files)`);
}

function walOk(wal: WalInfo): boolean {
  return wal.problem === null && wal.segments.every((s) => s.state !== 'corrupt' && s.state !== 'unreadable');
}

/** A plain text table: columns padded to their widest cell, numbers right-aligned. */
function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells.map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd()).join('\n') + '\n';
}

function renderWal(w: WalInfo): string {
  const range = w.segments.length === 0 ? 'empty' : `LSN ${w.firstLsn}..${w.lastLsn}`;
  let out = `WAL ${w.dir}: ${w.segments.length} segment(s), ${w.problem === null ? range : 'DAMAGED'}\n`;
  if (w.problem !== null) out += `  ${w.problem}\n`;
  if (w.segments.length > 0) out += table(['segment', 'first LSN', 'last LSN', 'valid bytes', 'file bytes', 'state', 'problem'], w.segments.map((s) => [s.name, s.firstLsn, s.lastLsn, s.endOffset, s.sizeBytes, s.state, s.problem ?? '']));
  return out;
}

function render(r: InspectResult): string {
  if (r.kind === 'wal') return renderWal(r.wal as WalInfo);
  if (r.kind === 'engine') {
    const c = r.checkpoints ?? [];
    let out = `engine ${r.dir}\n\n${renderWal(r.wal as WalInfo)}\ncheckpoints: ${c.length === 0 ? 'none' : ''}\n`;
    if (c.length > 0) out += table(['file', 'LSN', 'entries', 'bytes', 'state', 'problem'], c.map((x) => [x.name, x.lsn, x.entries ?? '-', x.sizeBytes, x.state, x.problem ?? '']));
    return out;
  }
  const b = r.backup as BackupInfo;
  let out = `backup ${b.dir}: checkpoint ${b.checkpointLsn === null ? 'none' : `LSN ${b.checkpointLsn} (from LSN ${b.startLsn})`}, ${b.files.length} file(s)\n`;
  if (b.checkpointProblem !== null) out += `  ${b.checkpointProblem}\n`;
  if (b.files.length > 0) {
    out += table(
      ['file', 'first LSN', 'last LSN', 'records', 'bytes', 'state', 'problem'],
      b.files.map((f) => [f.name, f.firstLsn, f.lastLsn, f.records ?? '-', f.sizeBytes, f.state + (f.beyondCheckpoint ? ' (beyond checkpoint)' : ''), f.problem ?? '']),
    );
  }
  return out;
}

export const inspectCommand: Subcommand = {
  async run(args, io) {
    let parsed;
    try {
      // The shared parser, as every command: its messages ("unknown flag '--bogus'"), not node's.
      parsed = parseCommandLine(args, { json: { type: 'boolean' } }, inspectUsage);
    } catch (err) {
      io.stderr.write(`flushpoint inspect: ${err instanceof UsageError ? err.message : firstLine(err)}\n\n${inspectUsage}`);
      return EXIT_USAGE;
    }
    if (parsed.values.help) {
      io.stdout.write(inspectUsage);
      return EXIT_OK;
    }
    if (parsed.positionals.length !== 1) {
      io.stderr.write(`flushpoint inspect: give one directory\n\n${inspectUsage}`);
      return EXIT_USAGE;
    }
    const dir = path.resolve(io.cwd, parsed.positionals[0] as string);
    let result: InspectResult;
    try {
      result = await inspect(dir);
    } catch (err) {
      if (!(err instanceof InspectError)) throw err;
      io.stderr.write(`flushpoint inspect: ${err.code}: ${err.message}\n`);
      return err.exitCode;
    }
    io.stdout.write(parsed.values.json ? JSON.stringify(result, null, 2) + '\n' : render(result));
    // Damage found wins (exit 1); only unreadable files is an I/O error (exit 3).
    return result.damaged ? EXIT_DAMAGED : result.unreadable ? EXIT_IO : result.ok ? EXIT_OK : EXIT_DAMAGED;
  },
};
