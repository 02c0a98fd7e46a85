/**
 * A killed sink's late upload, made deterministic: the files a sink's flush of fromLsn..toLsn sends,
 * captured as the pipeline built them (names and bytes) and stored nowhere. A test puts them itself
 * after a new sink listed the backup: the order a SIGKILLed sink's PUT, applied late by the store, takes.
 */
import { copyRange } from '../../backup/flush-pipeline.js';
import type { BackupTarget } from '../../backup/target.js';
import { emptyTargetStats } from '../../backup/target.js';
import { realClock } from '../../core/clock.js';
import type { Wal } from '../../wal/index.js';

export interface CapturedFile {
  name: string;
  bytes: Buffer;
}

/** What a sink's flush of fromLsn..toLsn would upload before its checkpoint (the checkpoint is never sent). */
export async function filesOfFlush(wal: Wal, fromLsn: number, toLsn: number, startLsn: number, segmentSizeBytesMax = 64 * 1024 * 1024): Promise<CapturedFile[]> {
  const files: CapturedFile[] = [];
  const killed = new Error('killed before its checkpoint');
  const capture: BackupTarget = {
    location: 'capture',
    readFs: undefined as never,
    claimsByCheckpoint: false,
    prepare: async () => {},
    putFile: async (name, chunks) => {
      files.push({ name, bytes: Buffer.concat(chunks) });
      return { writeMs: 0, publishMs: 0 };
    },
    getFile: async () => null,
    listFiles: async () => [],
    deleteFiles: async () => {},
    publishCheckpoint: () => Promise.reject(killed),
    stats: () => emptyTargetStats(),
    close: async () => {},
  };
  const pipeline = { wal, target: capture, compression: 'none' as const, segmentSizeBytesMax, clock: realClock };
  const err = await copyRange(pipeline, fromLsn, toLsn, startLsn).then(() => null, (e: unknown) => e);
  if (err !== killed) throw new Error(`capturing the flush ${fromLsn}..${toLsn} failed: ${String(err)}`);
  return files;
}
