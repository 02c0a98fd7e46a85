/**
 * The commit worker starts whatever flags the host process has, and a worker that cannot start makes
 * Wal.open fail with a typed error instead of the first commit (issue 8 item 2).
 * The child-process case runs the built dist: `npm run build` first (npm test does).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, FlushpointError } from '../core/errors.js';
import { NodeFileSystem } from '../fs/node-file-system.js';
import { Wal } from '../wal/index.js';

const DIST_WAL = fileURLToPath(new URL('../dist/wal/index.js', import.meta.url));
const DIST_FS = fileURLToPath(new URL('../dist/fs/index.js', import.meta.url));

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-worker-start-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `node ...nodeArgs -e source` and collects its output. */
function runNode(nodeArgs: readonly string[], source: string, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '-e', source], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const COMMIT_SCRIPT = (walDir: string): string => `
const { Wal } = await import(${JSON.stringify(DIST_WAL)});
const { NodeFileSystem } = await import(${JSON.stringify(DIST_FS)});
const fs = new NodeFileSystem();
const wal = await Wal.open({ dir: ${JSON.stringify(walDir)}, fs });
wal.append(new Uint8Array([1, 2, 3]));
const durable = await wal.sync();
await wal.close();
await fs.dispose();
console.log(JSON.stringify({ durable }));
`;

describe('the commit worker and the host process flags', () => {
  it('a host started as `node --input-type=module -e` commits', { timeout: 30_000 }, async () => {
    const out = await runNode(['--input-type=module'], COMMIT_SCRIPT(path.join(dir, 'input-type')));
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout.trim())).toEqual({ durable: 1 });
  });

  it('a host with --input-type=module in NODE_OPTIONS commits', { timeout: 30_000 }, async () => {
    const out = await runNode(['--input-type=module'], COMMIT_SCRIPT(path.join(dir, 'node-options')), { ...process.env, NODE_OPTIONS: '--input-type=module' });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout.trim())).toEqual({ durable: 1 });
  });

  // Two ways a worker fails to start: a flag Node refuses for workers (the constructor throws), and a
  // preload that fails inside the new thread (it errors after it came online).
  for (const execArgv of [['--no-such-flag'], ['--require=/nonexistent/flushpoint-preload.cjs']]) {
    it(`a commit worker that cannot start (${execArgv[0]}) fails Wal.open with WAL_FAILED naming the worker`, { timeout: 30_000 }, async () => {
      const walDir = path.join(dir, `cannot-start-${execArgv[0]?.length}`);
      const fs = new NodeFileSystem({ commitWorkerExecArgv: execArgv });
      try {
        const err = await Wal.open({ dir: walDir, fs }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(FlushpointError);
        expect((err as FlushpointError).code).toBe(ErrorCode.WAL_FAILED);
        expect((err as FlushpointError).message).toMatch(/commit worker could not start/);
        expect(((err as FlushpointError).cause as NodeJS.ErrnoException).code).toBe('ECOMMITWORKER');
        // The lock was released: a working file system opens the same directory and commits.
        const good = new NodeFileSystem();
        const wal = await Wal.open({ dir: walDir, fs: good });
        wal.append(new Uint8Array([9]));
        expect(await wal.sync()).toBe(1);
        await wal.close();
        await good.dispose();
      } finally {
        await fs.dispose();
      }
    });
  }
});
