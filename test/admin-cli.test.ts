/**
 * `flushpoint admin`: every exit code, against a live endpoint (a real Wal + BackupSink behind it), a
 * missing socket, a path that is not a socket, a stale socket, and sockets that are not flushpoint's.
 * Most runs are in-process (adminCommand.run); two go through the built `flushpoint` binary.
 */
import { spawn, spawnSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { adminCommand, AdminExitCode } from '../cli/admin.js';
import { deferred, until } from './helpers/async.js';
import { appendSome, openRig, tempDir, type AdminRig, runCommand } from './admin-fixtures.js';

const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(): Promise<AdminRig> {
  const r = await openRig();
  cleanups.push(() => r.close());
  return r;
}

async function admin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  return await runCommand(adminCommand, args);
}

function oneLine(stderr: string, ...parts: string[]): void {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  for (const p of parts) expect(stderr).toContain(p);
}

describe('flushpoint admin against a live endpoint', () => {
  it('status, force-flush and drain exit 0 with JSON that shows the data durable', async () => {
    const r = await rig();
    const status = await admin('status', '--socket', r.socketPath);
    expect([status.code, status.stderr]).toEqual([0, '']);
    expect(status.json.wal.lastLsn).toBe(0);
    const last = appendSome(r.wal, 25);
    const ff = await admin('force-flush', '--socket', r.socketPath, '--timeout', '30000');
    expect([ff.code, ff.stderr]).toEqual([0, '']);
    expect(ff.json).toMatchObject({ targetLsn: last, checkpointLsn: last });
    const more = appendSome(r.wal, 5);
    const drain = await admin('drain', '--socket', r.socketPath, '--timeout', '30000');
    expect([drain.code, drain.stderr]).toEqual([0, '']);
    expect(drain.json).toMatchObject({ walDurableLsn: more, backupCheckpointLsn: more });
  });

  it('--timeout at its maximum waits for the answer (the client timer once overflowed to 1 ms); status --timeout 0 is a usage error', async () => {
    const r = await rig();
    const last = appendSome(r.wal, 25);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const ff = await admin('force-flush', '--socket', r.socketPath, '--timeout', '2147483647');
      expect([ff.code, ff.stderr]).toEqual([0, '']);
      expect(ff.json).toMatchObject({ targetLsn: last, checkpointLsn: last });
      const drain = await admin('drain', '--socket', r.socketPath, '--timeout', '2147483647');
      expect([drain.code, drain.stderr]).toEqual([0, '']);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('TimeoutOverflowWarning');
    const zero = await admin('status', '--socket', r.socketPath, '--timeout', '0');
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--timeout for status must be at least 1 ms');
  });

  it('exit 6 for reject while a flush runs, 5 for a timeout (with the LSNs on stdout), 3 for a failed backup, 7 once closed', async () => {
    const r = await rig();
    appendSome(r.wal, 10);
    await r.wal.sync();
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const running = r.sink.forceFlush();
    await until(() => r.sink.flushing, 'a held flush');
    const reject = await admin('force-flush', '--socket', r.socketPath, '--mode', 'reject');
    expect(reject.code).toBe(AdminExitCode.flushInProgress);
    expect(reject.code).toBe(6);
    oneLine(reject.stderr, 'flushpoint admin force-flush: FLUSH_IN_PROGRESS:');
    const timeout = await admin('force-flush', '--socket', r.socketPath, '--timeout', '1');
    expect(timeout.code).toBe(5);
    oneLine(timeout.stderr, 'FLUSH_TIMEOUT');
    const drain = await admin('drain', '--socket', r.socketPath, '--timeout', '1');
    expect(drain.code).toBe(5);
    expect(drain.json.error).toMatchObject({ code: 'FLUSH_TIMEOUT', walDurableLsn: 10, backupCheckpointLsn: 0 });
    held.resolve();
    await running;
    appendSome(r.wal, 3);
    r.bfs.inject({ op: 'datasync', error: 'EIO' });
    const failed = await admin('force-flush', '--socket', r.socketPath);
    expect(failed.code).toBe(3);
    oneLine(failed.stderr, 'BACKUP_FAILED');
    r.closed = true;
    const closed = await admin('drain', '--socket', r.socketPath);
    expect(closed.code).toBe(7);
    oneLine(closed.stderr, 'WAL_CLOSED');
    r.closed = false;
  });

  it('exit 2 for usage errors, each naming what was wrong, and --help everywhere exits 0', async () => {
    const r = await rig();
    const cases: Array<[string[], string]> = [
      [[], 'give an action'],
      [['compact', '--socket', r.socketPath], "unknown action 'compact'"],
      [['status'], '--socket PATH is required'],
      [['drain', '--socket', r.socketPath, '--timeout', 'soon'], '--timeout must be'],
      // A negative number is the flag's value (as every command parses it), refused by name.
      [['drain', '--socket', r.socketPath, '--timeout', '-5'], "--timeout must be a whole number of ms in [0, "],
      [['drain', '--socket', r.socketPath, '--timeout'], '--timeout needs a value'],
      [['drain', '--socket', r.socketPath, '--mode', 'join'], '--mode is for force-flush only'],
      [['force-flush', '--socket', r.socketPath, '--mode', 'now'], "--mode must be barrier, join or reject, got 'now'"],
      [['status', '--socket', r.socketPath, '--verbose'], 'verbose'],
      [['status', '--socket', r.socketPath, 'extra'], "unexpected argument 'extra'"],
      [['status', '--socket', r.socketPath, '--verbose'], "unknown flag '--verbose'"],
    ];
    for (const [args, says] of cases) {
      const out = await admin(...args);
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr).toContain(says);
      expect(out.stderr).toContain('usage: flushpoint admin');
    }
    expect(r.calls).toEqual({ status: 0, forceFlush: 0, drain: 0, metrics: 0 });
    for (const args of [['--help'], ['status', '--help'], ['force-flush', '-h'], ['drain', '--help']]) {
      const out = await admin(...args);
      expect([out.code, out.stderr]).toEqual([0, '']);
      expect(out.stdout).toContain('exit codes:');
      expect(out.stdout).toContain('10  the socket is unreachable');
    }
  });
});

describe('flushpoint admin when the socket is not a live flushpoint endpoint: exit 10', () => {
  it('a missing socket', async () => {
    const dir = await tempDir();
    const out = await admin('status', '--socket', path.join(dir, 'nope.sock'));
    expect(out.code).toBe(10);
    oneLine(out.stderr, 'ADMIN_UNREACHABLE', 'no admin socket at');
    expect(out.stdout).toBe('');
  });

  it('a path that is not a socket', async () => {
    const dir = await tempDir();
    await fsp.writeFile(path.join(dir, 'file'), 'x');
    const out = await admin('drain', '--socket', path.join(dir, 'file'));
    expect(out.code).toBe(10);
    oneLine(out.stderr, 'is not a socket');
  });

  it('a stale socket nobody listens on', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 's.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const out = await admin('status', '--socket', socketPath);
    expect(out.code).toBe(10);
    oneLine(out.stderr, 'nobody is listening');
  });

  it('an HTTP server that is not flushpoint, and a socket that does not speak HTTP', async () => {
    const dir = await tempDir();
    const httpPath = path.join(dir, 'h.sock');
    const other = http.createServer((_req, res) => res.end('{"wal":{}}'));
    await new Promise<void>((resolve) => other.listen(httpPath, resolve));
    cleanups.push(() => new Promise<void>((resolve) => (other.close(() => resolve()), other.closeAllConnections())));
    const a = await admin('drain', '--socket', httpPath);
    expect(a.code).toBe(10);
    oneLine(a.stderr, 'not a flushpoint admin endpoint');
    const rawPath = path.join(dir, 'r.sock');
    const conns = new Set<net.Socket>();
    const raw = net.createServer((c) => {
      conns.add(c);
      c.on('error', () => {});
      c.end('SSH-2.0-OpenSSH_9.6\r\n');
    });
    await new Promise<void>((resolve) => raw.listen(rawPath, resolve));
    cleanups.push(() => new Promise<void>((resolve) => (raw.close(() => resolve()), conns.forEach((c) => c.destroy()))));
    const b = await admin('status', '--socket', rawPath);
    expect(b.code).toBe(10);
    oneLine(b.stderr, 'ADMIN_UNREACHABLE');
  });
});

describe('flushpoint admin when the endpoint never answers: exit 5', () => {
  it('a socket that accepts and never answers: exit 5, ADMIN_NO_ANSWER (not FLUSH_TIMEOUT), within status --timeout', async () => {
    const dir = await tempDir();
    const silentPath = path.join(dir, 's.sock');
    const conns = new Set<net.Socket>();
    const silent = net.createServer((c) => {
      conns.add(c);
      c.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(silentPath, resolve));
    cleanups.push(() => new Promise<void>((resolve) => (silent.close(() => resolve()), conns.forEach((c) => c.destroy()))));
    const started = performance.now();
    const out = await admin('status', '--socket', silentPath, '--timeout', '300');
    expect(out.code).toBe(5);
    oneLine(out.stderr, 'ADMIN_NO_ANSWER', `no answer from ${silentPath} within 300 ms`);
    expect(out.stderr).not.toContain('FLUSH_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(4_000);
    expect(conns.size).toBe(1);
  });
});

describe('the flushpoint binary', () => {
  it('runs admin through main: 0 against a live endpoint, 10 for a missing socket', async () => {
    const r = await rig();
    appendSome(r.wal, 4);
    const ok = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN, 'admin', 'drain', '--socket', r.socketPath, '--timeout', '30000'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ walDurableLsn: 4, backupCheckpointLsn: 4 });
    const missing = spawnSync(process.execPath, [MAIN, 'admin', 'status', '--socket', path.join(r.dir, 'gone.sock')], { encoding: 'utf8' });
    expect(missing.status).toBe(10);
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});
