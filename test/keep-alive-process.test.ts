/**
 * Waits that somebody awaits keep the process alive, in real processes (on the built package: `npm run
 * build` first). Node exits when nothing keeps its event loop alive, whatever promises are pending; the
 * real clock's timers are unreferenced (an idle sink's interval must not hold a process), and two waits
 * used them: a batch gathering for commitDelayMs, so a script that appended and awaited waitDurable
 * exited (code 13, "unsettled top-level await") with its record never synced; and an open waiting for a
 * dead holder's backup lock to turn stale, so a service restarted after a crash exited 0 from inside
 * `await db.open()`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-keepalive-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function runModule(source: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

it('append + await waitDurable with commitDelayMs and nothing else pending: the record becomes durable, exit 0', () => {
  const walDir = path.join(dir, 'wal');
  const r = runModule(`
    import { Wal } from ${JSON.stringify(path.join(DIST, 'wal/index.js'))};
    const wal = await Wal.open({ dir: ${JSON.stringify(walDir)}, commitDelayMs: 50 });
    const lsn = wal.append(Buffer.from('x'));
    await wal.waitDurable(lsn);
    console.log('durable', wal.durableLsn);
    await wal.close();
  `);
  expect(r.stderr).toBe('');
  expect([r.status, r.stdout.trim()]).toEqual([0, 'durable 1']);
});

it("an open that waits for a dead holder's backup lock to turn stale goes on waiting, then opens (exit 0)", () => {
  const bkDir = path.join(dir, 'backup');
  fs.mkdirSync(bkDir);
  // The lock a SIGKILLed sink leaves: proper-lockfile's lock directory, refreshed just now.
  fs.mkdirSync(path.join(bkDir, 'sink.lock'));
  const started = Date.now();
  const r = runModule(`
    import { Wal } from ${JSON.stringify(path.join(DIST, 'wal/index.js'))};
    import { BackupSink } from ${JSON.stringify(path.join(DIST, 'backup/index.js'))};
    const wal = await Wal.open({ dir: ${JSON.stringify(path.join(dir, 'wal'))} });
    const sink = await BackupSink.open({ wal, dir: ${JSON.stringify(bkDir)}, lockStaleMs: 2000, lockWaitMs: 10000 });
    console.log('opened');
    await sink.close();
    await wal.close();
  `);
  expect(r.stderr).toBe('');
  expect([r.status, r.stdout.trim()]).toEqual([0, 'opened']);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1_500); // it did wait for the lock to turn stale
});

it('importing flushpoint leaves a process its own exit code: an unsettled top-level await still exits 13', () => {
  // proper-lockfile (the backup directory lock) installs signal-exit's exit hook when it loads, which made
  // such a process exit 0: a script hanging on a promise reported success. It loads when a sink first
  // takes a directory lock now.
  const r = runModule(`
    import ${JSON.stringify(path.join(DIST, 'index.js'))};
    await new Promise(() => {});
  `);
  expect(r.status).toBe(13);
  expect(r.stdout).toBe('');
});

