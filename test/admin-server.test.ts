/**
 * The admin endpoint against a real Wal + BackupSink on a temp directory: the socket's mode and
 * ownership of its path, the routes and their error codes, malformed input that never reaches the
 * target, and 100 concurrent force-flushes that cause at most two backup flushes.
 */
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isFlushpointError } from '../core/errors.js';
import { AdminServer } from '../engine/admin/server.js';
import { probeSocket } from '../engine/admin/socket.js';
import { walAdminTarget } from '../engine/admin/wal-target.js';
import { ADMIN_BODY_BYTES_MAX, ADMIN_HEADER } from '../engine/admin/limits.js';
import { deferred, until } from './helpers/async.js';
import { appendSome, openRig, request, tempDir, type AdminRig } from './admin-fixtures.js';

const rigs: AdminRig[] = [];
async function rig(options: Parameters<typeof openRig>[0] = {}): Promise<AdminRig> {
  const r = await openRig(options);
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});

/** Writes `raw` on a fresh connection, optionally half-closes, and collects what comes back until the server closes. */
function rawExchange(socketPath: string, raw: string | Buffer, opts: { halfClose?: boolean; waitMs?: number } = {}): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const conn = net.connect({ path: socketPath, allowHalfOpen: true });
    let text = '';
    let settled = false;
    const finish = (closedByServer: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.destroy();
      resolve({ text, closedByServer });
    };
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 2_000);
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => (text += d));
    conn.on('end', () => finish(true));
    conn.on('close', () => finish(true));
    conn.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? finish(true) : reject(err)));
    conn.on('connect', () => {
      conn.write(raw);
      if (opts.halfClose) conn.end();
    });
  });
}

/** Appends and syncs in the background until stopped; resolves with the number of records written. */
function writer(r: AdminRig): { stop: () => Promise<number> } {
  let running = true;
  let written = 0;
  const done = (async () => {
    while (running) {
      appendSome(r.wal, 10);
      written += 10;
      await r.wal.sync();
    }
    return written;
  })();
  return {
    stop: async () => {
      running = false;
      return await done;
    },
  };
}

describe('the admin socket', () => {
  it('is a socket with mode 0600, and every answer carries the flushpoint header', async () => {
    const r = await rig();
    const st = await fsp.lstat(r.socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    // No temporary directory left beside it.
    expect((await fsp.readdir(r.dir)).sort()).toEqual(['admin.sock', 'backup', 'wal']);
    const a = await request(r.socketPath, 'GET', '/status');
    expect(a.status).toBe(200);
    expect(a.headers[ADMIN_HEADER]).toBe('1');
    expect(a.json.wal.lastLsn).toBe(0);
  });

  it('stays 0600 under a permissive umask', async () => {
    const old = process.umask(0);
    try {
      const r = await rig();
      expect((await fsp.lstat(r.socketPath)).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('refuses a second server on the path while the first lives, and the first keeps serving', async () => {
    const r = await rig();
    const err = await AdminServer.listen(r.target, { socketPath: r.socketPath }).catch((e: unknown) => e);
    expect(isFlushpointError(err, 'ADMIN_SOCKET_IN_USE' as never)).toBe(true);
    expect((err as Error).message).toContain('live server');
    expect((await request(r.socketPath, 'GET', '/status')).status).toBe(200);
    // Once the first closes, its socket file is gone and the path is free again.
    await r.server.close();
    expect(await probeSocket(r.socketPath)).toBe('missing');
    const second = await AdminServer.listen(r.target, { socketPath: r.socketPath });
    expect((await request(r.socketPath, 'GET', '/status')).status).toBe(200);
    await second.close();
  });

  it('of two servers started at once on one free or stale path, exactly one gets it; the other gets ADMIN_SOCKET_IN_USE (review of 2026-12-05)', async () => {
    for (const start of ['missing', 'stale'] as const) {
      for (let round = 0; round < 3; round++) {
        const r = await rig();
        const socketPath = path.join(await tempDir(), 'race.sock');
        if (start === 'stale') {
          // A socket file nobody listens on: bound, then the server closed without unlinking it.
          const dead = net.createServer();
          await new Promise<void>((resolve) => dead.listen(socketPath, resolve));
          const kept = path.join(path.dirname(socketPath), 'kept');
          await fsp.link(socketPath, kept);
          await new Promise<void>((resolve) => dead.close(() => resolve()));
          await fsp.rename(kept, socketPath);
          expect(await probeSocket(socketPath)).toBe('stale');
        }
        const results = await Promise.allSettled([AdminServer.listen(r.target, { socketPath }), AdminServer.listen(r.target, { socketPath })]);
        const won = results.filter((x): x is PromiseFulfilledResult<AdminServer> => x.status === 'fulfilled');
        const lost = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
        expect(won, `${start}, round ${round}: ${lost.map((l) => String(l.reason?.message)).join(" / ")}`).toHaveLength(1);
        expect(lost[0]?.reason).toMatchObject({ code: 'ADMIN_SOCKET_IN_USE' });
        expect((await request(socketPath, 'GET', '/status')).status).toBe(200);
        expect((await fsp.lstat(socketPath)).mode & 0o777).toBe(0o600);
        await won[0]?.value.close();
        expect(await probeSocket(socketPath)).toBe('missing');
      }
    }
  });

  it('never replaces a path that is not a socket', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'admin.sock');
    await fsp.writeFile(file, 'precious');
    const r = await rig({ dir: await tempDir() });
    const err = await AdminServer.listen(r.target, { socketPath: file }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ADMIN_SOCKET_IN_USE');
    expect(await fsp.readFile(file, 'utf8')).toBe('precious');
    expect((await fsp.readdir(dir)).sort()).toEqual(['admin.sock']);
  });

  it('replaces a stale socket left by a SIGKILLed process', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 'admin.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    expect(await probeSocket(socketPath)).toBe('live');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect((await fsp.lstat(socketPath)).isSocket()).toBe(true); // left behind
    expect(await probeSocket(socketPath)).toBe('stale');
    const r = await rig({ dir, socketPath });
    expect((await fsp.lstat(socketPath)).mode & 0o777).toBe(0o600);
    expect((await request(socketPath, 'GET', '/status')).status).toBe(200);
    expect(r.server.socketPath).toBe(socketPath);
  });

  it('close() ends open connections and removes the socket file', async () => {
    const r = await rig();
    const idle = net.connect({ path: r.socketPath });
    await new Promise<void>((resolve) => idle.once('connect', () => resolve()));
    const ended = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    const started = performance.now();
    await r.server.close();
    // No request in flight: nothing to wait for (it waited ADMIN_CLOSE_ANSWER_MS, 1 s, for any connection).
    expect(performance.now() - started).toBeLessThan(800);
    await ended;
    await expect(fsp.lstat(r.socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(request(r.socketPath, 'GET', '/status')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('close() answers a force-flush and a drain in flight 503 WAL_CLOSED, not a connection reset (review of 2026-12-05 evening)', async () => {
    const r = await rig();
    appendSome(r.wal, 20);
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const ff = request(r.socketPath, 'POST', '/force-flush', { timeoutMs: 60_000 });
    await until(() => r.sink.flushing, 'the force-flush to reach its backup flush');
    const drain = request(r.socketPath, 'POST', '/drain', { timeoutMs: 60_000 });
    await until(() => r.calls.drain === 1, 'the drain to reach the target');
    const closing = r.server.close();
    const answers = await Promise.all([ff, drain]);
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect((a.json as { error: { code: string } }).error.code).toBe('WAL_CLOSED');
    }
    await closing;
    held.resolve();
    await expect(fsp.lstat(r.socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('routes and errors', () => {
  it('force-flush and drain answer with LSNs that are durable in the backup', async () => {
    const r = await rig();
    const last = appendSome(r.wal, 50);
    const ff = await request(r.socketPath, 'POST', '/force-flush', { mode: 'barrier', timeoutMs: 30_000 });
    expect(ff.status).toBe(200);
    expect(ff.json.targetLsn).toBe(last);
    expect(ff.json.checkpointLsn).toBeGreaterThanOrEqual(last);
    expect(r.sink.checkpointLsn).toBeGreaterThanOrEqual(last);
    const more = appendSome(r.wal, 20);
    const dr = await request(r.socketPath, 'POST', '/drain', { timeoutMs: 30_000 });
    expect(dr.status).toBe(200);
    expect(dr.json.walDurableLsn).toBe(more);
    expect(dr.json.backupCheckpointLsn).toBeGreaterThanOrEqual(dr.json.walDurableLsn);
    expect((await request(r.socketPath, 'GET', '/status')).json.status).toBe('draining');
  });

  it('maps FLUSH_IN_PROGRESS to 409, FLUSH_TIMEOUT to 504 (with the LSNs reached), BACKUP_FAILED to 500, closed to 503', async () => {
    const r = await rig();
    appendSome(r.wal, 10);
    await r.wal.sync();
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const first = request(r.socketPath, 'POST', '/force-flush', {});
    await until(() => r.sink.flushing, 'a held flush');
    const rejected = await request(r.socketPath, 'POST', '/force-flush', { mode: 'reject' });
    expect(rejected.status).toBe(409);
    expect(rejected.json.error.code).toBe('FLUSH_IN_PROGRESS');
    const timedOut = await request(r.socketPath, 'POST', '/force-flush', { timeoutMs: 1 });
    expect(timedOut.status).toBe(504);
    expect(timedOut.json.error).toMatchObject({ code: 'FLUSH_TIMEOUT', reachedLsn: 0 });
    const drainTimedOut = await request(r.socketPath, 'POST', '/drain', { timeoutMs: 1 });
    expect(drainTimedOut.status).toBe(504);
    expect(drainTimedOut.json.error).toMatchObject({ code: 'FLUSH_TIMEOUT', walDurableLsn: 10, backupCheckpointLsn: 0 });
    held.resolve();
    expect((await first).status).toBe(200);
    // A failing backup: 500 with its code, never a success.
    appendSome(r.wal, 5);
    r.bfs.inject({ op: 'datasync', error: 'EIO' });
    const failed = await request(r.socketPath, 'POST', '/force-flush', {});
    expect(failed.status).toBe(500);
    expect(failed.json.error.code).toBe('BACKUP_FAILED');
    r.closed = true;
    const closed = await request(r.socketPath, 'POST', '/force-flush', {});
    expect(closed.status).toBe(503);
    expect(closed.json.error.code).toBe('WAL_CLOSED');
    r.closed = false;
  });

  it('answers 404 and 405 for unknown routes and methods', async () => {
    const r = await rig();
    const a = await request(r.socketPath, 'GET', '/nope');
    expect([a.status, a.json.error.code]).toEqual([404, 'NOT_FOUND']);
    const b = await request(r.socketPath, 'GET', '/drain');
    expect([b.status, b.json.error.code]).toEqual([405, 'METHOD_NOT_ALLOWED']);
    expect(r.calls).toEqual({ status: 0, forceFlush: 0, drain: 0, metrics: 0 });
  });

  it('serves Prometheus metrics from a registry of its own', async () => {
    const r = await rig();
    const other = await rig();
    const last = appendSome(r.wal, 30);
    await request(r.socketPath, 'POST', '/force-flush', {});
    await request(r.socketPath, 'POST', '/drain', {});
    const m = await request(r.socketPath, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toContain('text/plain');
    const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(m.text)?.[1]);
    expect(value('flushpoint_wal_durable_lsn')).toBe(last);
    expect(value('flushpoint_backup_checkpoint_lsn')).toBe(last);
    expect(value('flushpoint_backup_lag_records')).toBe(0);
    expect(value('flushpoint_wal_records_total')).toBe(30);
    expect(value('flushpoint_wal_pipelined_batches_total')).toBe(0); // 30 records by one caller: no trial
    expect(value('flushpoint_wal_fsync_seconds_count{op="commit"}')).toBeGreaterThan(0);
    // Every forceFlush is counted: the endpoint's and the drain's own barrier (before, only the endpoint's).
    expect(value('flushpoint_force_flush_wait_seconds_count{mode="barrier",outcome="ok"}')).toBe(2);
    expect(value('flushpoint_drains_total{outcome="ok"}')).toBe(1);
    expect(m.text).toContain('flushpoint_backup_flush_stage_seconds{stage="checkpoint",quantile="0.5"}');
    // And the application's own calls, with their outcome.
    await r.sink.forceFlush({ mode: 'join' });
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    appendSome(r.wal, 1);
    const running = r.sink.forceFlush();
    await until(() => r.sink.flushing, 'a held flush');
    await expect(r.sink.forceFlush({ mode: 'reject' })).rejects.toMatchObject({ code: 'FLUSH_IN_PROGRESS' });
    held.resolve();
    await running;
    const m2 = await request(r.socketPath, 'GET', '/metrics');
    const value2 = (line: string): number => Number(new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(m2.text)?.[1]);
    expect(value2('flushpoint_force_flush_wait_seconds_count{mode="join",outcome="ok"}')).toBe(1);
    expect(value2('flushpoint_force_flush_wait_seconds_count{mode="reject",outcome="in_progress"}')).toBe(1);
    expect(value2('flushpoint_force_flush_wait_seconds_count{mode="barrier",outcome="ok"}')).toBe(3);
    // The other engine's registry saw none of it.
    const o = await request(other.socketPath, 'GET', '/metrics');
    expect(o.text).toMatch(/^flushpoint_wal_records_total 0$/m);
    expect(o.text).not.toContain('outcome="ok"');
  });
});

describe('malformed requests never disturb the target', () => {
  const bad: Array<[string, string, string, number]> = [
    ['not JSON', '/force-flush', '{"mode":', 400],
    ['an array', '/force-flush', '[1,2]', 400],
    ['an unknown field', '/force-flush', '{"mode":"barrier","x":1}', 400],
    ['an unknown mode', '/force-flush', '{"mode":"hurry"}', 400],
    ['a negative timeout', '/force-flush', '{"timeoutMs":-1}', 400],
    ['a fractional timeout', '/drain', '{"timeoutMs":1.5}', 400],
    ['a string timeout', '/drain', '{"timeoutMs":"10"}', 400],
    ['a timeout past 2^31-1', '/drain', `{"timeoutMs":${2 ** 31}}`, 400],
  ];
  for (const [what, route, body, status] of bad) {
    it(`${what} on ${route}: ${status} BAD_REQUEST, the target not called`, async () => {
      const r = await rig();
      const a = await request(r.socketPath, 'POST', route, body);
      expect(a.status).toBe(status);
      expect(a.json.error.code).toBe('BAD_REQUEST');
      expect(r.calls).toEqual({ status: 0, forceFlush: 0, drain: 0, metrics: 0 });
      expect(r.draining).toBe(false);
    });
  }

  it('garbage, oversized and half-closed requests are answered or dropped while writes go on', async () => {
    const r = await rig();
    const w = writer(r);
    const garbage = await rawExchange(r.socketPath, 'HELLO THERE\r\n\r\n');
    expect(garbage.text).toMatch(/^HTTP\/1\.1 400/);
    expect(garbage.closedByServer).toBe(true);
    const binary = await rawExchange(r.socketPath, Buffer.from([0, 1, 2, 255, 13, 10, 13, 10]));
    expect(binary.text).toMatch(/^HTTP\/1\.1 400/);
    const declared = await rawExchange(r.socketPath, `POST /drain HTTP/1.1\r\nhost: x\r\ncontent-length: ${ADMIN_BODY_BYTES_MAX + 1}\r\n\r\n{`);
    expect(declared.text).toMatch(/^HTTP\/1\.1 413/);
    expect(declared.text).toContain('BODY_TOO_LARGE');
    const chunkedBody = Buffer.alloc(ADMIN_BODY_BYTES_MAX + 100, 0x20);
    const chunked = await rawExchange(r.socketPath, Buffer.concat([Buffer.from(`POST /drain HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n${chunkedBody.length.toString(16)}\r\n`), chunkedBody, Buffer.from('\r\n0\r\n\r\n')]));
    expect(chunked.text).toMatch(/^HTTP\/1\.1 413/);
    const halfHeaders = await rawExchange(r.socketPath, 'POST /drain HTTP/1.1\r\nhost: x\r\ncontent-le', { halfClose: true });
    expect(halfHeaders.closedByServer).toBe(true);
    expect(halfHeaders.text).not.toMatch(/^HTTP\/1\.1 200/);
    const halfBody = await rawExchange(r.socketPath, 'POST /drain HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\n\r\n{"timeo', { halfClose: true });
    expect(halfBody.closedByServer).toBe(true);
    expect(halfBody.text).not.toMatch(/^HTTP\/1\.1 200/);
    // A whole request followed by a half-close is still answered.
    const whole = await rawExchange(r.socketPath, 'GET /status HTTP/1.1\r\nhost: x\r\n\r\n', { halfClose: true });
    expect(whole.text).toMatch(/^HTTP\/1\.1 200/);
    const written = await w.stop();
    expect(written).toBeGreaterThan(0);
    expect(r.wal.durableLsn).toBe(written);
    expect(r.wal.stats().failure).toBeNull();
    expect(r.calls.drain).toBe(0);
    expect(r.draining).toBe(false);
    expect((await request(r.socketPath, 'GET', '/status')).json.wal.durableLsn).toBe(written);
  });

  it('a client that sends only part of its request within requestTimeoutMs is dropped', async () => {
    const r = await rig({ requestTimeoutMs: 200 });
    const slow = await rawExchange(r.socketPath, 'POST /drain HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\n\r\n{', { waitMs: 10_000 });
    expect(slow.closedByServer).toBe(true);
    expect(slow.text).toMatch(/^(HTTP\/1\.1 408|$)/);
    expect(r.calls.drain).toBe(0);
  });
});

describe('long operations', () => {
  it('a drain that takes longer than requestTimeoutMs is still answered (the limit is on receiving the request)', async () => {
    const r = await rig({ requestTimeoutMs: 200 });
    const last = appendSome(r.wal, 5);
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const answer = request(r.socketPath, 'POST', '/drain', { timeoutMs: 30_000 });
    await until(() => r.sink.flushing, 'the held flush');
    await new Promise((resolve) => setTimeout(resolve, 600)); // three request timeouts pass while held
    held.resolve();
    const a = await answer;
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ walDurableLsn: last, backupCheckpointLsn: last });
  });
});

describe('logging', () => {
  it('logs a force-flush that waited for a flush (mode, waitedMs), and one that failed, with the error object', async () => {
    const r = await rig();
    const lines: Array<{ level: string; obj: any; msg: string | undefined }> = [];
    const log = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj, msg });
    const target = walAdminTarget({ sources: () => ({ wal: r.wal, sink: r.sink }), drain: (o) => r.drainer.drain(o), metrics: () => r.metrics, logger: { info: log('info'), warn: log('warn'), error: log('error') } });
    appendSome(r.wal, 3);
    await target.forceFlush({ mode: 'barrier', timeoutMs: 30_000 });
    expect(lines).toEqual([expect.objectContaining({ level: 'info', msg: 'admin force-flush waited', obj: expect.objectContaining({ mode: 'barrier', flushesRun: 1, checkpointLsn: 3 }) })]);
    appendSome(r.wal, 1);
    r.bfs.inject({ op: 'datasync', error: 'EIO' });
    await expect(target.forceFlush({ mode: 'barrier', timeoutMs: 30_000 })).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
    expect(lines[1]).toMatchObject({ level: 'warn', msg: 'admin force-flush failed', obj: { mode: 'barrier', err: { code: 'BACKUP_FAILED' } } });
  });
});

describe('concurrency', () => {
  it('100 concurrent POST /force-flush during writes cause at most two backup flushes', async () => {
    const r = await rig();
    appendSome(r.wal, 100);
    await r.wal.sync();
    const held = deferred();
    r.bfs.inject({ op: 'datasync', hold: held.promise });
    const flushesBefore = r.sink.stats().flushes;
    const w = writer(r);
    const first = request(r.socketPath, 'POST', '/force-flush', { mode: 'barrier', timeoutMs: 60_000 });
    await until(() => r.sink.flushing, 'the first flush to start (and hold in its datasync)');
    const rest = Array.from({ length: 99 }, () => request(r.socketPath, 'POST', '/force-flush', { mode: 'barrier', timeoutMs: 60_000 }));
    await until(() => r.calls.forceFlush === 100, 'all 100 requests to reach the sink', 30_000);
    held.resolve();
    const answers = await Promise.all([first, ...rest]);
    await w.stop();
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.json.checkpointLsn).toBeGreaterThanOrEqual(a.json.targetLsn);
    }
    const flushes = r.sink.stats().flushes - flushesBefore;
    expect(flushes).toBeGreaterThanOrEqual(1);
    expect(flushes).toBeLessThanOrEqual(2);
  });
});
