/**
 * `flushpoint bench [--dir DIR] [--quick] [--json FILE] [--svg FILE]`: measures the device under DIR,
 * the raw group-commit ceiling, the WAL, the peer stores and recovery, and prints the report. The data
 * goes to a fresh directory inside DIR (default ./data/bench), removed afterwards. `--tiny` (not in the
 * help) runs every section at toy sizes, for the smoke test: its figures mean nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { profiles, type BenchProfile } from '../bench/profile.js';
import { createProgress } from '../bench/progress.js';
import { renderReportJson } from '../bench/report-json.js';
import { renderReportTable } from '../bench/report-table.js';
import { runBench } from '../bench/run-bench.js';
import { createScratchDir } from '../bench/scratch-dir.js';
import { renderReportSvg } from '../bench/svg/report-svg.js';
import { exitOk, exitUsage, type CliIo, type Subcommand } from './subcommand.js';

export const benchUsage = `usage: flushpoint bench [--dir DIR] [--quick] [--json FILE] [--svg FILE]

  --dir DIR    directory on the device to measure (default ./data/bench); the run works in a new
               directory inside it and removes it afterwards
  --quick      a short run (about a minute) instead of the full one (under 10 minutes)
  --json FILE  also write every figure, its baseline and the environment as JSON
  --svg FILE   also write the charts (throughput vs writers, ack-latency CDF) as SVG
`;

function writeOutput(io: CliIo, file: string, text: string): string {
  const target = path.resolve(io.cwd, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, text);
  return target;
}

export const benchCommand: Subcommand = {
  async run(args, io) {
    let values: { dir?: string; quick?: boolean; tiny?: boolean; json?: string; svg?: string; help?: boolean };
    try {
      ({ values } = parseArgs({
        args: [...args],
        options: {
          dir: { type: 'string' },
          quick: { type: 'boolean' },
          tiny: { type: 'boolean' },
          json: { type: 'string' },
          svg: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
        strict: true,
        allowPositionals: false,
      }));
    } catch (err) {
      io.stderr.write(`flushpoint bench: ${err instanceof Error ? err.message : String(err)}\n\n${benchUsage}`);
      return exitUsage;
    }
    if (values.help) {
      io.stdout.write(benchUsage);
      return exitOk;
    }
    const profile: BenchProfile = values.tiny ? profiles.tiny : values.quick ? profiles.quick : profiles.full;
    const scratch = createScratchDir(path.resolve(io.cwd, values.dir ?? path.join('data', 'bench')));
    // Ctrl-C: remove what the run wrote before leaving (the measured loops yield often enough for this).
    const onSignal = (signal: NodeJS.Signals): void => {
      scratch.dispose();
      io.stderr.write(`\nflushpoint bench: stopped by ${signal}, removed ${scratch.runDir}\n`);
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = createProgress(io.stderr);
    try {
      const report = await runBench({ dir: scratch.runDir, profile, progress });
      io.stdout.write(renderReportTable(report));
      if (values.json !== undefined) io.stdout.write(`\nJSON: ${writeOutput(io, values.json, renderReportJson(report))}\n`);
      if (values.svg !== undefined) io.stdout.write(`${values.json === undefined ? '\n' : ''}SVG: ${writeOutput(io, values.svg, renderReportSvg(report))}\n`);
      return exitOk;
    } finally {
      progress.done();
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      scratch.dispose();
    }
  },
};
