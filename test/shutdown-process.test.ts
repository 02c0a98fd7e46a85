/**
 * installShutdownHandlers in a real process: a child (test/fixtures/shutdown-child.mjs, on the built
 * package: `npm run build` first) writes with 4 writers to an Engine whose backup only flushes when
 * forced; the test sends it a real SIGTERM. Success: exit 0, and every put the child acknowledged is in
 * the backup (its checkpoint covers the last acknowledged LSN, and a restore of it holds every key).
 * Failure: the backup directory is replaced by a plain file before the signal, so the drain's backup
 * flush cannot succeed (honest even as root, where chmod stops nothing): exit 1, and the WAL still
 * holds every acknowledged put.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { restoreBackup, verifyBackup } from '../backup/index.js';
import { Engine } from '../engine/index.js';

const CHILD = fileURLToPath(new URL('./fixtures/shutdown-child.mjs', import.meta.url));
/** Acknowledged puts to wait for before the signal. */
const ACKS_BEFORE_SIGNAL = 200;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-shutdown-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  acked: Map<string, number>;
  stderr: string;
}

/** Runs the child; once it has acknowledged ACKS_BEFORE_SIGNAL puts, calls beforeSignal and sends SIGTERM. */
function runChild(location: string, backupDir: string, timeoutMs: number, beforeSignal: () => void): Promise<ChildRun> {
  const child = spawn(process.execPath, [CHILD, location, backupDir, String(timeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked = new Map<string, number>();
  let stderr = '';
  let pending = '';
  let signalled = false;
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  child.stdout.setEncoding('utf8').on('data', (t: string) => {
    pending += t;
    const lines = pending.split('\n');
    pending = lines.pop() as string;
    for (const line of lines) {
      const m = /^ack (\S+) (\d+)$/.exec(line);
      if (m) acked.set(m[1] as string, Number(m[2]));
    }
    if (!signalled && acked.size >= ACKS_BEFORE_SIGNAL) {
      signalled = true;
      beforeSignal();
      child.kill('SIGTERM');
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const line of pending.split('\n')) {
        const m = /^ack (\S+) (\d+)$/.exec(line);
        if (m) acked.set(m[1] as string, Number(m[2]));
      }
      resolve({ code, signal, acked, stderr });
    });
  });
}

async function expectAllAcked(location: string, acked: Map<string, number>): Promise<void> {
  const db = new Engine<string, string>(location, { valueEncoding: 'utf8' });
  await db.open();
  try {
    const missing: string[] = [];
    for (const key of acked.keys()) if ((await db.get(key)) !== `value-${key}`) missing.push(key);
    expect(missing).toEqual([]);
  } finally {
    await db.close();
  }
}

it('SIGTERM to a writing process: exits 0 after the drain, and every acknowledged put is in the backup', async () => {
  const location = path.join(dir, 'db');
  const backupDir = path.join(dir, 'backup');
  const r = await runChild(location, backupDir, 30_000, () => {});
  expect(r.stderr).toBe('');
  expect(r.signal).toBeNull();
  expect(r.code).toBe(0);
  expect(r.acked.size).toBeGreaterThanOrEqual(ACKS_BEFORE_SIGNAL);
  const lastAckedLsn = Math.max(...r.acked.values());
  const v = await verifyBackup(backupDir);
  expect(v.problems).toEqual([]);
  expect(v.checkpointLsn).toBeGreaterThanOrEqual(lastAckedLsn);
  const restored = path.join(dir, 'restored');
  await restoreBackup({ from: backupDir, to: path.join(restored, 'wal') });
  await expectAllAcked(restored, r.acked);
}, 60_000);

it('SIGTERM when the backup cannot be written (its directory replaced by a file): exits 1, and the WAL still holds every acknowledged put', async () => {
  const location = path.join(dir, 'db');
  const backupDir = path.join(dir, 'backup');
  const r = await runChild(location, backupDir, 1_000, () => {
    fs.rmSync(backupDir, { recursive: true, force: true });
    fs.writeFileSync(backupDir, 'not a directory');
  });
  expect(r.signal).toBeNull();
  expect(r.code).toBe(1);
  expect(r.acked.size).toBeGreaterThanOrEqual(ACKS_BEFORE_SIGNAL);
  await expectAllAcked(location, r.acked);
}, 60_000);
