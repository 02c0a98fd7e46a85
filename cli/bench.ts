/**
 * `flushpoint bench [--dir DIR] [--quick] [--json FILE] [--svg FILE] [--endpoint URL --bucket NAME]`: measures the device under DIR,
 * the raw group-commit ceiling, the WAL, the peer stores and recovery, and prints the report. The data
 * goes to a fresh directory inside DIR (default ./data/bench), removed afterwards, also on Ctrl-C (the
 * measured loops give the event loop a turn every 50 ms, so the signal is handled at once). `--tiny`
 * (not in the help) runs every section at toy sizes, for the smoke test: its figures mean nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { profiles, type BenchProfile } from '../bench/profile.js';
import { createProgress } from '../core/progress.js';
import { renderReportJson } from '../bench/report-json.js';
import { renderReportTable } from '../bench/report-table.js';
import { runBench } from '../bench/run-bench.js';
import { createScratchDir } from '../bench/scratch-dir.js';
import { renderReportSvg } from '../bench/svg/report-svg.js';
import { s3Defaults, type S3TargetOptions } from '../backup/s3-options.js';
import { ExitCode } from './exit-codes.js';
import { parseCommandLine, UsageError, type CliIo, type Subcommand } from './subcommand.js';

export const benchUsage = `usage: flushpoint bench [--dir DIR] [--quick] [--json FILE] [--svg FILE]
                       [--endpoint URL --bucket NAME [--prefix P]]

  --dir DIR    directory on the device to measure (default ./data/bench); the run works in a new
               directory inside it and removes it afterwards
  --quick      a short run (about a minute) instead of the full one (under 10 minutes)
  --json FILE  also write every figure, its baseline and the environment as JSON
  --svg FILE   also write the charts (throughput vs writers, ack-latency CDF) as SVG
  --endpoint URL  also measure the backup sink to this S3 endpoint (section 8): throughput under 64
               writers, forceFlush idle and with an upload in flight beside plain PUTs of the same bytes;
               keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (AWS_REGION, default us-east-1)
  --bucket NAME   an existing bucket for section 8 (objects go under a new prefix inside it)
  --prefix P   key prefix inside the bucket (default: none)

  The peer stores (lmdb, better-sqlite3, classic-level) are measured when they are installed where
  flushpoint is (npm install lmdb better-sqlite3 classic-level); the report names any it skipped.
  Ctrl-C stops the run, removes its data and exits 130.
`;

function writeOutput(io: CliIo, file: string, text: string): string {
  const target = path.resolve(io.cwd, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, text);
  return target;
}

/** Section 8's target from --endpoint/--bucket/--prefix and the environment's keys; undefined without --endpoint. */
function s3FromFlags(values: { endpoint?: string; bucket?: string; prefix?: string }, env: NodeJS.ProcessEnv): S3TargetOptions | undefined {
  if (values.endpoint === undefined) {
    if (values.bucket !== undefined || values.prefix !== undefined) throw new UsageError('--bucket and --prefix go with --endpoint URL', benchUsage);
    return undefined;
  }
  if (values.bucket === undefined) throw new UsageError('--endpoint needs --bucket NAME (an existing bucket)', benchUsage);
  const s3: S3TargetOptions = { endpoint: values.endpoint, bucket: values.bucket, prefix: values.prefix ?? '', forcePathStyle: true };
  try {
    // Checked now, not after the other sections ran for minutes.
    const resolved = s3Defaults(s3, env);
    return { ...s3, region: resolved.region, credentials: resolved.credentials };
  } catch (err) {
    if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
    const keys = err.message.includes('no credentials');
    throw new UsageError(keys ? '--endpoint needs the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY' : err.message.replace(/^s3\./, '--'), benchUsage);
    throw err;
  }
}

export const benchCommand: Subcommand = {
  async run(args, io) {
    const { values, positionals } = parseCommandLine(
      args,
      {
        dir: { type: 'string' },
        quick: { type: 'boolean' },
        tiny: { type: 'boolean' },
        json: { type: 'string' },
        svg: { type: 'string' },
        endpoint: { type: 'string' },
        bucket: { type: 'string' },
        prefix: { type: 'string' },
      },
      benchUsage,
    );
    if (values.help) {
      io.stdout.write(benchUsage);
      return ExitCode.ok;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, benchUsage);
    const s3 = s3FromFlags(values, io.env);
    const profile: BenchProfile = values.tiny ? profiles.tiny : values.quick ? profiles.quick : profiles.full;
    const scratch = createScratchDir(path.resolve(io.cwd, values.dir ?? path.join('data', 'bench')));
    // Ctrl-C: remove what the run wrote before leaving (the measured loops yield often enough for this).
    const onSignal = (signal: NodeJS.Signals): void => {
      scratch.dispose();
      io.stderr.write(`\nflushpoint bench: stopped by ${signal}, removed ${scratch.runDir}\n`);
      process.exit(ExitCode.interrupted);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = createProgress(io.stderr);
    try {
      const report = await runBench({ dir: scratch.runDir, profile, progress, ...(s3 === undefined ? {} : { s3 }) });
      io.stdout.write(renderReportTable(report));
      if (values.json !== undefined) io.stdout.write(`\nJSON: ${writeOutput(io, values.json, renderReportJson(report))}\n`);
      if (values.svg !== undefined) io.stdout.write(`${values.json === undefined ? '\n' : ''}SVG: ${writeOutput(io, values.svg, renderReportSvg(report))}\n`);
      return ExitCode.ok;
    } finally {
      progress.done();
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      scratch.dispose();
    }
  },
};
