/**
 * The contract between the `flushpoint` dispatcher (cli/main.ts) and a subcommand. Each subcommand lives
 * in its own file, cli/<name>.ts, exports one Subcommand, and is registered in main.ts's table.
 * A subcommand writes through `io` (never process.stdout directly), so tests can run it in-process, and
 * returns the exit code instead of calling process.exit.
 */

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

export const exitOk = 0;
/** The command ran and failed. */
export const exitFailure = 1;
/** The command line was wrong. */
export const exitUsage = 2;

export interface Subcommand {
  /** Runs with the arguments after the subcommand's name; resolves with the exit code. */
  run(args: readonly string[], io: CliIo): Promise<number>;
}
