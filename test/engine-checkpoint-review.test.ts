/**
 * Checkpoint edge cases found by review: the first checkpoint keeps the WAL from its start (it is the
 * only fallback if that checkpoint is damaged), a failed automatic checkpoint is tried again soon (not
 * after another full checkpointEveryBytes), and checkpoint() called during a deferred open waits for it.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { APPLY_YIELD_ENTRIES, AUTO_CHECKPOINT_RETRY_MS } from '../engine/limits.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { damageFile } from './helpers/damage.js';

const LOCATION = '/db';
const CKPT_DIR = `${LOCATION}/checkpoints`;


describe('engine checkpoints (review)', () => {
  it('the first checkpoint truncates nothing: damaged, the engine reopens from the whole WAL', async () => {
    const fs = new MemoryFileSystem();
    const db = new Engine<string, string>(LOCATION, { fs, wal: { segmentSizeBytes: 4096 }, valueEncoding: 'utf8' });
    await db.open();
    for (let i = 0; i < 200; i++) await db.put(`k${String(i).padStart(3, '0')}`, 'x'.repeat(40));
    await db.checkpoint();
    expect(db.wal?.firstLsn).toBe(1);
    await db.close();
    const files = (await fs.readdir(CKPT_DIR)).filter((n) => n.endsWith('.ckpt'));
    expect(files).toHaveLength(1);
    await damageFile(fs, `${CKPT_DIR}/${files[0]}`, 'flip');
    const again = new Engine<string, string>(LOCATION, { fs, wal: { segmentSizeBytes: 4096 }, valueEncoding: 'utf8' });
    await again.open();
    expect(await again.get('k000')).toBe('x'.repeat(40));
    expect(await again.keys().all()).toHaveLength(200);
    await again.close();
  });

  it('a failed automatic checkpoint is tried again after AUTO_CHECKPOINT_RETRY_MS, not after another full threshold', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    const everyBytes = 64 * 1024;
    const db = new Engine<string, string>(LOCATION, { fs, checkpointEveryBytes: everyBytes, valueEncoding: 'utf8' });
    await db.open();
    fs.inject({ op: 'rename', path: `${CKPT_DIR}/`, error: 'EIO', times: 1 });
    const value = 'x'.repeat(100);
    let i = 0;
    while (db.stats().checkpointError === null) {
      await db.put(`k${i++}`, value);
      await new Promise((r) => setImmediate(r));
    }
    // Past the retry delay, the very next write retries (the threshold still counts from LSN 0).
    await new Promise((r) => setTimeout(r, AUTO_CHECKPOINT_RETRY_MS + 50));
    const failedAt = i;
    while (db.stats().checkpointsWritten === 0 && i < failedAt + 50) {
      await db.put(`k${i++}`, value);
      await new Promise((r) => setImmediate(r));
    }
    expect(db.stats().checkpointsWritten).toBe(1);
    expect(i - failedAt).toBeLessThan(50); // a full threshold is ~500 writes of this size
    await db.close();
  });

  it('checkpoint() during a deferred open waits for the open, like a put', async () => {
    const db = new Engine<string, string>(LOCATION, { fs: new MemoryFileSystem(), valueEncoding: 'utf8' });
    const put = db.put('a', '1');
    const ckpt = db.checkpoint();
    await put;
    const r = await ckpt;
    expect(r.lsn).toBeGreaterThanOrEqual(0);
    expect(db.status).toBe('open');
    await db.close();
  });

  it('an engine given its backup from its first open backs up from LSN 1', async () => {
    const fs = new MemoryFileSystem();
    const db = new Engine<string, string>(LOCATION, { fs, wal: { segmentSizeBytes: 4096 }, valueEncoding: 'utf8', backup: { dir: '/bk', fs } });
    await db.open();
    for (let i = 0; i < 200; i++) await db.put(`k${i}`, 'x'.repeat(40));
    await db.checkpoint();
    await db.close();
    const again = new Engine<string, string>(LOCATION, { fs, wal: { segmentSizeBytes: 4096 }, valueEncoding: 'utf8', backup: { dir: '/bk', fs } });
    await again.open();
    expect(again.backup?.startLsn).toBe(1);
    await again.close();
  });

  it('WAL replay at open gives the event loop a turn every APPLY_YIELD_ENTRIES records, however many records one read returns', async () => {
    const fs = new MemoryFileSystem();
    const db = new Engine<string, string>(LOCATION, { fs, valueEncoding: 'utf8' });
    await db.open();
    const records = 4 * APPLY_YIELD_ENTRIES;
    for (let i = 0; i < records; i += 3) await Promise.all([db.put(`a${i}`, 'v'), db.put(`b${i}`, 'v'), db.put(`c${i}`, 'v')]);
    await db.close();
    const again = new Engine<string, string>(LOCATION, { fs, valueEncoding: 'utf8' });
    let turns = 0;
    let counting = true;
    const tick = (): void => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    await again.open();
    counting = false;
    expect(again.stats().recovery?.recordsReplayed).toBeGreaterThanOrEqual(records);
    expect(turns).toBeGreaterThanOrEqual(3);
    await again.close();
  });
});
