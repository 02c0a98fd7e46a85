/**
 * `flushpoint backup verify DIR [--json]` and `flushpoint backup restore --from DIR --to DIR
 * [--until-lsn N]`. Exit codes: cli/exit-codes.ts (0 complete, 1 damaged, 2 usage, 3 not found or I/O,
 * ...). A progress bar is drawn only on a terminal.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { restoreBackup } from '../backup/restore.js';
import { openBackupSource } from '../backup/s3-source.js';
import { verifyBackup } from '../backup/verify.js';
import { ErrorCode, FlushpointError } from '../core/errors.js';
import { createProgress } from '../core/progress.js';
import { ExitCode } from './exit-codes.js';
import { parseCommandLine, positiveInteger, UsageError, type CliIo, type Subcommand } from './subcommand.js';

const s3Usage = `
  s3://BUCKET/PREFIX   a backup in a bucket; --endpoint URL for a store other than AWS (path-style);
                       keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
`;

const verifyUsage = `usage: flushpoint backup verify DIR|s3://BUCKET/PREFIX [--endpoint URL] [--json]

  read every file of the backup in DIR and report corruption, gaps and files beyond the checkpoint;
  exits 0 only when every LSN up to the checkpoint is present and intact, 1 when it is not, 3 when a
  file cannot be read (BACKUP_UNREADABLE: permission, EIO; nothing says its bytes are damaged)

  --json   print the result as JSON (ok, firstLsn, lastLsn, checkpointLsn, files, records, bytes, problems)
${s3Usage}`;

const restoreUsage = `usage: flushpoint backup restore --from DIR|s3://BUCKET/PREFIX [--endpoint URL] --to DIR [--until-lsn N]

  write a new WAL directory holding exactly the backup's LSNs up to N, verifying every file read;
  exits 0 only when the restore is complete and durable

  --from DIR       the backup directory
  --to DIR         the new WAL directory: missing or empty
  --until-lsn N    the last LSN to restore (a whole number >= 1; default: the backup's checkpoint)
${s3Usage}`;

export const backupUsage = `usage: flushpoint backup verify DIR|s3://BUCKET/PREFIX [--endpoint URL] [--json]
       flushpoint backup restore --from DIR|s3://BUCKET/PREFIX [--endpoint URL] --to DIR [--until-lsn N]

  verify    read every file of the backup in DIR and report corruption, gaps and files beyond the
            checkpoint; exits 0 only when every LSN up to the checkpoint is present and intact
  restore   write a new WAL directory holding exactly the backup's LSNs up to N (default: the
            checkpoint); the target must be missing or empty; exits 0 only when it is complete

run 'flushpoint backup verify --help' or 'flushpoint backup restore --help' for details;
'flushpoint --help' lists the exit codes
`;

/** An error for a path that is not there or not a directory, with Node's errno code. */
function pathError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

async function existingDirectory(what: string, dir: string): Promise<void> {
  let stat: import('node:fs').Stats;
  try {
    stat = await fs.stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    const reason = (err as Error).message.replace(/^[A-Z]+: /, ''); // the code is printed once, in front
    throw pathError(code, code === 'ENOENT' ? `${what} ${dir} does not exist` : `${what} ${dir} cannot be read: ${reason}`);
  }
  if (!stat.isDirectory()) throw pathError('ENOTDIR', `${what} ${dir} is not a directory`);
}

async function verify(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(args, { json: { type: 'boolean' }, endpoint: { type: 'string' } }, verifyUsage);
  if (values.help) {
    io.stdout.write(verifyUsage);
    return ExitCode.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'give the backup directory to verify' : `one backup directory, got ${positionals.length}: ${positionals.join(' ')}`, verifyUsage);
  }
  const source = await openBackupSource(positionals[0] as string, { cwd: io.cwd, ...(values.endpoint ? { s3: { endpoint: values.endpoint } } : {}) });
  const dir = source.location;
  if (!dir.startsWith('s3://')) await existingDirectory('backup directory', dir);
  const progress = createProgress(io.stderr);
  let result: Awaited<ReturnType<typeof verifyBackup>>;
  try {
    progress.section(`verifying ${dir}`, 1);
    progress.step('files');
    result = await verifyBackup(dir, { fs: source.fs, onProgress: (p) => progress.advance(p.files / Math.max(1, p.filesTotal)) });
  } finally {
    progress.done();
    await source.close();
  }
  // A directory with no checkpoint and no backup file is not a damaged backup but no backup at all (a
  // wrong path, say): a script must be able to tell the two apart, as restore does.
  if (result.files === 0 && result.checkpointLsn === 0 && result.problems.every((p) => p.code === 'NO_CHECKPOINT')) {
    throw new FlushpointError(ErrorCode.BACKUP_NOT_FOUND, `no backup at ${dir}: the directory holds no CHECKPOINT and no backup file`, { file: dir });
  }
  if (values.json) io.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else {
    io.stdout.write(
      `${result.ok ? 'OK' : 'FAILED'}: ${dir}\n` +
        `  checkpoint LSN   ${result.checkpointLsn}\n` +
        `  LSNs verified    ${result.firstLsn}..${result.lastLsn}\n` +
        `  files / records  ${result.files} / ${result.records} (${result.bytes} bytes)\n`,
    );
    for (const p of result.problems) io.stdout.write(`  ${p.code}: ${p.message}\n`);
  }
  // Damage found is damage (exit 1); a file that only could not be read is an I/O error (exit 3): nothing
  // says its bytes are bad.
  const damaged = result.problems.some((p) => p.code === 'BACKUP_CORRUPT' || p.code === 'BACKUP_GAP' || p.code === 'NO_CHECKPOINT');
  if (!damaged && result.problems.some((p) => p.code === 'BACKUP_UNREADABLE')) return ExitCode.io;
  return result.ok ? ExitCode.ok : ExitCode.damaged;
}

async function restore(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(args, { from: { type: 'string' }, to: { type: 'string' }, 'until-lsn': { type: 'string' }, endpoint: { type: 'string' } }, restoreUsage);
  if (values.help) {
    io.stdout.write(restoreUsage);
    return ExitCode.ok;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, restoreUsage);
  if (values.from === undefined) throw new UsageError('--from DIR is required', restoreUsage);
  if (values.to === undefined) throw new UsageError('--to DIR is required', restoreUsage);
  const untilLsn = values['until-lsn'] === undefined ? undefined : positiveInteger('--until-lsn', values['until-lsn'], restoreUsage);
  const source = await openBackupSource(values.from, { cwd: io.cwd, ...(values.endpoint ? { s3: { endpoint: values.endpoint } } : {}) });
  const from = source.location;
  const to = path.resolve(io.cwd, values.to);
  if (!from.startsWith('s3://')) await existingDirectory('backup directory', from);
  const target = await fs.stat(to).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (target !== null) {
    if (!target.isDirectory()) throw new UsageError(`--to ${to} exists and is not a directory`, restoreUsage);
    if ((await fs.readdir(to)).length > 0) throw new UsageError(`--to ${to} is not empty: restore writes a new WAL directory`, restoreUsage);
  }
  const progress = createProgress(io.stderr);
  try {
    progress.section(`restoring ${from} -> ${to}`, 1);
    progress.step('records');
    const r = await restoreBackup({ from, to, fs: source.fs, ...(untilLsn === undefined ? {} : { untilLsn }), onProgress: (p) => progress.advance(p.files / Math.max(1, p.filesTotal)) }).finally(() => source.close());
    progress.done();
    io.stdout.write(`restored LSNs up to ${r.lastLsn} (${r.records} records from ${r.files} files) into ${to}\n`);
    return ExitCode.ok;
  } catch (err) {
    progress.done();
    // The API names its option untilLsn; on the command line it is --until-lsn.
    if (err instanceof RangeError) throw new UsageError(err.message.replace(/\buntilLsn\b/g, '--until-lsn'), restoreUsage);
    throw err;
  }
}

export const backupCommand: Subcommand = {
  async run(args, io) {
    const [action, ...rest] = args;
    if (action === 'verify') return await verify(rest, io);
    if (action === 'restore') return await restore(rest, io);
    if (action === '--help' || action === '-h' || action === 'help') {
      io.stdout.write(backupUsage);
      return ExitCode.ok;
    }
    throw new UsageError(action === undefined ? 'give an action: verify or restore' : `unknown action '${action}' (verify or restore)`, backupUsage);
  },
};
