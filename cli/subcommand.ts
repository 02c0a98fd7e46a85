/**
 * The contract between the `flushpoint` dispatcher (cli/main.ts) and a subcommand. Each subcommand lives
 * in its own file, cli/<name>.ts, exports one Subcommand, and is registered in main.ts's table.
 * A subcommand writes through `io` (never process.stdout directly), so tests can run it in-process, and
 * returns the exit code instead of calling process.exit. It reports a wrong command line by throwing a
 * UsageError and any other failure by throwing the error itself: main.ts prints either as one line and
 * picks the exit code (cli/exit-codes.ts).
 */
import { parseArgs } from 'node:util';

export interface OutputStream {
  write(text: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface Subcommand {
  /** Runs with the arguments after the subcommand's name; resolves with the exit code. */
  run(args: readonly string[], io: CliIo): Promise<number>;
}

/** The command line was wrong: `message` says what, `usage` is printed after it. */
export class UsageError extends Error {
  readonly usage: string;

  constructor(message: string, usage: string) {
    super(message);
    this.name = 'UsageError';
    this.usage = usage;
  }
}

type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/**
 * node:util parseArgs with our messages: an unknown flag, a missing value or a stray argument becomes a
 * UsageError naming the flag. `--flag -5` is read as the value -5 (parseArgs refuses a value starting
 * with a dash), so that the flag's own check answers it. `--help`/`-h` is always accepted.
 */
export function parseCommandLine<F extends FlagSpec>(
  args: readonly string[],
  flags: F,
  usage: string,
): { values: { [K in keyof F]?: F[K]['type'] extends 'string' ? string : boolean } & { help?: boolean }; positionals: string[] } {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && flags[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else joined.push(arg);
  }
  try {
    const { values, positionals } = parseArgs({
      args: joined,
      options: { ...flags, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as never, positionals };
  } catch (err) {
    throw new UsageError(describeParseError(err), usage);
  }
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = (e.message ?? String(err)).split('\n')[0] as string;
  const flag = /'(-[^' ]+)/.exec(message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag '${flag ?? message}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (flag === undefined) return message;
      if (message.includes('does not take an argument')) return `${flag} takes no value`;
      return `${flag.replace(/ <value>$/, '')} needs a value`;
    default:
      return message;
  }
}

/** A positive whole number given to `flag` (LSNs, counts, milliseconds), or a UsageError naming the flag. */
export function positiveInteger(flag: string, text: string, usage: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} must be a whole number >= 1, got '${text}'`, usage);
  }
  return n;
}
