/**
 * Child processes running test/fixtures/wal-child.mjs (plain JS on the built dist): their stdout is
 * collected as complete lines (a line cut short by SIGKILL is dropped), and any that are still alive
 * when a test ends can be killed with killChildren().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const WAL_CHILD_SCRIPT = fileURLToPath(new URL('../fixtures/wal-child.mjs', import.meta.url));

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const alive = new Set<WalChild>();

export class WalChild {
  readonly process: ChildProcess;
  /** Complete lines printed so far. */
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<ChildExit>;
  #partial = '';
  #watchers: Array<() => void> = [];
  #exit: ChildExit | null = null;

  /** Starts `node wal-child.mjs ...args`. */
  constructor(args: readonly string[]) {
    this.process = spawn(process.execPath, [WAL_CHILD_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    alive.add(this);
    this.process.stdout?.setEncoding('utf8');
    this.process.stdout?.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop() ?? '';
      this.lines.push(...parts);
      this.#notify();
    });
    this.process.stderr?.setEncoding('utf8');
    this.process.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise<ChildExit>((resolve) => {
      this.process.on('close', (code, signal) => {
        alive.delete(this);
        this.#exit = { code, signal };
        this.#notify();
        resolve(this.#exit);
      });
    });
  }

  #notify(): void {
    const watchers = this.#watchers;
    this.#watchers = [];
    for (const w of watchers) w();
  }

  /** Resolves with the first line matching `pattern`; rejects if the child exits first or time runs out. */
  waitForLine(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      const check = (): void => {
        const line = this.lines.find((l) => pattern.test(l));
        if (line !== undefined) {
          clearTimeout(timer);
          resolve(line);
        } else if (this.#exit) {
          clearTimeout(timer);
          reject(new Error(`child exited (${JSON.stringify(this.#exit)}) before printing a line matching ${pattern}; stderr: ${this.stderr}`));
        } else this.#watchers.push(check);
      };
      check();
    });
  }

  /** SIGKILL (no chance to flush or clean up), then waits for the exit. */
  async kill(): Promise<ChildExit> {
    if (!this.#exit) this.process.kill('SIGKILL');
    return this.exited;
  }

  /** Waits for the child to exit on its own. */
  async finished(timeoutMs = 15_000): Promise<ChildExit> {
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Kills every child still running (for afterEach). */
export async function killChildren(): Promise<void> {
  await Promise.all([...alive].map((c) => c.kill()));
}
