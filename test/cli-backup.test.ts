import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backupCommand } from '../cli/backup.js';
import type { CliIo } from '../cli/subcommand.js';
import { Wal } from '../wal/wal.js';
import { BackupSink } from '../backup/sink.js';

function captureIo(cwd: string): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => ((out += t), true) },
    stderr: { write: (t: string) => ((err += t), true) },
    cwd,
    env: {},
    out: () => out,
    err: () => err,
  };
}

const temps: string[] = [];
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('flushpoint backup (CLI)', () => {
  it('verify exits 0 on a good backup and 1 on a damaged one; restore exits 0 and writes exactly up to --until-lsn', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-cli-'));
    temps.push(base);
    const wal = await Wal.open({ dir: path.join(base, 'wal'), segmentSizeBytes: 64 * 1024 });
    const sink = await BackupSink.open({ wal, dir: path.join(base, 'bk'), segmentSizeBytesMax: 2048 });
    for (let i = 0; i < 120; i++) wal.append(new Uint8Array(40).fill(i));
    await sink.forceFlush();
    await sink.close();
    await wal.close();

    let io = captureIo(base);
    expect(await backupCommand.run(['verify', 'bk'], io)).toBe(0);
    expect(io.out()).toMatch(/^OK: .*checkpoint LSN\s+120/s);

    io = captureIo(base);
    expect(await backupCommand.run(['restore', '--from', 'bk', '--to', 'restored', '--until-lsn', '55'], io)).toBe(0);
    expect(io.out()).toContain('restored LSNs up to 55');
    const restored = await Wal.open({ dir: path.join(base, 'restored') });
    expect(restored.lastLsn).toBe(55);
    await restored.close();

    io = captureIo(base);
    expect(await backupCommand.run(['restore', '--from', 'bk', '--to', 'restored'], io)).toBe(2); // not empty
    io = captureIo(base);
    expect(await backupCommand.run(['restore', '--from', 'bk', '--to', 'x', '--until-lsn', 'ten'], io)).toBe(2);
    io = captureIo(base);
    expect(await backupCommand.run(['frobnicate'], io)).toBe(2);

    const files = (await readdir(path.join(base, 'bk'))).filter((f) => f.endsWith('.fpb')).sort();
    await writeFile(path.join(base, 'bk', files[1] as string), 'garbage');
    io = captureIo(base);
    expect(await backupCommand.run(['verify', 'bk'], io)).toBe(1);
    expect(io.out()).toContain(`BACKUP_CORRUPT`);
    expect(io.out()).toContain(files[1] as string);
    io = captureIo(base);
    expect(await backupCommand.run(['restore', '--from', 'bk', '--to', 'r2'], io)).toBe(1);
    expect(io.err()).toContain('BACKUP_CORRUPT');
  });
});
