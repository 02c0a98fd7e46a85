/**
 * Engine options and restarts found by the CLI/admin review of 2026-12-05:
 * - an engine with a backup, SIGKILLed and restarted at once (a supervisor's restart), failed with
 *   BACKUP_LOCKED until the dead process's lock turned stale (lockStaleMs, 10 s by default): the engine
 *   now waits that long by default (lockWaitMs unset);
 * - unknown keys under `admin` and `backup` were accepted silently (Wal.open and BackupSink.open refuse
 *   theirs), and a bad `wal` option was refused only after the location's directories were made.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';

const INDEX = new URL('../dist/index.js', import.meta.url).href;
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-engopt-'));
  dirs.push(d);
  return d;
}

describe('engine options (review of 2026-12-05)', () => {
  it('an engine with a backup, SIGKILLed, reopens at once: it waits for the dead holder\'s backup lock to turn stale', async () => {
    const root = await tempRoot();
    const loc = path.join(root, 'db');
    const bk = path.join(root, 'bk');
    const script = `
      import { Engine } from ${JSON.stringify(INDEX)};
      const db = new Engine(${JSON.stringify(loc)}, { backup: { dir: ${JSON.stringify(bk)}, lockStaleMs: 2000 } });
      await db.open();
      await db.put('a', '1');
      console.log('ready');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(fs.existsSync(path.join(bk, 'sink.lock'))).toBe(true); // left behind by the dead sink
    const started = Date.now();
    const db = new Engine<string, string>(loc, { backup: { dir: bk, lockStaleMs: 2000 }, valueEncoding: 'utf8' });
    await db.open();
    expect(Date.now() - started).toBeLessThan(2000 + 2000 + 3000);
    expect(await db.get('a')).toBe('1');
    await db.close();
    // Given explicitly, lockWaitMs: 0 still fails at once, as before.
    const child2 = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child2.stdout.once('data', () => resolve()));
    const exited2 = new Promise((resolve) => child2.once('exit', resolve));
    child2.kill('SIGKILL');
    await exited2;
    const eager = new Engine(loc, { backup: { dir: bk, lockStaleMs: 2000, lockWaitMs: 0 } });
    const err = await eager.open().catch((e: unknown) => e);
    expect((err as { cause?: unknown }).cause).toMatchObject({ code: 'BACKUP_LOCKED' });
  }, 30_000);

  it('unknown keys under admin and backup, and a bad wal option, are refused by the constructor; nothing is created', async () => {
    const root = await tempRoot();
    const loc = path.join(root, 'db');
    expect(() => new Engine(loc, { admin: { socketPath: path.join(root, 's'), port: 80 } as never })).toThrow(/options.admin: unknown option 'port'/);
    expect(() => new Engine(loc, { backup: { dir: path.join(root, 'bk'), flushIntervalMS: 5 } as never })).toThrow(/options.backup: unknown option 'flushIntervalMS'/);
    expect(() => new Engine(loc, { wal: { segmentSizeByte: 1 } as never })).toThrow(/unknown option 'segmentSizeByte'/);
    expect(() => new Engine(loc, { wal: { segmentSizeBytes: 12 } })).toThrow(RangeError);
    expect(fs.existsSync(loc)).toBe(false);
  });
});
