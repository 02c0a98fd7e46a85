/**
 * `flushpoint inspect DIR`: a WAL, an engine and a backup directory shown read-only, damage reported
 * (exit 1) with the file named, and the usage and not-found exits.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackupSink } from '../backup/index.js';
import { inspectCommand, type InspectResult } from '../cli/inspect.js';
import { Engine } from '../engine/index.js';
import { Wal } from '../wal/index.js';
import { main } from '../cli/main.js';
import { tempDir, runCommand } from './admin-fixtures.js';

async function inspect(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: InspectResult }> {
  return await runCommand(inspectCommand, args);
}

/** A closed WAL of `records` 100-byte records in 8 KiB segments, with a backup of it in `<dir>/backup`. */
async function walAndBackup(records: number): Promise<{ dir: string; walDir: string; backupDir: string }> {
  const dir = await tempDir();
  const walDir = path.join(dir, 'wal');
  const backupDir = path.join(dir, 'backup');
  const wal = await Wal.open({ dir: walDir, segmentSizeBytes: 8192 });
  const sink = await BackupSink.open({ wal, dir: backupDir, flushIntervalMs: 3_600_000, segmentSizeBytesMax: 4096 });
  for (let i = 1; i <= records; i++) wal.append(new Uint8Array(100).fill(i % 256));
  await wal.sync();
  await sink.forceFlush();
  await sink.close();
  await wal.close();
  return { dir, walDir, backupDir };
}

describe('flushpoint inspect', () => {
  it('shows a WAL directory: contiguous segments with their LSN ranges, all valid', async () => {
    const { walDir } = await walAndBackup(300);
    const r = await inspect(walDir, '--json');
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.json.kind).toBe('wal');
    const w = r.json.wal!;
    expect(w.firstLsn).toBe(1);
    expect(w.lastLsn).toBe(300);
    expect(w.segments.length).toBeGreaterThan(2);
    let next = 1;
    for (const s of w.segments) {
      expect(s.firstLsn).toBe(next);
      expect(s.state).toBe('ok');
      next = s.lastLsn + 1;
    }
    expect(next).toBe(301);
    const table = await inspect(walDir);
    expect(table.stdout).toContain('LSN 1..300');
    expect(table.stdout).toContain(w.segments[0]!.name);
  });

  it('shows a backup: its checkpoint and every file verified; a damaged file is named and exits 1', async () => {
    const { backupDir } = await walAndBackup(300);
    const r = await inspect(backupDir, '--json');
    expect(r.code).toBe(0);
    expect(r.json.kind).toBe('backup');
    const b = r.json.backup!;
    expect([b.checkpointLsn, b.startLsn]).toEqual([300, 1]);
    expect(b.files.length).toBeGreaterThan(1);
    expect(b.files.reduce((n, f) => n + (f.records ?? 0), 0)).toBe(300);
    const victim = b.files[1]!;
    const file = path.join(backupDir, victim.name);
    const bytes = await fsp.readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 0xff, bytes.length - 10);
    await fsp.writeFile(file, bytes);
    const damaged = await inspect(backupDir);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(new RegExp(`${victim.name}.*corrupt`));
  });

  it('a corrupt segment in the middle of a WAL is named, with exit 1; a torn tail is shown but is not damage', async () => {
    const { walDir } = await walAndBackup(300);
    const names = (await fsp.readdir(walDir)).filter((n) => n.endsWith('.wal')).sort();
    const middle = path.join(walDir, names[1]!);
    const bytes = await fsp.readFile(middle);
    bytes.writeUInt8(bytes.readUInt8(200) ^ 0xff, 200);
    await fsp.writeFile(middle, bytes);
    const r = await inspect(walDir, '--json');
    expect(r.code).toBe(1);
    expect(r.json.wal!.problem).toContain(names[1]!);
    expect(r.json.wal!.segments.find((s) => s.name === names[1])!.state).toBe('corrupt');
    // Damage in a middle segment's first record: scanned alone it would be "the first record of the last
    // segment"; its row says what the log's scan said.
    const first = await walAndBackup(300);
    const firstNames = (await fsp.readdir(first.walDir)).filter((n) => n.endsWith('.wal')).sort();
    const mid = path.join(first.walDir, firstNames[1]!);
    const midBytes = await fsp.readFile(mid);
    midBytes.writeUInt8(midBytes.readUInt8(60) ^ 0xff, 60);
    await fsp.writeFile(mid, midBytes);
    const f = await inspect(first.walDir, '--json');
    expect(f.code).toBe(1);
    const row = f.json.wal!.segments.find((s) => s.name === firstNames[1])!;
    expect(row.state).toBe('corrupt');
    expect(row.problem).toBe(f.json.wal!.problem);
    expect(row.problem).not.toContain('of the last segment');
    expect(r.json.wal!.segments.filter((s) => s.state === 'ok')).toHaveLength(names.length - 1);

    const torn = await walAndBackup(50);
    const tail = (await inspect(torn.walDir, '--json')).json.wal!.segments.at(-1)!;
    expect(tail.lastLsn).toBe(50);
    // Garbage right after the last record: what a torn write leaves.
    const fh = await fsp.open(path.join(torn.walDir, tail.name), 'r+');
    await fh.write(Buffer.alloc(40, 0xab), 0, 40, tail.endOffset);
    await fh.close();
    const t = await inspect(torn.walDir, '--json');
    expect(t.code).toBe(0);
    expect(t.json.wal!.segments.at(-1)).toMatchObject({ state: 'torn-tail', lastLsn: 50 });
    expect(t.json.wal!.segments.at(-1)!.problem).toContain(`offset ${tail.endOffset}`);
  });

  it('shows an engine directory: its WAL and its checkpoints, each verified; a flipped byte in one is reported damaged with its offset and exits 1', async () => {
    const dir = await tempDir();
    const db = new Engine<string, string>(dir, { valueEncoding: 'utf8' });
    await db.open();
    for (let i = 0; i < 20; i++) await db.put(`a${i}`, 'x'.repeat(50));
    const first = await db.checkpoint();
    for (let i = 0; i < 30; i++) await db.put(`b${i}`, 'y'.repeat(50));
    const second = await db.checkpoint();
    await db.close();
    expect([first.lsn, second.lsn]).toEqual([20, 50]);

    const r = await inspect(dir, '--json');
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.json.kind).toBe('engine');
    expect(r.json.wal!.lastLsn).toBe(50);
    expect(r.json.checkpoints).toEqual([
      { name: 'checkpoint-0000000000000014.ckpt', lsn: 20, sizeBytes: first.bytes, entries: 20, state: 'ok', problem: null },
      { name: 'checkpoint-0000000000000032.ckpt', lsn: 50, sizeBytes: second.bytes, entries: 50, state: 'ok', problem: null },
    ]);

    // Flip one byte in the middle of the first checkpoint's body (past its 32-byte header, before its footer).
    const file = path.join(dir, 'checkpoints', 'checkpoint-0000000000000014.ckpt');
    const bytes = await fsp.readFile(file);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0xff;
    await fsp.writeFile(file, bytes);

    const d = await inspect(dir, '--json');
    expect(d.code).toBe(1);
    expect(d.json.ok).toBe(false);
    const [damaged, intact] = d.json.checkpoints!;
    expect(damaged).toMatchObject({ name: 'checkpoint-0000000000000014.ckpt', lsn: 20, sizeBytes: first.bytes, entries: null, state: 'damaged' });
    expect(damaged!.problem).toMatch(/checkpoint-0000000000000014\.ckpt is damaged at byte \d+: block checksum mismatch/);
    expect(intact).toMatchObject({ lsn: 50, entries: 50, state: 'ok', problem: null });

    const t = await inspect(dir);
    expect(t.code).toBe(1);
    const row = t.stdout.split('\n').find((l) => l.startsWith('checkpoint-0000000000000014.ckpt'));
    expect(row).toMatch(/^checkpoint-0000000000000014\.ckpt +20 +- +\d+ +damaged +checkpoint .* block checksum mismatch/);
    expect(t.stdout.split('\n').find((l) => l.startsWith('checkpoint-0000000000000032.ckpt'))).toMatch(/ +50 +50 +\d+ +ok$/);
  });

  it('a file the file system will not read is unreadable (exit 3, an I/O error), not corrupt (exit 1): inspect and backup verify', async () => {
    const { backupDir, walDir } = await walAndBackup(300);
    // As root (these tests' user) no mode bit stops a read: a directory in a file's place gives EISDIR.
    const victim = (await fsp.readdir(backupDir)).filter((n) => n.endsWith('.fpb')).sort()[1] as string;
    await fsp.rm(path.join(backupDir, victim));
    await fsp.mkdir(path.join(backupDir, victim));
    const r = await inspect(backupDir, '--json');
    expect(r.code).toBe(3);
    const f = r.json.backup!.files.find((x) => x.name === victim)!;
    expect(f.state).toBe('unreadable');
    expect(f.problem).toContain('EISDIR');
    const out: string[] = [];
    const io = { cwd: process.cwd(), stdout: { write: (t: string) => (out.push(t), true) }, stderr: { write: (t: string) => (out.push(t), true) } };
    expect(await main(['backup', 'verify', backupDir], io as never)).toBe(3);
    expect(out.join('')).toContain(`BACKUP_UNREADABLE: ${backupDir}/${victim}: cannot read`);
    expect(out.join('')).not.toContain('BACKUP_CORRUPT');
    // restore names the file it could not read (it said only 'EISDIR: illegal operation on a directory, read').
    const err: string[] = [];
    const io2 = { cwd: process.cwd(), env: {}, stdout: { write: () => true }, stderr: { write: (t: string) => (err.push(t), true) } };
    expect(await main(['backup', 'restore', '--from', backupDir, '--to', path.join(path.dirname(backupDir), 'restored')], io2 as never)).toBe(3);
    expect(err.join('')).toContain('EISDIR');
    expect(err.join('')).toContain(`${backupDir}/${victim}`);
    // Damage found as well wins: exit 1 (an I/O error must not hide it).
    const other = (await fsp.readdir(backupDir)).filter((n) => n.endsWith('.fpb') && n !== victim).sort()[0] as string;
    const otherBytes = await fsp.readFile(path.join(backupDir, other));
    otherBytes.writeUInt8(otherBytes.readUInt8(otherBytes.length - 10) ^ 0xff, otherBytes.length - 10);
    await fsp.writeFile(path.join(backupDir, other), otherBytes);
    expect((await inspect(backupDir, '--json')).code).toBe(1);
    expect(await main(['backup', 'verify', backupDir], io as never)).toBe(1);
    // A segment of a WAL likewise.
    const seg = (await fsp.readdir(walDir)).sort()[1] as string;
    await fsp.rm(path.join(walDir, seg));
    await fsp.mkdir(path.join(walDir, seg));
    const w = await inspect(walDir, '--json');
    expect(w.code).toBe(3);
    expect(w.json.wal!.segments.find((s) => s.name === seg)!.state).toBe('unreadable');
  });

  it('usage errors read as every command\'s (the shared parser), not node\'s', async () => {
    const r = await inspect('--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("flushpoint inspect: unknown flag '--bogus'");
  });

  it('exits 3 for a missing or unknown directory, 2 for usage errors, 0 for --help', async () => {
    const dir = await tempDir();
    expect((await inspect(path.join(dir, 'nope'))).code).toBe(3);
    const unknown = await inspect(dir);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('is not a WAL, engine or backup directory');
    expect((await inspect()).code).toBe(2);
    expect((await inspect(dir, dir)).code).toBe(2);
    expect((await inspect(dir, '--tree')).code).toBe(2);
    const help = await inspect('--help');
    expect([help.code, help.stderr]).toEqual([0, '']);
    expect(help.stdout).toContain('usage: flushpoint inspect DIR');
  });
});
