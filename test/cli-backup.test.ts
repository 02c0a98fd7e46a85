import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { captureIo, writeSmallBackup } from './helpers/cli-fixtures.js';
import { Wal } from '../wal/wal.js';

const temps: string[] = [];
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('flushpoint backup (CLI)', () => {
  it('verify exits 0 on a good backup and 1 on a damaged one; restore exits 0 and writes exactly up to --until-lsn', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-cli-'));
    temps.push(base);
    await writeSmallBackup(base);

    let io = captureIo(base);
    expect(await main(['backup', 'verify', 'bk'], io)).toBe(0);
    expect(io.out()).toMatch(/^OK: .*checkpoint LSN\s+120/s);

    io = captureIo(base);
    expect(await main(['backup', 'restore', '--from', 'bk', '--to', 'restored', '--until-lsn', '55'], io)).toBe(0);
    expect(io.out()).toContain('restored LSNs up to 55');
    const restored = await Wal.open({ dir: path.join(base, 'restored') });
    expect(restored.lastLsn).toBe(55);
    await restored.close();

    io = captureIo(base);
    expect(await main(['backup', 'restore', '--from', 'bk', '--to', 'restored'], io)).toBe(2); // not empty
    io = captureIo(base);
    expect(await main(['backup', 'restore', '--from', 'bk', '--to', 'x', '--until-lsn', 'ten'], io)).toBe(2);
    io = captureIo(base);
    expect(await main(['backup', 'frobnicate'], io)).toBe(2);

    const files = (await readdir(path.join(base, 'bk'))).filter((f) => f.endsWith('.fpb')).sort();
    await writeFile(path.join(base, 'bk', files[1] as string), 'garbage');
    io = captureIo(base);
    expect(await main(['backup', 'verify', 'bk'], io)).toBe(1);
    expect(io.out()).toContain(`BACKUP_CORRUPT`);
    expect(io.out()).toContain(files[1] as string);
    io = captureIo(base);
    expect(await main(['backup', 'restore', '--from', 'bk', '--to', 'r2'], io)).toBe(1);
    expect(io.err()).toContain('BACKUP_CORRUPT');
  });
});
