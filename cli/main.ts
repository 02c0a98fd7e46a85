#!/usr/bin/env node
/**
 * The `flushpoint` command: `flushpoint <subcommand> [options]`. This file dispatches, and it is the one
 * place errors are printed: every error is one line on stderr, `flushpoint <command>: CODE: message`,
 * with no stack (FLUSHPOINT_DEBUG=1 adds it), and its exit code comes from cli/exit-codes.ts. A usage
 * error says what was wrong, then prints the usage. Each subcommand is its own module, loaded on
 * demand so that `flushpoint backup` never loads the benchmark.
 *
 * Adding a subcommand: write cli/<name>.ts exporting a `Subcommand` (see cli/subcommand.ts), then add
 * one entry to `subcommands` below.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitCodeOf, exitCodesHelp, ExitCode } from './exit-codes.js';
import { UsageError, type CliIo, type OutputStream, type Subcommand } from './subcommand.js';

interface Registration {
  summary: string;
  /** Its own subcommands, named in error lines (`flushpoint backup verify: ...`). */
  actions?: readonly string[];
  load: () => Promise<Subcommand>;
}

const subcommands: Readonly<Record<string, Registration>> = {
  bench: {
    summary: 'measure what durability costs on a disk, and how close flushpoint comes to the limit',
    load: async () => (await import('./bench.js')).benchCommand,
  },
  backup: {
    summary: 'verify a log backup, or restore it (to a point in time) into a WAL directory',
    actions: ['verify', 'restore'],
    load: async () => (await import('./backup.js')).backupCommand,
  },
  admin: {
    summary: "talk to a running engine's admin socket: status, force-flush, drain",
    actions: ['status', 'force-flush', 'drain'],
    load: async () => (await import('./admin.js')).adminCommand,
  },
  inspect: {
    summary: 'show a WAL, engine or backup directory: files, LSN ranges, validity, checkpoints',
    load: async () => (await import('./inspect.js')).inspectCommand,
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(subcommands).map((name) => name.length));
  const lines = Object.entries(subcommands).map(([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`);
  return [
    'usage: flushpoint <command> [options]',
    '       flushpoint --help | --version',
    '',
    'commands:',
    ...lines,
    '',
    "run 'flushpoint <command> --help' for a command's options",
    '',
    exitCodesHelp,
  ].join('\n');
}

/** The version in flushpoint's package.json (found upwards from this file: it runs from dist/cli or cli/). */
export function version(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 4; depth++, dir = path.dirname(dir)) {
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'flushpoint' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // not here: look one level up
    }
  }
  return 'unknown';
}

/** One line: the error's code (when it has one) and the first line of its message. */
export function errorLine(prefix: string, err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]?.trim() || 'unknown error';
  const code = (err as { code?: unknown } | null)?.code;
  const coded = typeof code === 'string' && !message.startsWith(code) ? `${code}: ${message}` : message;
  return `${prefix}: ${coded}\n`;
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return ExitCode.ok;
  }
  if (name === '--help' || name === '-h' || (name === 'help' && args.length === 0)) {
    io.stdout.write(usage());
    return ExitCode.ok;
  }
  if (name === 'help') return await main([args[0] as string, '--help'], io);
  if (name === undefined) {
    io.stderr.write(`flushpoint: give a command\n\n${usage()}`);
    return ExitCode.usage;
  }
  const registration = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined;
  if (registration === undefined) {
    io.stderr.write(`flushpoint: unknown command '${name}'\n\n${usage()}`);
    return ExitCode.usage;
  }
  const action = args[0] !== undefined && registration.actions?.includes(args[0]) ? ` ${args[0]}` : '';
  const prefix = `flushpoint ${name}${action}`;
  try {
    const subcommand = await registration.load();
    return await subcommand.run(args, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${prefix}: ${err.message}\n\n${err.usage}`);
      return ExitCode.usage;
    }
    io.stderr.write(errorLine(prefix, err));
    if (io.env.FLUSHPOINT_DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}

/**
 * stdout for the real process: once its reader has gone (`| head -3` exited: EPIPE), further output
 * is dropped and the command ends normally with its own exit code, instead of dying with a stack.
 */
function processStdout(): OutputStream {
  let closed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    closed = true;
  });
  return {
    write: (text) => (closed ? true : process.stdout.write(text)),
    get isTTY() {
      return process.stdout.isTTY;
    },
    get columns() {
      return process.stdout.columns;
    },
  };
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
  const io: CliIo = { stdout: processStdout(), stderr: process.stderr, cwd: process.cwd(), env: process.env };
  process.exitCode = await main(process.argv.slice(2), io);
}
