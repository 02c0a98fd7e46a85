/**
 * One flush's I/O: read a frozen range of durable WAL records, write them into backup files, then
 * publish the checkpoint. No scheduling and no state: the facade decides the range and keeps the result.
 *
 *   WAL readRaw(from..target) --> body (cut at segmentSizeBytesMax) --> target.putFile (directory: temp,
 *   fdatasync, rename, fsync dir; S3: a PUT) --> ... --> target.publishCheckpoint(target LSN)
 *
 * Ordering rule: the checkpoint is published only after every file of the range is durable under its
 * final name. A failure anywhere leaves the checkpoint where it was; a retry of the same range writes
 * the same file names again (a directory replaces them atomically by rename; S3 finds the same bytes
 * already there by checksum, see s3-target.ts).
 *
 * One exception, on S3 only (target.acceptsInline), for a flush a caller waits for (`inlineWanted`: a
 * forceFlush, a close; a background flush has no one to answer sooner and would send its bytes twice):
 * a flush of ONE file, small enough, publishes a checkpoint that carries the file inline, in one PUT
 * (sent once the previous inline file, if any, is stored under its name)
 *
 *   WAL readRaw --> body --> target.publishCheckpointInline(checkpoint + file)   (then, in the background,
 *                                                                                the file under its name)
 *
 * so the file is durable in the target exactly when the checkpoint naming it is (the same PUT): the
 * rule holds, at one round trip per flush instead of two.
 */
import { assert } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { READ_CHUNK_BYTES, type Wal } from '../wal/index.js';
import { checkpointBytes, encodeBackupFile, type Compression } from './backup-file.js';
import type { BackupTarget } from './target.js';
import { BodyBuilder, encodeCheckpointInline } from './format.js';
import { READ_CHUNK_BYTES_MIN } from './limits.js';

export interface PipelineOptions {
  wal: Wal;
  /** Where the files go: the backup directory or an S3 prefix (target.ts). */
  target: BackupTarget;
  compression: Compression;
  segmentSizeBytesMax: number;
  clock: Clock;
}

export interface CopyResult {
  files: number;
  bytes: number;
  readMs: number;
  writeMs: number;
  publishMs: number;
  checkpointMs: number;
}

/**
 * Copies LSNs fromLsn..targetLsn (all durable in the WAL) into the backup and moves the checkpoint to
 * targetLsn; the checkpoint keeps recording `startLsn`, where the backup starts. `inlineWanted`: a
 * caller waits for this flush, so one round trip is worth sending its bytes twice (S3, see above).
 */
export async function copyRange(o: PipelineOptions, fromLsn: number, targetLsn: number, startLsn: number, inlineWanted = false): Promise<CopyResult> {
  assert(startLsn <= fromLsn, `backup starts at ${startLsn}, after the flush range ${fromLsn}..${targetLsn}`);
  assert(targetLsn >= fromLsn && targetLsn <= o.wal.durableLsn, `copy range ${fromLsn}..${targetLsn}, WAL durable ${o.wal.durableLsn}`);
  const now = (): number => o.clock.nowMs();
  const out: CopyResult = { files: 0, bytes: 0, readMs: 0, writeMs: 0, publishMs: 0, checkpointMs: 0 };
  let body = new BodyBuilder();
  let expected = fromLsn;
  const publish = async (encoded?: Awaited<ReturnType<typeof encodeBackupFile>>): Promise<void> => {
    const file = encoded ?? (await encodeBackupFile(body, o.compression));
    const r = await o.target.putFile(file.name, file.chunks);
    out.files++;
    out.bytes += file.bytes;
    out.writeMs += r.writeMs;
    out.publishMs += r.publishMs;
    body = new BodyBuilder();
  };
  let t = now();
  // Verified runs of WAL-framed records, copied into backup files as they are: no per-record work.
  const chunkBytesMax = Math.max(READ_CHUNK_BYTES_MIN, Math.min(READ_CHUNK_BYTES, o.segmentSizeBytesMax));
  for await (const span of o.wal.readRaw({ fromLsn, toLsn: targetLsn, chunkBytesMax })) {
    assert(span.firstLsn === expected, `WAL read returned LSN ${span.firstLsn}, expected ${expected}`);
    expected = span.lastLsn + 1;
    if (body.recordCount > 0 && body.bytes + span.bytes.byteLength > o.segmentSizeBytesMax) {
      out.readMs += now() - t;
      await publish();
      t = now();
    }
    body.add(span);
  }
  out.readMs += now() - t;
  assert(expected === targetLsn + 1, `WAL read ended at ${expected - 1}, wanted ${targetLsn}`);
  assert(body.recordCount > 0, `flush ${fromLsn}..${targetLsn} ends with an empty file`);
  const last = await encodeBackupFile(body, o.compression);
  if (inlineWanted && out.files === 0 && o.target.publishCheckpointInline !== undefined && o.target.acceptsInline?.(last.bytes) === true) {
    // The flush's only file, inline in its checkpoint: one PUT publishes both (the commit point).
    const tc = now();
    await o.target.publishCheckpointInline(encodeCheckpointInline(targetLsn, startLsn, Date.now(), last.chunks), last.name);
    out.checkpointMs = now() - tc;
    out.files = 1;
    out.bytes += last.bytes;
    return out;
  }
  const checkpoint = checkpointBytes(targetLsn, startLsn);
  // Its request is built while the last file uploads (S3); it is sent only after that file is durable.
  const prepared = o.target.prepareCheckpoint?.(checkpoint) ?? null;
  try {
    await publish(last);
  } catch (err) {
    prepared?.cancel();
    throw err;
  }
  const tc = now();
  // Only now, with every file of the range durable under its name, may the checkpoint move.
  await (prepared === null ? o.target.publishCheckpoint(checkpoint) : prepared.publish());
  out.checkpointMs = now() - tc;
  return out;
}
