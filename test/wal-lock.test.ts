/**
 * One process per directory: the WAL takes an exclusive flock on <dir>/LOCK. A second opener, in another
 * process or in the same one, gets WAL_LOCKED (FlushpointError.code); the lock goes with its holder:
 * after close(), or when the holder process is SIGKILLed (the kernel drops it), open succeeds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FlushpointError } from '../core/errors.js';
import { MemoryFileSystem, NodeFileSystem, type FileSystem } from '../fs/index.js';
import { killChildren, WalChild } from './helpers/child.js';
import { payloadForLsn } from './helpers/payload.js';
import { verifyLog } from './helpers/wal-log.js';

const SEGMENT_BYTES = 64 * 1024;
const FILE_SYSTEMS = ['node', 'memory'] as const;

afterEach(killChildren);

async function expectLocked(opening: Promise<Wal>, dir: string): Promise<void> {
  const err = await opening.then(
    (wal) => wal.close().then(() => new Error('the second open succeeded')),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlushpointError);
  expect((err as FlushpointError).code).toBe('WAL_LOCKED');
  expect((err as FlushpointError).message).toContain(dir);
}

/** Runs `try-open` in a child process; resolves with what it printed (`error <code>` or `opened <lastLsn>`). */
async function openInChild(dir: string): Promise<string> {
  const child = new WalChild(['try-open', dir, String(SEGMENT_BYTES)]);
  const line = await child.waitForLine(/^(error|opened) /);
  const exit = await child.finished();
  expect(exit, child.stderr).toEqual({ code: 0, signal: null });
  return line;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'flushpoint-lock-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('WAL lock', () => {
  for (const kind of FILE_SYSTEMS) {
    it(`a second Wal.open in the same process gets WAL_LOCKED until the first closes (${kind} file system)`, async () => {
      expect(FILE_SYSTEMS).toContain(kind);
      const fs: FileSystem = kind === 'node' ? new NodeFileSystem() : new MemoryFileSystem();
      expect(fs).toBeInstanceOf(kind === 'node' ? NodeFileSystem : MemoryFileSystem);
      const run = async (dir: string): Promise<void> => {
        const first = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES });
        await expectLocked(Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES }), dir);
        // The refused opener changed nothing: the holder still writes.
        await first.waitDurable(first.append(payloadForLsn(1)));
        await expectLocked(Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES }), dir);
        await first.close();
        const second = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES });
        await verifyLog(second, payloadForLsn, { mustSurviveLsn: 1, lastAppendedLsn: 1 });
        await second.close();
      };
      if (fs instanceof NodeFileSystem) {
        await withTempDir(run);
        await fs.dispose();
      } else await run('/data/wal');
    });
  }

  it('another process gets WAL_LOCKED while a holder process lives; after the holder is SIGKILLed, open succeeds', async () => {
    await withTempDir(async (dir) => {
      const fs = new NodeFileSystem();
      const holder = new WalChild(['hold', dir, String(SEGMENT_BYTES)]);
      expect(await holder.waitForLine(/^locked /)).toBe('locked 1');

      // This process, and a third one, are refused while the holder lives.
      await expectLocked(Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES }), dir);
      expect(await openInChild(dir)).toBe('error WAL_LOCKED');

      const exit = await holder.kill();
      expect(exit.signal).toBe('SIGKILL');
      // The kernel dropped the dead holder's lock: open succeeds, with the record it made durable.
      const wal = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT_BYTES });
      await verifyLog(wal, payloadForLsn, { mustSurviveLsn: 1, lastAppendedLsn: 1 });
      // Now this process holds it: another process is refused, until this one closes.
      expect(await openInChild(dir)).toBe('error WAL_LOCKED');
      await wal.close();
      expect(await openInChild(dir)).toBe('opened 1');
      await fs.dispose();
    });
  });
});
