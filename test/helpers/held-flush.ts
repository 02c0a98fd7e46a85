/**
 * "A backup flush held at its datasync": the setup that forceFlush tests share. The next fdatasync of a
 * backup data file waits on a gate, a flush is started, and the helper returns once that flush is inside
 * the held datasync (sink.flushing, the datasync called). Declare it with `await using` (or release
 * it in `finally`): a hold left closed would make the sink's close() wait forever.
 *
 *   await using fixture = await sinkFixture();
 *   const { wal, sink, bfs } = fixture;
 *   await using held = await holdFlushAtDatasync(bfs, sink, () => sink.forceFlush());
 *   ...calls while the flush is held...
 *   held.release();
 *   await held.started;
 */
import type { BackupSink } from '../../backup/index.js';
import type { FaultFileSystem } from '../../fs/index.js';
import type { BackupSinkOptions } from '../../backup/options.js';
import { makeSink } from './backup-fixtures.js';
import { deferred, until } from './async.js';

/** The fdatasync of a backup data file under its temp name (not the checkpoint's). */
export const BACKUP_DATA_SYNC = { op: 'datasync' as const, path: /\.fpb\.tmp$/ };

export interface HeldFlush<T> extends AsyncDisposable {
  /** What `start` returned: the call whose flush is held. */
  readonly started: Promise<T>;
  /** Lets the held datasync, and so the flush, go on. Idempotent. */
  release(): void;
}

export async function holdFlushAtDatasync<T>(bfs: FaultFileSystem, sink: BackupSink, start: () => Promise<T>): Promise<HeldFlush<T>> {
  const gate = deferred<void>();
  const release = (): void => gate.resolve();
  const datasyncsBefore = bfs.counts.datasync;
  bfs.inject({ ...BACKUP_DATA_SYNC, hold: gate.promise });
  const started = start();
  try {
    await until(() => sink.flushing && bfs.counts.datasync > datasyncsBefore, 'the flush to reach its held datasync');
  } catch (err) {
    release();
    throw err;
  }
  return {
    started,
    release,
    [Symbol.asyncDispose]: async () => release(),
  };
}

export type SinkFixture = Awaited<ReturnType<typeof makeSink>> & AsyncDisposable;

/**
 * makeSink (a WAL and a sink on fault-injecting memory file systems) for `await using`: when the scope
 * ends, however it ends, the sink and then the WAL are closed, so a failed assertion leaves nothing
 * open. A test that closes them itself, to assert on close, is fine: close is idempotent.
 */
export async function sinkFixture(options: Partial<BackupSinkOptions> = {}): Promise<SinkFixture> {
  const f = await makeSink(options);
  return {
    ...f,
    [Symbol.asyncDispose]: async () => {
      await f.sink.close().catch(() => {});
      await f.wal.close().catch(() => {});
    },
  };
}

/** A gate for a FaultFileSystem `hold` that opens at the latest when the scope ends (`await using`). */
export function scopedGate(): { promise: Promise<void>; open(): void } & AsyncDisposable {
  const d = deferred<void>();
  const open = (): void => d.resolve();
  return { promise: d.promise, open, [Symbol.asyncDispose]: async () => open() };
}
