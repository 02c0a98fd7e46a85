/**
 * Section 2, the raw group-commit ceiling: the most durable records per second this device gives a
 * single Node thread at a given batch size, with nothing between the loop and the kernel: one
 * writevSync + one fdatasyncSync per batch, into a preallocated file. A batch is written as a WAL
 * commits it: N records framed as the log frames them (recordBytes: header and payload, 8-aligned),
 * back to back in one buffer, where the last batch ended (not page-aligned). A WAL that commits batches
 * of N records cannot beat this figure at batch N; the ratio to it is what the WAL costs. (Until
 * 2026-12-05 each record was its own iovec, ~73 ns more per record in the kernel, and unframed: the
 * first made the ceiling ~5% low at 64 records and ~30% low at 1,024, flattering the WAL; the second
 * flattered raw by its smaller, page-aligned writes. docs/decisions.md, "The raw ceiling as a WAL writes".)
 * Each batch size runs in two passes (ascending, then descending order) to spread drift over all sizes.
 * The WAL section reuses RawBatchLoop to re-measure the ceiling right beside each of its rows.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { summarize, type LatencySummary } from './latency.js';
import { createPreallocatedFile, WrappingCursor } from './preallocated-file.js';
import { writersCountsFor, type BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';
import { SyncLoop } from './sync-loop.js';
import { recordBytes } from '../record/format.js';

/** The record size the batch list is defined for. */
export const rawRecordSizeBytes = 128;

export interface RawCeilingResult {
  recordSizeBytes: number;
  batchRecordsCount: number;
  recordsPerSec: number;
  batchesPerSec: number;
  /** writev + fdatasync, per batch. */
  batchLatency: LatencySummary;
}

/** A preallocated file that raw batch loops write into, wrapping around at its end. */
export class RawFile {
  readonly #path: string;
  readonly fd: number;
  readonly cursor: WrappingCursor;
  readonly sizeBytes: number;

  constructor(filePath: string, sizeBytes: number) {
    this.#path = filePath;
    this.sizeBytes = sizeBytes;
    this.fd = createPreallocatedFile(filePath, sizeBytes);
    this.cursor = new WrappingCursor(sizeBytes);
  }

  close(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.#path, { force: true });
  }
}

/** writevSync of `batchRecordsCount` records + fdatasyncSync, in a loop. */
export class RawBatchLoop {
  readonly recordSizeBytes: number;
  readonly batchRecordsCount: number;
  readonly #loop: SyncLoop;

  constructor(file: RawFile, recordSizeBytes: number, batchRecordsCount: number) {
    const batchSizeBytes = batchRecordsCount * recordBytes(recordSizeBytes);
    if (batchSizeBytes > file.sizeBytes) throw new RangeError(`a batch of ${batchSizeBytes} B does not fit in the ${file.sizeBytes} B file`);
    this.recordSizeBytes = recordSizeBytes;
    this.batchRecordsCount = batchRecordsCount;
    const buffers = [crypto.randomBytes(batchSizeBytes)];
    this.#loop = new SyncLoop(() => {
      const written = fs.writevSync(file.fd, buffers, file.cursor.next(batchSizeBytes));
      fs.fdatasyncSync(file.fd);
      if (written !== batchSizeBytes) throw new Error(`short writev: ${written} of ${batchSizeBytes} B`);
    });
  }

  runFor(durationUs: number, onTick?: (fraction: number) => void): Promise<void> {
    return this.#loop.runFor(durationUs, onTick);
  }

  result(): RawCeilingResult {
    const { sortedUs, stepsPerSec } = this.#loop.figures();
    return {
      recordSizeBytes: this.recordSizeBytes,
      batchRecordsCount: this.batchRecordsCount,
      recordsPerSec: stepsPerSec * this.batchRecordsCount,
      batchesPerSec: stepsPerSec,
      batchLatency: summarize(sortedUs),
    };
  }

  reset(): void {
    this.#loop.reset();
  }
}

/**
 * Batch sizes to measure for a record size: the list, and every writer count a store runs at,
 * as long as one batch fits in the preallocated file.
 */
export function rawBatchesFor(profile: BenchProfile, recordSizeBytes: number): number[] {
  const counts = new Set<number>([
    ...(recordSizeBytes === rawRecordSizeBytes ? profile.rawBatchRecordsCounts : []),
    ...writersCountsFor(profile.walWritersCounts, recordSizeBytes),
    ...writersCountsFor(profile.peerWritersCounts, recordSizeBytes),
  ]);
  return [...counts].filter((count) => count * recordBytes(recordSizeBytes) <= profile.preallocatedFileSizeBytes).sort((a, b) => a - b);
}

export async function measureRawCeiling(dir: string, profile: BenchProfile, progress: Progress): Promise<RawCeilingResult[]> {
  const results: RawCeilingResult[] = [];
  const file = new RawFile(path.join(dir, 'raw-ceiling.dat'), profile.preallocatedFileSizeBytes);
  try {
    for (const recordSizeBytes of profile.recordSizesBytes) {
      const loops = rawBatchesFor(profile, recordSizeBytes).map((count) => new RawBatchLoop(file, recordSizeBytes, count));
      const passUs = (profile.rawDurationMs * 1000) / 2;
      for (const pass of [loops, [...loops].reverse()]) {
        for (const loop of pass) {
          progress.step(`${recordSizeBytes} B x ${loop.batchRecordsCount}`);
          await loop.runFor(passUs, (fraction) => progress.advance(fraction));
        }
      }
      results.push(...loops.map((loop) => loop.result()));
    }
    return results;
  } finally {
    file.close();
  }
}

/** Steps measureRawCeiling will report to the progress bar. */
export function rawCeilingStepsCount(profile: BenchProfile): number {
  return profile.recordSizesBytes.reduce((sum, size) => sum + 2 * rawBatchesFor(profile, size).length, 0);
}
