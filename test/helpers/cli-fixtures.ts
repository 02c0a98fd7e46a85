/** Fixtures for the CLI tests: an in-process io that captures what a command writes, and a small backup. */
import path from 'node:path';
import { BackupSink } from '../../backup/index.js';
import type { CliIo } from '../../cli/subcommand.js';
import { Wal } from '../../wal/index.js';

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
}

/** A CliIo whose stdout and stderr are kept as strings; `cwd` resolves relative paths. */
export function captureIo(cwd: string): CapturedIo {
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

/** A WAL in base/wal and its backup in base/bk holding LSNs 1..120 (40-byte payloads filled with their index), in several files. */
export async function writeSmallBackup(base: string): Promise<void> {
  const wal = await Wal.open({ dir: path.join(base, 'wal'), segmentSizeBytes: 64 * 1024 });
  const sink = await BackupSink.open({ wal, dir: path.join(base, 'bk'), segmentSizeBytesMax: 2048 });
  for (let i = 0; i < 120; i++) wal.append(new Uint8Array(40).fill(i));
  await sink.forceFlush();
  await sink.close();
  await wal.close();
}
