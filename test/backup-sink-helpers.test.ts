/** The test helpers clean up however a test ends: a held flush is released, the sink and WAL closed. */
import { describe, expect, it } from 'vitest';
import type { BackupSink, ForceFlushResult } from '../backup/index.js';
import type { Wal } from '../wal/index.js';
import { appendDurable } from './helpers/backup-fixtures.js';
import { holdFlushAtDatasync, sinkFixture } from './helpers/held-flush.js';

describe('holdFlushAtDatasync and sinkFixture', () => {
  it('hold the flush inside its datasync, and on a throw release it, let it finish, and close the sink and the WAL', async () => {
    let sink: BackupSink | undefined;
    let wal: Wal | undefined;
    let started: Promise<ForceFlushResult> | undefined;
    await expect(
      (async () => {
        await using fixture = await sinkFixture();
        ({ sink, wal } = fixture);
        await appendDurable(fixture.wal, 3);
        await using held = await holdFlushAtDatasync(fixture.bfs, fixture.sink, () => fixture.sink.forceFlush());
        started = held.started;
        expect(fixture.sink.flushing).toBe(true);
        expect(fixture.sink.checkpointLsn).toBe(0);
        throw new Error('an assertion failed here');
      })(),
    ).rejects.toThrow('an assertion failed here');
    expect((await (started as Promise<ForceFlushResult>)).checkpointLsn).toBe(3);
    expect(sink?.stats().status).toBe('closed');
    expect(wal?.status).toBe('closed');
  });
});
