/**
 * Automatic checkpoints scale with the state (checkpointStatePercent): each checkpoint rewrites the
 * whole state, so a large state is checkpointed only once the WAL since the last checkpoint reaches that
 * share of the newest checkpoint's size, also after a reopen; with 0, checkpointEveryBytes alone.
 */
import { describe, expect, it } from 'vitest';
import { FaultFileSystem, MemoryFileSystem, NodeFileSystem } from '../fs/index.js';
import { SyncTimer } from '../engine/metrics-fs.js';
import { checkpointBlocks, withDropCache } from './helpers/drop-cache-fs.js';
import { Engine } from '../engine/index.js';
import { CHECKPOINT_BLOCK_BYTES_TARGET, CHECKPOINT_SYNC_EVERY_BYTES } from '../engine/limits.js';

const LOCATION = '/db';
const KiB = 1024;
const EVERY = 64 * KiB;

/** A logger that keeps the size of every checkpoint the engine wrote. */
function checkpointLog(): { sizes: number[]; logger: { info(o: object, m?: string): void; warn(): void; error(): void } } {
  const sizes: number[] = [];
  return {
    sizes,
    logger: {
      info(o: object, m?: string) {
        if (m === 'engine checkpoint') sizes.push((o as { bytes: number }).bytes);
      },
      warn() {},
      error() {},
    },
  };
}

/** `rounds` puts of each of 256 keys of 8 KiB (a 2 MiB state; the first round makes it, the others overwrite it). */
async function load(db: Engine<string, Uint8Array>, rounds: number): Promise<void> {
  const value = new Uint8Array(8 * KiB);
  for (let round = 0; round < rounds; round++) {
    value.fill(round & 0xff);
    for (let k = 0; k < 256; k++) await db.put(`key-${String(k).padStart(4, '0')}`, value);
  }
}

function open(fs: MemoryFileSystem, logger: ReturnType<typeof checkpointLog>['logger'], percent?: number): Engine<string, Uint8Array> {
  return new Engine<string, Uint8Array>(LOCATION, { fs, logger, valueEncoding: 'view', checkpointEveryBytes: EVERY, ...(percent === undefined ? {} : { checkpointStatePercent: percent }) });
}

describe('automatic checkpoints scale with the state', () => {
  it('by default the checkpoints write about as many bytes as the WAL, not 2 MiB per 64 KiB of writes; a reopen keeps the scale', async () => {
    const fs = new MemoryFileSystem();
    const log = checkpointLog();
    const db = open(fs, log.logger);
    await db.open();
    await load(db, 4); // 8 MiB of WAL over a 2 MiB state
    await db.close(); // waits for a checkpoint under way
    const walBytes = 4 * 256 * 8 * KiB;
    const written = log.sizes.reduce((a, b) => a + b, 0);
    expect(log.sizes.length).toBeGreaterThan(1);
    // Each checkpoint waits for WAL bytes >= the last checkpoint's size: at most the WAL's bytes, plus the states written while the state still grew.
    expect(written, `checkpoint sizes ${log.sizes.join(', ')}`).toBeLessThan(1.5 * walBytes);

    // Reopened after a checkpoint of the whole state (nothing to replay), 1 MiB more of writes (under the
    // 2 MiB state's size) start no checkpoint.
    const settled = open(fs, log.logger);
    await settled.open();
    await settled.checkpoint();
    await settled.close();
    const before = log.sizes.length;
    const again = open(fs, log.logger);
    await again.open();
    const value = new Uint8Array(8 * KiB).fill(9);
    for (let k = 0; k < 128; k++) await again.put(`key-${String(k).padStart(4, '0')}`, value);
    expect((await again.get('key-0000'))?.[0]).toBe(9);
    await again.close(); // waits for a checkpoint under way, if one had started
    expect(log.sizes.length, 'no checkpoint after 1 MiB over a 2 MiB state').toBe(before);
  });

  it('a state that shrank lowers the threshold at once: after deleting most of a 2 MiB state, checkpointEveryBytes of writes start a checkpoint again', async () => {
    const fs = new MemoryFileSystem();
    const log = checkpointLog();
    const db = open(fs, log.logger);
    await db.open();
    await load(db, 1);
    await db.checkpoint(); // 2 MiB, 256 keys
    const before = log.sizes.length;
    for (let k = 8; k < 256; k++) await db.del(`key-${String(k).padStart(4, '0')}`); // 8 keys left
    const value = new Uint8Array(8 * KiB).fill(4);
    for (let i = 0; i < 24; i++) await db.put(`key-${String(i % 8).padStart(4, '0')}`, value); // 192 KiB of WAL
    await db.close();
    expect(log.sizes.length, 'a checkpoint came after the deletes, without waiting for 2 MiB of WAL').toBeGreaterThan(before);
  });

  it('checkpointStatePercent: 0 keeps the old trigger: a checkpoint every checkpointEveryBytes, the whole state each time', async () => {
    const fs = new MemoryFileSystem();
    const log = checkpointLog();
    const db = open(fs, log.logger, 0);
    await db.open();
    await load(db, 4);
    await db.close();
    const walBytes = 4 * 256 * 8 * KiB;
    const written = log.sizes.reduce((a, b) => a + b, 0);
    expect(written, `checkpoint sizes ${log.sizes.join(', ')}`).toBeGreaterThan(5 * walBytes);
    expect(() => open(new MemoryFileSystem(), log.logger, -1)).toThrow(/checkpointStatePercent must be an integer/);
  });
});

describe('a checkpoint written in synced steps', () => {
  it('fdatasyncs every CHECKPOINT_SYNC_EVERY_BYTES and drops only synced pages, the whole file by the end; the state reads back', async () => {
    const mem = new MemoryFileSystem();
    mem.dropsCache = true;
    const db = new Engine<string, Uint8Array>(LOCATION, { fs: mem, valueEncoding: 'view', checkpointEveryBytes: 1 << 30 });
    await db.open();
    const value = new Uint8Array(512 * KiB);
    for (let k = 0; k < 90; k++) await db.put(`k${String(k).padStart(3, '0')}`, value.fill(k)); // a 45 MiB state
    const { bytes } = await db.checkpoint();
    await db.close();
    const drops = mem.cacheDrops.filter((d) => d.path.startsWith(`${LOCATION}/checkpoints/`));
    expect(drops.length, 'dropped in steps, then the rest').toBeGreaterThanOrEqual(2);
    let at = 0;
    for (const d of drops) expect(d.unsynced, `drop at ${d.offset} held unsynced bytes`).toBe(false);
    // The steps, contiguous from 0, each at least CHECKPOINT_SYNC_EVERY_BYTES; then the whole file once it is durable.
    for (const d of drops.slice(0, -1)) {
      expect(d.offset).toBe(at);
      expect(d.lengthBytes).toBeGreaterThanOrEqual(CHECKPOINT_SYNC_EVERY_BYTES);
      at = d.offset + d.lengthBytes;
    }
    expect(at).toBeLessThan(bytes);
    expect(drops[drops.length - 1]).toMatchObject({ offset: 0, lengthBytes: 0 });
    const again = new Engine<string, Uint8Array>(LOCATION, { fs: mem, valueEncoding: 'view' });
    await again.open();
    expect(again.stats().recovery.recordsReplayed).toBe(0);
    expect((await again.get('k089'))?.[100]).toBe(89);
    await again.close();
  });
});

describe('checkpoint blocks', () => {
  it('end before CHECKPOINT_BLOCK_BYTES_TARGET as well as at the entry count (a block is built in one event-loop turn); the file reads back', async () => {
    const mem = new MemoryFileSystem();
    const db = new Engine<string, Uint8Array>(LOCATION, { fs: mem, valueEncoding: 'view', checkpointEveryBytes: 1 << 30 });
    await db.open();
    const value = new Uint8Array(8 * KiB);
    for (let k = 0; k < 200; k++) await db.put(`k${String(k).padStart(3, '0')}`, value.fill(k)); // 1.6 MiB in 200 entries
    await db.checkpoint();
    await db.close();
    const bodies = (await checkpointBlocks(mem, `${LOCATION}/checkpoints`)).map((b) => b.bodyBytes);
    expect(bodies.length, `block bodies ${bodies.join(', ')}`).toBeGreaterThan(5);
    for (const b of bodies) expect(b).toBeLessThan(CHECKPOINT_BLOCK_BYTES_TARGET + 8 * KiB + 64);
    const again = new Engine<string, Uint8Array>(LOCATION, { fs: mem, valueEncoding: 'view' });
    await again.open();
    expect(again.stats().keys).toBe(200);
    expect((await again.get('k199'))?.[0]).toBe(199);
    await again.close();
  });
});

describe('checkpoint writer failures and hints (review)', () => {
  it('an fdatasync failing in the middle of a checkpoint rejects it, leaves no temp file, and the next checkpoint works', async () => {
    const fault = new FaultFileSystem(new MemoryFileSystem());
    const db = new Engine<string, Uint8Array>(LOCATION, { fs: fault, valueEncoding: 'view', checkpointEveryBytes: 1 << 30 });
    await db.open();
    const value = new Uint8Array(512 * KiB);
    for (let k = 0; k < 90; k++) await db.put(`k${String(k).padStart(3, '0')}`, value.fill(k)); // 45 MiB: one step sync before the final one
    fault.inject({ op: 'datasync', path: /checkpoints\/.*tmp/, error: 'EIO' });
    await expect(db.checkpoint()).rejects.toMatchObject({ code: 'ENGINE_CHECKPOINT_FAILED', cause: { code: 'EIO' } });
    expect((await fault.readdir(`${LOCATION}/checkpoints`)).filter((n) => n.includes('tmp'))).toEqual([]);
    const { bytes } = await db.checkpoint();
    expect(bytes).toBeGreaterThan(45 * 1024 * KiB);
    await db.close();
  });

  it('a checkpoint published before a later step fails says so: ENGINE_CHECKPOINT_FAILED "was published", the file loads at the next open (diff review)', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const db = new Engine<string, string>(LOCATION, { fs: fault, valueEncoding: 'utf8', checkpointEveryBytes: 1 << 30 });
    await db.open();
    for (let round = 0; round < 3; round++) {
      await db.put(`k${round}`, `v${round}`);
      if (round === 2) fault.inject({ op: 'unlink', path: /checkpoints\/checkpoint-/, error: 'EIO' }); // the oldest's removal, after the third is in place
      const settled = await db.checkpoint().then(
        () => null,
        (err: unknown) => err,
      );
      if (round < 2) expect(settled).toBeNull();
      else {
        expect(settled).toMatchObject({ code: 'ENGINE_CHECKPOINT_FAILED', cause: { code: 'EIO' } });
        expect((settled as Error).message).toMatch(/at LSN 3 was published, but the steps after it failed/);
      }
    }
    fault.clearFaults();
    await db.close();
    const names = (await mem.readdir(`${LOCATION}/checkpoints`)).sort();
    expect(names).toHaveLength(3); // the oldest stayed; the newest is in place
    const again = new Engine<string, string>(LOCATION, { fs: mem, valueEncoding: 'utf8' });
    await again.open();
    expect(await again.get('k2')).toBe('v2');
    await again.close();
  });

  it('a dropCache that throws synchronously does not fail the checkpoint (a hint)', async () => {
    const mem = new MemoryFileSystem();
    mem.dropsCache = true;
    const fs = withDropCache(mem, () => {
      throw new Error('cannot queue');
    });
    const db = new Engine<string, Uint8Array>(LOCATION, { fs, valueEncoding: 'view', checkpointEveryBytes: 1 << 30 });
    await db.open();
    await db.put('a', new Uint8Array(10).fill(1));
    const { lsn } = await db.checkpoint();
    expect(lsn).toBeGreaterThan(0);
    await db.close();
  });

  it('a value larger than the block target is a block of its own (it does not join the block before it)', async () => {
    const mem = new MemoryFileSystem();
    const db = new Engine<string, Uint8Array>(LOCATION, { fs: mem, valueEncoding: 'view', checkpointEveryBytes: 1 << 30 });
    await db.open();
    for (let k = 0; k < 31; k++) await db.put(`a${String(k).padStart(3, '0')}`, new Uint8Array(8 * KiB).fill(k));
    await db.put('b', new Uint8Array(3 * 1024 * KiB).fill(7));
    await db.put('c', new Uint8Array(8 * KiB).fill(8));
    await db.checkpoint();
    await db.close();
    expect((await checkpointBlocks(mem, `${LOCATION}/checkpoints`)).map((b) => b.entries)).toEqual([31, 1, 1]);
  });

  it("the admin endpoint's timing wrapper passes the page-cache drop through (else the WAL would silently stop dropping)", async () => {
    const mem = new MemoryFileSystem();
    mem.dropsCache = true;
    const wrapped = new SyncTimer().wrap(mem);
    expect(wrapped.dropsCache).toBe(true);
    await mem.mkdir('/x');
    const h = await wrapped.open('/x/f', 'w+');
    await h.writev([new Uint8Array(8192)], 0);
    await h.datasync();
    await h.dropCache?.(0, 4096);
    await h.close();
    expect(mem.cacheDrops).toEqual([{ path: '/x/f', offset: 0, lengthBytes: 4096, unsynced: false }]);
    // And the capabilities of the real file system: its paths are the host's (the backup lock picks its mechanism by it).
    const real = new SyncTimer().wrap(new NodeFileSystem());
    expect(real.hostPaths).toBe(true);
    expect(real.syncCalls).toBe(true);
  });
});
