#!/usr/bin/env node
/**
 * The `flushpoint` command: `flushpoint <subcommand> [options]`. This file only dispatches; each
 * subcommand is its own module, loaded on demand so that `flushpoint admin` never loads the benchmark.
 *
 * Adding a subcommand: write cli/<name>.ts exporting a `Subcommand` (see cli/subcommand.ts), then add
 * one line to `subcommands` below. The reserved names are already listed there.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exitFailure, exitOk, exitUsage, type CliIo, type Subcommand } from './subcommand.js';

interface Registration {
  summary: string;
  load: () => Promise<Subcommand>;
}

const subcommands: Readonly<Record<string, Registration>> = {
  bench: {
    summary: 'measure what durability costs on a disk, and how close flushpoint comes to the limit',
    load: async () => (await import('./bench.js')).benchCommand,
  },
  backup: {
    summary: 'verify a log backup, or restore it (to a point in time) into a WAL directory',
    load: async () => (await import('./backup.js')).backupCommand,
  },
  // Hooks for the subcommands other issues add (one file each, same shape as bench):
  // demo:   { summary: 'write, crash and recover a small database', load: async () => (await import('./demo.js')).demoCommand },
  // admin:  { summary: "talk to a running engine's admin socket", load: async () => (await import('./admin.js')).adminCommand },
};

export function usage(): string {
  const width = Math.max(...Object.keys(subcommands).map((name) => name.length));
  const lines = Object.entries(subcommands).map(([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`);
  return ['usage: flushpoint <command> [options]', '', 'commands:', ...lines, '', "run 'flushpoint <command> --help' for a command's options", ''].join('\n');
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(usage());
    return name === undefined ? exitUsage : exitOk;
  }
  const registration = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined;
  if (registration === undefined) {
    io.stderr.write(`flushpoint: unknown command '${name}'\n\n${usage()}`);
    return exitUsage;
  }
  try {
    const subcommand = await registration.load();
    return await subcommand.run(args, io);
  } catch (err) {
    io.stderr.write(`flushpoint ${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return exitFailure;
  }
}

/** True when this file is the program node was asked to run (also through npm's bin symlink). */
function isEntryPoint(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return fs.realpathSync(invoked) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const io: CliIo = { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env };
  process.exitCode = await main(process.argv.slice(2), io);
}
