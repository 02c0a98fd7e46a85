/**
 * A throw-away single-node Ceph cluster (one mon, one OSD, one radosgw) for the S3 tests, on loopback
 * ports, with every file it writes under one temporary directory.
 *
 *   installCeph()                 apt-get installs the daemons when they are missing (CI machines are new)
 *   startCeph({ store })          mon -> OSD -> radosgw -> S3 user with fixed test keys; returns a handle
 *   handle.stopRgw/startRgw       stop (SIGTERM, wait for exit) and start radosgw again, same port
 *   handle.pauseRgw/resumeRgw     SIGSTOP / SIGCONT radosgw (a stall: connections open, no answers)
 *   handle.stop()                 stops every daemon it started and checks each is gone (ps -o stat=)
 *
 * Settings measured on these machines (issue 13): no mgr; `auth ... = none` with `ms mon client mode =
 * crc` in the rgw section (radosgw otherwise hangs 300 s); `paxos propose interval = 0.1` (radosgw makes 7
 * pools: 17 s -> 3 s); public and cluster addr 127.0.0.1; run dir, sockets, pid files, logs, the cluster
 * log and the crash dir under the temp dir; pool size 1. Daemons run in the foreground (-f) as our own
 * children, so we know every pid we must stop.
 *
 * The handle's state (ports, pids, paths) is also written to <dir>/state.json so that test files running
 * in vitest workers can stop, pause and restart radosgw (loadCeph(stateFile)).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The S3 user every test uses (fixed keys, loopback only). */
export const TEST_ACCESS_KEY_ID = 'FLUSHPOINTTESTKEY001';
export const TEST_SECRET_ACCESS_KEY = 'flushpointTestSecretKeyOnlyForLoopbackCeph0';
const RGW_NAME = 'client.rgw.fp';
const PACKAGES = ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-common'];
const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'];

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** Installs Debian's Ceph packages when a daemon is missing. Needs root (CI and the dev machines are). */
export function installCeph(log = console.error) {
  const missing = BINARIES.filter((b) => !onPath(b));
  if (missing.length === 0) return;
  log(`ceph: ${missing.join(', ')} missing: apt-get install ${PACKAGES.join(' ')} (about a minute, once per machine)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...PACKAGES], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const still = BINARIES.filter((b) => !onPath(b));
  if (still.length > 0) throw new Error(`ceph: still missing after apt-get install: ${still.join(', ')}`);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The process state letter(s) of `pid` ('' when it is gone). A zombie ('Z') still answers kill -0. */
export function processState(pid) {
  const r = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

export function isRunning(pid) {
  const s = processState(pid);
  return s !== '' && !s.startsWith('Z');
}

function conf(s) {
  const d = s.dir;
  return `[global]
fsid = ${s.fsid}
mon host = v2:127.0.0.1:${s.monPort}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon warn on pool no redundancy = false
paxos propose interval = 0.1
run dir = ${d}/run
admin socket = ${d}/run/$name.asok
pid file = ${d}/run/$name.pid
log file = ${d}/log/$name.log
mon cluster log file = ${d}/log/cluster.log
crash dir = ${d}/crash
exec dir = ${d}/run
keyring = ${d}/keyring
mon data = ${d}/mon/$name
osd data = ${d}/osd/$name
osd objectstore = ${s.store}
memstore device bytes = ${2 * 1024 * 1024 * 1024}
bluestore block path = ${d}/osd/$name.block
bluestore block create = true
bluestore block size = ${4 * 1024 * 1024 * 1024}
bluestore fsck on mount = false
osd max object name len = 460
osd max object namespace len = 64
osd crush update on start = true
osd memory target = 939524096
osd op num shards = 1
osd op num threads per shard = 2
debug ms = 0

[${RGW_NAME}]
ms mon client mode = crc
rgw frontends = beast endpoint=127.0.0.1:${s.rgwPort}
rgw data = ${d}/rgw
rgw thread pool size = 64
rgw dns name = 127.0.0.1
`;
}

function spawnDaemon(s, cmd, args, logName) {
  const out = fs.openSync(path.join(s.dir, 'log', `${logName}.out`), 'a');
  const child = spawn(cmd, ['-c', s.confPath, ...args, '-f'], { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  child.unref();
  return child.pid;
}

function ceph(s, args, opts = {}) {
  return execFileSync('ceph', ['-c', s.confPath, '--connect-timeout', '20', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, ...opts });
}

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`ceph: timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** An HTTP answer (any status) from radosgw: it is listening and serving. */
async function rgwAnswers(s) {
  try {
    const res = await fetch(`http://127.0.0.1:${s.rgwPort}/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status > 0;
  } catch {
    return false;
  }
}

function saveState(s) {
  fs.writeFileSync(path.join(s.dir, 'state.json'), JSON.stringify(s, null, 2));
}

/** Starts a cluster under a new temporary directory. store: 'memstore' (fast) or 'bluestore' (a sparse file; survives OSD restarts). */
export async function startCeph({ store = 'memstore', log = () => {} } = {}) {
  installCeph(log);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flushpoint-ceph-'));
  for (const sub of ['run', 'log', 'crash', 'mon/mon.a', 'osd/osd.0', 'rgw']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const s = {
    dir,
    store,
    fsid: randomUUID(),
    monPort: await freePort(),
    rgwPort: await freePort(),
    confPath: path.join(dir, 'ceph.conf'),
    pids: { mon: 0, osd: 0, rgw: 0 },
    endpoint: '',
    accessKeyId: TEST_ACCESS_KEY_ID,
    secretAccessKey: TEST_SECRET_ACCESS_KEY,
  };
  s.endpoint = `http://127.0.0.1:${s.rgwPort}`;
  fs.writeFileSync(s.confPath, conf(s));
  fs.writeFileSync(path.join(dir, 'keyring'), '');
  const handle = makeHandle(s);
  try {
    const t0 = Date.now();
    execFileSync('monmaptool', ['--create', '--fsid', s.fsid, '--addv', 'a', `[v2:127.0.0.1:${s.monPort}]`, path.join(dir, 'monmap')], { stdio: 'pipe' });
    execFileSync('ceph-mon', ['-c', s.confPath, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap')], { stdio: 'pipe' });
    s.pids.mon = spawnDaemon(s, 'ceph-mon', ['-i', 'a'], 'mon.a');
    saveState(s);
    await waitFor('the monitor', () => ceph(s, ['mon', 'stat']).includes('quorum'), 30_000);
    const osdUuid = randomUUID();
    const id = ceph(s, ['osd', 'new', osdUuid]).trim();
    if (id !== '0') throw new Error(`ceph: expected OSD id 0, got ${id}`);
    execFileSync('ceph-osd', ['-c', s.confPath, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], { stdio: 'pipe' });
    s.pids.osd = spawnDaemon(s, 'ceph-osd', ['-i', '0'], 'osd.0');
    saveState(s);
    await waitFor('the OSD to be up', () => /1 up/.test(ceph(s, ['osd', 'stat'])), 60_000);
    s.pids.rgw = spawnDaemon(s, 'radosgw', ['-n', RGW_NAME], 'rgw');
    saveState(s);
    await waitFor('radosgw to answer HTTP', () => rgwAnswers(s), 120_000);
    execFileSync('radosgw-admin', ['-c', s.confPath, 'user', 'create', '--uid', 'flushpoint-test', '--display-name', 'flushpoint test', '--access-key', s.accessKeyId, '--secret', s.secretAccessKey], {
      stdio: 'pipe',
      timeout: 60_000,
    });
    log(`ceph: ${store} cluster up in ${Date.now() - t0} ms at ${s.endpoint} (dir ${dir})`);
    saveState(s);
    return handle;
  } catch (err) {
    await handle.stop().catch(() => {});
    const tail = (name) => {
      try {
        return fs.readFileSync(path.join(dir, 'log', name), 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        return '';
      }
    };
    err.message += `\n--- rgw.out ---\n${tail('rgw.out')}\n--- osd.0.out ---\n${tail('osd.0.out')}\n--- mon.a.out ---\n${tail('mon.a.out')}`;
    throw err;
  }
}

/**
 * Serves startRgw/stopRgw to other processes on <dir>/control.sock, so that radosgw is always a child of
 * the long-lived runner: a daemon started by a vitest worker would be left to a PID 1 that may never
 * reap it. Returns a function that closes the server.
 */
export function serveControl(handle) {
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url === '/start-rgw') await handle.startRgw();
      else if (req.url === '/stop-rgw') await handle.stopRgw();
      else throw new Error(`unknown control ${req.url}`);
      res.end('ok');
    } catch (err) {
      res.statusCode = 500;
      res.end(String(err?.message ?? err));
    }
  });
  const sock = path.join(handle.dir, 'control.sock');
  server.listen(sock);
  return () => new Promise((r) => server.close(() => r()));
}

function control(dir, what) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: path.join(dir, 'control.sock'), path: `/${what}`, method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`ceph control ${what}: ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A handle on a cluster another process started (vitest workers): restarts go through the runner. */
export function loadCeph(stateFile) {
  const s = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  const h = makeHandle(s);
  return Object.assign(Object.create(Object.getPrototypeOf(h), Object.getOwnPropertyDescriptors(h)), {
    stopRgw: () => control(s.dir, 'stop-rgw'),
    startRgw: () => control(s.dir, 'start-rgw'),
    stop: () => Promise.reject(new Error('only the runner stops the cluster')),
  });
}

/** Waits until `pid` is gone from the process table (a zombie lingers until its parent reaps it). */
async function waitGone(pid, ms) {
  const deadline = Date.now() + ms;
  while (processState(pid) !== '' && Date.now() < deadline) await sleep(50);
}

async function stopPid(pid, what) {
  if (!pid) return;
  if (!isRunning(pid)) return waitGone(pid, 5000);
  try {
    process.kill(pid, 'SIGCONT'); // a paused daemon cannot act on SIGTERM
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (isRunning(pid) && Date.now() < deadline) await sleep(50);
  if (isRunning(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    while (isRunning(pid)) await sleep(50);
  }
  await waitGone(pid, 5000);
  if (isRunning(pid)) throw new Error(`ceph: ${what} (pid ${pid}) did not stop`);
}

function makeHandle(s) {
  const reload = () => {
    try {
      Object.assign(s, JSON.parse(fs.readFileSync(path.join(s.dir, 'state.json'), 'utf8')));
    } catch {}
  };
  return {
    get dir() {
      return s.dir;
    },
    get endpoint() {
      return s.endpoint;
    },
    get accessKeyId() {
      return s.accessKeyId;
    },
    get secretAccessKey() {
      return s.secretAccessKey;
    },
    get stateFile() {
      return path.join(s.dir, 'state.json');
    },
    get rgwPid() {
      reload();
      return s.pids.rgw;
    },
    pauseRgw() {
      reload();
      process.kill(s.pids.rgw, 'SIGSTOP');
    },
    resumeRgw() {
      reload();
      process.kill(s.pids.rgw, 'SIGCONT');
    },
    async stopRgw() {
      reload();
      await stopPid(s.pids.rgw, 'radosgw');
      s.pids.rgw = 0;
      saveState(s);
    },
    async startRgw() {
      reload();
      if (s.pids.rgw && isRunning(s.pids.rgw)) return;
      s.pids.rgw = spawnDaemon(s, 'radosgw', ['-n', RGW_NAME], 'rgw');
      saveState(s);
      await waitFor('radosgw to answer HTTP after a restart', () => rgwAnswers(s), 120_000);
    },
    /** Stops every daemon (rgw, OSD, mon), checks each is gone, and removes the directory. */
    async stop({ keepDir = false } = {}) {
      reload();
      await stopPid(s.pids.rgw, 'radosgw');
      await stopPid(s.pids.osd, 'ceph-osd');
      await stopPid(s.pids.mon, 'ceph-mon');
      // radosgw-admin or ceph CLI calls cut short could linger: anything still running from our directory.
      for (const pid of pidsUnder(s.dir)) await stopPid(pid, `process ${pid} under ${s.dir}`);
      const left = [s.pids.rgw, s.pids.osd, s.pids.mon].filter((p) => p && processState(p) !== '');
      if (!keepDir) fs.rmSync(s.dir, { recursive: true, force: true });
      return { left };
    },
  };
}

/** Pids of our processes whose command line names `dir` (every daemon we start gets -c <dir>/ceph.conf). */
function pidsUnder(dir) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes(`${dir}/ceph.conf`)) out.push(Number(name));
    } catch {}
  }
  return out;
}

// `node test/s3/ceph.mjs smoke`: start a cluster, print its endpoint and timing, stop it.
if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === 'smoke') {
  const store = process.argv[3] ?? 'memstore';
  const t0 = Date.now();
  const h = await startCeph({ store, log: console.error });
  console.log(JSON.stringify({ endpoint: h.endpoint, startMs: Date.now() - t0 }));
  const r = await h.stop();
  console.log(JSON.stringify(r));
}
