/**
 * The admin tests' rig: a real Wal and BackupSink on a temp directory (the sink's file system wraps the
 * real one in a FaultFileSystem, to hold or fail its syncs), the Drainer, the metrics, the AdminTarget
 * over them, and an AdminServer on `<dir>/admin.sock`. Plus a raw HTTP client over a Unix socket.
 */
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BackupSink } from '../backup/index.js';
import type { CliIo, Subcommand } from '../cli/subcommand.js';
import { Drainer } from '../engine/admin/drain.js';
import { AdminServer, type AdminServerOptions } from '../engine/admin/server.js';
import type { AdminTarget } from '../engine/admin/target.js';
import { walAdminTarget } from '../engine/admin/wal-target.js';
import { createEngineMetrics, type EngineMetrics } from '../engine/metrics.js';
import { SyncTimer } from '../engine/metrics-fs.js';
import { FaultFileSystem, nodeFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';

export interface AdminRig {
  dir: string;
  socketPath: string;
  wal: Wal;
  sink: BackupSink;
  /** The backup directory's file system: inject holds and faults here. */
  bfs: FaultFileSystem;
  drainer: Drainer;
  metrics: EngineMetrics;
  target: AdminTarget;
  /** Calls that reached the target, by method (a malformed request must add none). */
  calls: { status: number; forceFlush: number; drain: number; metrics: number };
  server: AdminServer;
  /** The rig's own "engine" flag: set by drain, as the engine's would be. */
  draining: boolean;
  closed: boolean;
  close(): Promise<void>;
}

export async function tempDir(): Promise<string> {
  // Short: a Unix socket path is at most 107 bytes.
  return await fsp.mkdtemp(path.join(os.tmpdir(), 'fpa-'));
}

export async function openRig(options: Partial<AdminServerOptions> & { dir?: string } = {}): Promise<AdminRig> {
  const dir = options.dir ?? (await tempDir());
  const syncTimer = new SyncTimer();
  const wal = await Wal.open({ dir: path.join(dir, 'wal'), fs: syncTimer.wrap(nodeFileSystem), segmentSizeBytes: 1024 * 1024 });
  const bfs = new FaultFileSystem(nodeFileSystem);
  const sink = await BackupSink.open({ wal, dir: path.join(dir, 'backup'), fs: bfs, flushIntervalMs: 3_600_000, retryDelayMsMin: 3_600_000, retryDelayMsMax: 3_600_000 });
  const drainer = new Drainer({ wal, sink });
  const metrics = createEngineMetrics({ wal, sink, drainer, syncTimer });
  const calls = { status: 0, forceFlush: 0, drain: 0, metrics: 0 };
  const rig = { dir, wal, sink, bfs, drainer, metrics, calls, draining: false, closed: false } as AdminRig;
  const inner = walAdminTarget({
    sources: () => (rig.closed ? null : { wal, sink }),
    drain: (o) => {
      rig.draining = true;
      return drainer.drain(o);
    },
    metrics: () => (rig.closed ? null : metrics),
    status: () => ({ status: rig.closed ? 'closed' : rig.draining ? 'draining' : 'open' }),
  });
  rig.target = {
    status: () => (calls.status++, inner.status()),
    forceFlush: (r) => (calls.forceFlush++, inner.forceFlush(r)),
    drain: (r) => (calls.drain++, inner.drain(r)),
    metrics: () => (calls.metrics++, inner.metrics()),
  };
  rig.socketPath = options.socketPath ?? path.join(dir, 'admin.sock');
  rig.server = await AdminServer.listen(rig.target, { ...options, socketPath: rig.socketPath });
  rig.close = async () => {
    await rig.server.close();
    metrics.close();
    await sink.close().catch(() => {});
    await wal.close().catch(() => {});
    rig.closed = true;
  };
  return rig;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The JSON body, when it is JSON. */
  json: any;
}

/** One HTTP request over the Unix socket. */
export function request(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request({ socketPath, method, path: urlPath, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const t = Buffer.concat(chunks).toString('utf8');
        let json: unknown = undefined;
        try {
          json = JSON.parse(t);
        } catch {
          // not JSON (/metrics)
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: t, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** Appends `count` records of `bytes` bytes and returns the last LSN (not yet durable). */
export function appendSome(wal: Wal, count: number, bytes = 100): number {
  let lsn = 0;
  for (let i = 0; i < count; i++) lsn = wal.append(new Uint8Array(bytes).fill(lsn % 251));
  return lsn;
}

/** Runs a CLI subcommand in-process, capturing its output; `json` is stdout parsed, when it is JSON. */
export async function runCommand(command: Subcommand, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: { write: (t) => ((stdout += t), true) }, stderr: { write: (t) => ((stderr += t), true) }, cwd: process.cwd(), env: {} };
  const code = await command.run(args, io);
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}
