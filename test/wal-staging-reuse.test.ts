/**
 * A closed log's staging chunks go to the next log of the process (wal/staging.ts): a lifecycle review
 * found every Wal open/close cycle leaving its 1 MiB chunk held by the shared commit worker (which keeps
 * every shared buffer it learned until its own rare collection): 1 GB after ~1,000 cycles.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { closedStagingChunksBytes } from '../wal/staging.js';
import { STAGING_CLOSED_CHUNKS_BYTES_MAX } from '../wal/limits.js';

const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-staging-reuse-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

it('a closed log hands its chunks to the next one, within the cap; records read back intact', async () => {
  const mem = new MemoryFileSystem();
  for (let i = 0; i < 5; i++) {
    const wal = await Wal.open({ dir: `/w${i}`, fs: mem });
    const before = closedStagingChunksBytes();
    for (let r = 0; r < 100; r++) wal.append(new Uint8Array(200).fill(r));
    await wal.sync();
    await wal.close();
    expect(closedStagingChunksBytes()).toBeGreaterThan(before);
    expect(closedStagingChunksBytes()).toBeLessThanOrEqual(STAGING_CLOSED_CHUNKS_BYTES_MAX);
    // The next open takes what this one left.
    const left = closedStagingChunksBytes();
    const next = await Wal.open({ dir: `/w${i}`, fs: mem });
    expect(closedStagingChunksBytes()).toBeLessThan(left);
    const payloads: number[] = [];
    for await (const rec of next.read()) payloads.push(rec.payload[0] as number);
    expect(payloads).toEqual(Array.from({ length: 100 }, (_, r) => r));
    next.append(new Uint8Array(10).fill(9)); // a reused chunk encodes fresh records
    await next.sync();
    await next.close();
  }
});

it('a Wal.open that fails after taking a chunk gives it back (a retry on a full disk does not drain the pool)', async () => {
  const mem = new MemoryFileSystem();
  const warm = await Wal.open({ dir: '/warm', fs: mem });
  await warm.close();
  const before = closedStagingChunksBytes();
  expect(before).toBeGreaterThan(0);
  const ffs = new FaultFileSystem(mem);
  ffs.inject({ op: 'writev', error: 'ENOSPC', times: Number.POSITIVE_INFINITY });
  await expect(Wal.open({ dir: '/full', fs: ffs })).rejects.toBeTruthy();
  expect(closedStagingChunksBytes()).toBe(before);
});

it('300 open/append/close cycles with the commit worker keep the process flat (it grew a chunk per cycle)', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--input-type=module',
      '-e',
      `
      import { Wal } from ${JSON.stringify(path.join(DIST, 'wal/index.js'))};
      const mb = () => { globalThis.gc(); return process.memoryUsage().arrayBuffers / 2 ** 20; };
      let at20 = 0;
      for (let i = 0; i < 300; i++) {
        const wal = await Wal.open({ dir: ${JSON.stringify(dir)} + '/w' + (i % 3) });
        await wal.appendDurable(new Uint8Array(100));
        await wal.close();
        if (i === 20) at20 = mb();
      }
      console.log(JSON.stringify({ at20, at300: mb() }));
      `,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(r.stderr).toBe('');
  const { at20, at300 } = JSON.parse(r.stdout) as { at20: number; at300: number };
  // On the old code: +280 MB (a 1 MiB chunk per cycle). Now: the same few chunks reused.
  expect(at300 - at20).toBeLessThan(32);
}, 150_000);
