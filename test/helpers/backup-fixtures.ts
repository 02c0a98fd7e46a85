import { Wal } from '../../wal/wal.js';
import { MemoryFileSystem } from '../../fs/memory-file-system.js';
import { FaultFileSystem } from '../../fs/fault-file-system.js';
import { BackupSink } from '../../backup/sink.js';
import type { BackupSinkOptions } from '../../backup/options.js';
import { payloadFor } from './wal-fixtures.js';

export interface Gate {
  promise: Promise<void>;
  open: () => void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** A WAL on its own memory fs, and a sink whose directory is on a fault-injecting memory fs. */
export async function makeSink(
  options: Partial<BackupSinkOptions> = {},
): Promise<{ wal: Wal; sink: BackupSink; bfs: FaultFileSystem; bmem: MemoryFileSystem; wmem: MemoryFileSystem; wfs: FaultFileSystem }> {
  const wmem = new MemoryFileSystem();
  const wfs = new FaultFileSystem(wmem);
  const wal = await Wal.open({ dir: '/wal', fs: wfs, segmentSizeBytes: 64 * 1024 });
  const bmem = new MemoryFileSystem();
  const bfs = new FaultFileSystem(bmem);
  const sink = await BackupSink.open({ wal, dir: '/backup', fs: bfs, flushIntervalMs: 3_600_000, ...options });
  return { wal, sink, bfs, bmem, wmem, wfs };
}

/** Appends n deterministic records and waits until they are durable in the WAL. Returns the last LSN. */
export async function appendDurable(wal: Wal, n: number, length = 50): Promise<number> {
  let lsn = 0;
  for (let i = 0; i < n; i++) lsn = wal.append(payloadFor(wal.lastLsn + 1, length));
  await wal.sync();
  return lsn;
}

/** Waits until a predicate holds, polling the event loop (bounded). */
export async function until(pred: () => boolean, what: string, maxMs = 5000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
