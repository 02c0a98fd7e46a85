/**
 * `flushpoint backup verify DIR` and `flushpoint backup restore --from DIR --to DIR [--until-lsn N]`.
 *
 * Exit codes: 0 the backup verified (or was restored) completely; 1 it did not (corruption, a gap, a
 * failed restore: what and where is printed); 2 the command line was wrong. A progress bar is drawn
 * only on a terminal.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { restoreBackup } from '../backup/restore.js';
import { verifyBackup } from '../backup/verify.js';
import { createProgress } from '../bench/progress.js';
import { FlushpointError } from '../core/errors.js';
import { exitFailure, exitOk, exitUsage, type CliIo, type Subcommand } from './subcommand.js';

export const backupUsage = `usage: flushpoint backup verify DIR [--json]
       flushpoint backup restore --from DIR --to DIR [--until-lsn N]

  verify    read every file of the backup in DIR and report corruption, gaps and files beyond the
            checkpoint; exits 0 only when every LSN up to the checkpoint is present and intact
  restore   write a new WAL directory holding exactly the backup's LSNs up to N (default: the
            checkpoint); the target must be missing or empty; exits 0 only when it is complete
`;

async function verify(args: readonly string[], io: CliIo): Promise<number> {
  const { positionals, values } = parseArgs({ args: [...args], allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals.length !== 1) {
    io.stderr.write(backupUsage);
    return exitUsage;
  }
  const dir = path.resolve(io.cwd, positionals[0] as string);
  const progress = createProgress(io.stderr);
  progress.section(`verifying ${dir}`, 1);
  progress.step('files');
  const result = await verifyBackup(dir, { onProgress: (p) => progress.advance(p.files / Math.max(1, p.filesTotal)) });
  progress.done();
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
  return result.ok ? exitOk : exitFailure;
}

async function restore(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: [...args], options: { from: { type: 'string' }, to: { type: 'string' }, 'until-lsn': { type: 'string' } } });
  if (!values.from || !values.to) {
    io.stderr.write(backupUsage);
    return exitUsage;
  }
  let untilLsn: number | undefined;
  if (values['until-lsn'] !== undefined) {
    untilLsn = Number(values['until-lsn']);
    if (!/^\d+$/.test(values['until-lsn']) || !Number.isSafeInteger(untilLsn)) {
      io.stderr.write(`flushpoint backup restore: --until-lsn must be a whole number, got '${values['until-lsn']}'\n`);
      return exitUsage;
    }
  }
  const from = path.resolve(io.cwd, values.from);
  const to = path.resolve(io.cwd, values.to);
  const progress = createProgress(io.stderr);
  progress.section(`restoring ${from} -> ${to}`, 1);
  progress.step('records');
  try {
    const r = await restoreBackup({ from, to, ...(untilLsn === undefined ? {} : { untilLsn }), onProgress: (p) => progress.advance(p.files / Math.max(1, p.filesTotal)) });
    progress.done();
    io.stdout.write(`restored LSNs up to ${r.lastLsn} (${r.records} records from ${r.files} files) into ${to}\n`);
    return exitOk;
  } catch (err) {
    progress.done();
    if (err instanceof FlushpointError || err instanceof RangeError) {
      io.stderr.write(`flushpoint backup restore: ${err instanceof FlushpointError ? err.code + ': ' : ''}${err.message}\n`);
      return err instanceof RangeError ? exitUsage : exitFailure;
    }
    throw err;
  }
}

export const backupCommand: Subcommand = {
  async run(args, io) {
    const [action, ...rest] = args;
    try {
      if (action === 'verify') return await verify(rest, io);
      if (action === 'restore') return await restore(rest, io);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
        io.stderr.write(`${(err as Error).message}\n${backupUsage}`);
        return exitUsage;
      }
      throw err;
    }
    (action === '--help' || action === '-h' ? io.stdout : io.stderr).write(backupUsage);
    return action === '--help' || action === '-h' ? exitOk : exitUsage;
  },
};
