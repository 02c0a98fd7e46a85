/**
 * The rolling restart, end to end with real processes: a child runs an Engine with a backup sink and an
 * admin socket under 16 concurrent writers; `flushpoint admin drain --socket S --timeout 30000` answers;
 * the child is SIGKILLed right after; the backup is restored into a new location and opened as an
 * engine: every write acknowledged before the drain answered is there with its exact value, and the
 * CLI's LSNs match what the restore holds. Repeated with the drain arriving while a backup flush is held
 * in its datasync (it waits and chains one more, no error), and with the backup failing (exit 3 and
 * BACKUP_FAILED, never a success). Needs `npm run build` (the child and the CLI run from dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { restoreBackup } from '../backup/index.js';
import { Engine } from '../engine/engine.js';
import { tempDir } from './admin-fixtures.js';
import { until } from './helpers/async.js';

const DIST = fileURLToPath(new URL('../dist', import.meta.url));
const MAIN = path.join(DIST, 'cli', 'main.js');

/** The child: an engine with backup + admin, 16 writers printing `ack KEY VALUE` / `refused KEY CODE`. */
const CHILD = `
const [dist, location, backupDir, socketPath, mode] = process.argv.slice(2);
const { Engine } = await import(dist + '/engine/engine.js');
const { FaultFileSystem, nodeFileSystem } = await import(dist + '/fs/index.js');
const bfs = new FaultFileSystem(nodeFileSystem);
const db = new Engine(location, { valueEncoding: 'utf8', backup: { dir: backupDir, fs: bfs, flushIntervalMs: 100, retryDelayMsMin: 60000, retryDelayMsMax: 60000 }, admin: { socketPath } });
await db.open();
if (mode === 'fail') bfs.inject({ op: 'datasync', error: 'EIO', times: Infinity });
if (mode === 'held') {
  let release;
  const gate = new Promise((r) => (release = r));
  bfs.inject({ op: 'datasync', hold: gate });
  // Release the held flush only once the drain has arrived (the engine refuses writes from then on).
  const poll = setInterval(() => {
    if (db.draining) { clearInterval(poll); console.log('drain-arrived flushing=' + db.backup.flushing); setTimeout(release, 100); }
  }, 5);
}
console.log('ready');
for (let w = 0; w < 16; w++) {
  void (async () => {
    for (let i = 0; ; i++) {
      const key = 'w' + w + '-' + i;
      const value = 'v' + w + '-' + i + '-' + Math.random().toString(36).slice(2);
      try {
        await db.put(key, value);
        console.log('ack ' + key + ' ' + value);
      } catch (err) {
        console.log('refused ' + key + ' ' + err.code);
        return;
      }
    }
  })();
}
`;

interface Child {
  process: ChildProcess;
  lines: string[];
  stderr: string;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function startChild(dir: string, args: string[]): Promise<Child> {
  // Written to a file (plain ESM importing dist/), so the child runs as any user's program would.
  const script = path.join(dir, 'child.mjs');
  await fsp.writeFile(script, CHILD);
  const p = spawn(process.execPath, [script, DIST, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  const c: Child = { process: p, lines: [], stderr: '' };
  let partial = '';
  p.stdout?.setEncoding('utf8');
  p.stdout?.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    c.lines.push(...parts);
  });
  p.stderr?.setEncoding('utf8');
  p.stderr?.on('data', (d: string) => (c.stderr += d));
  return c;
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function killed(c: Child): Promise<void> {
  const exited = new Promise((resolve) => c.process.once('close', resolve));
  c.process.kill('SIGKILL');
  await exited;
}

async function rollingRestart(mode: 'plain' | 'held'): Promise<void> {
  const dir = await tempDir();
  const location = path.join(dir, 'db');
  const backupDir = path.join(dir, 'backup');
  const socketPath = path.join(dir, 'a.sock');
  const child = await startChild(dir, [location, backupDir, socketPath, mode]);
  await until(() => child.lines.includes('ready') || child.process.exitCode !== null, 'the child to open its engine', 30_000);
  expect(child.stderr).toBe('');
  await until(() => child.lines.filter((l) => l.startsWith('ack ')).length >= 300, '300 acknowledged writes', 30_000);
  const cli = await runCli(['admin', 'drain', '--socket', socketPath, '--timeout', '30000']);
  const ackedBeforeAnswer = child.lines.filter((l) => l.startsWith('ack '));
  await killed(child);
  expect(cli.stderr).toBe('');
  expect(cli.code).toBe(0);
  const answer = JSON.parse(cli.stdout) as { walDurableLsn: number; backupCheckpointLsn: number };
  expect(answer.backupCheckpointLsn).toBeGreaterThanOrEqual(answer.walDurableLsn);
  if (mode === 'held') expect(child.lines).toContain('drain-arrived flushing=true');
  // Writers that tried after the drain began were refused with ENGINE_DRAINING.
  for (const l of child.lines.filter((x) => x.startsWith('refused '))) expect(l).toMatch(/ ENGINE_DRAINING$/);
  expect(child.lines.filter((l) => l.startsWith('refused ')).length).toBeGreaterThan(0);

  const restored = path.join(dir, 'restored');
  const r = await restoreBackup({ from: backupDir, to: path.join(restored, 'wal') });
  expect(r.lastLsn).toBe(answer.backupCheckpointLsn);
  const db = new Engine<string, string>(restored, { valueEncoding: 'utf8' });
  await db.open();
  try {
    expect(db.stats().visibleLsn).toBe(r.lastLsn);
    for (const line of ackedBeforeAnswer) {
      const [, key, value] = line.split(' ');
      expect(await db.get(key as string), key).toBe(value);
    }
    // Each record is one put: the restore holds exactly the writes accepted before the drain.
    expect(ackedBeforeAnswer.length).toBeLessThanOrEqual(r.lastLsn);
  } finally {
    await db.close();
  }
}

describe('the rolling restart (drain, SIGKILL, restore, compare)', () => {
  it('under 16 writers: every write acknowledged before the drain answered is in the restored engine', async () => {
    await rollingRestart('plain');
  });

  it('with the drain arriving while a backup flush is held in its datasync: it waits, chains one more, no error', async () => {
    await rollingRestart('held');
  });

  it('with the backup failing: exit 3 and BACKUP_FAILED, never a success', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 'a.sock');
    const child = await startChild(dir, [path.join(dir, 'db'), path.join(dir, 'backup'), socketPath, 'fail']);
    await until(() => child.lines.filter((l) => l.startsWith('ack ')).length >= 50, '50 acknowledged writes', 30_000);
    const cli = await runCli(['admin', 'drain', '--socket', socketPath, '--timeout', '30000']);
    await killed(child);
    expect(cli.code).toBe(3);
    expect(cli.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(cli.stderr).toContain('BACKUP_FAILED');
    expect(JSON.parse(cli.stdout).error.code).toBe('BACKUP_FAILED');
  });
});
