/**
 * Section 2, the raw group-commit ceiling: the most durable records per second this device gives a
 * single Node thread at a given batch size, with nothing between the loop and the kernel: one
 * writevSync of N records + one fdatasyncSync per batch, into a preallocated file. A WAL that commits
 * batches of N records cannot beat this figure at batch N; the ratio to it is what the WAL costs.
 * Each batch size runs in two passes (ascending, then descending order) to spread drift over all sizes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LatencyRecorder, nowUs, summarize, type LatencySummary } from './latency.js';
import { createPreallocatedFile, WrappingCursor } from './preallocated-file.js';
import { writersCountsFor, type BenchProfile } from './profile.js';
import type { Progress } from './progress.js';

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

interface BatchState {
  batchRecordsCount: number;
  buffers: Buffer[];
  recorder: LatencyRecorder;
  elapsedUs: number;
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
  return [...counts].filter((count) => count * recordSizeBytes <= profile.preallocatedFileSizeBytes).sort((a, b) => a - b);
}

function runBatches(fd: number, cursor: WrappingCursor, state: BatchState, recordSizeBytes: number, durationUs: number, onTick: (fraction: number) => void): void {
  const batchSizeBytes = state.batchRecordsCount * recordSizeBytes;
  const startUs = nowUs();
  let doneUs = 0;
  while (doneUs < durationUs) {
    const t0 = nowUs();
    const written = fs.writevSync(fd, state.buffers, cursor.next(batchSizeBytes));
    fs.fdatasyncSync(fd);
    const t1 = nowUs();
    if (written !== batchSizeBytes) throw new Error(`short writev: ${written} of ${batchSizeBytes} B`);
    state.recorder.add(t1 - t0);
    doneUs = t1 - startUs;
    onTick(doneUs / durationUs);
  }
  state.elapsedUs += doneUs;
}

export function measureRawCeiling(dir: string, profile: BenchProfile, progress: Progress): RawCeilingResult[] {
  const results: RawCeilingResult[] = [];
  const filePath = path.join(dir, 'raw-ceiling.dat');
  const fd = createPreallocatedFile(filePath, profile.preallocatedFileSizeBytes);
  try {
    const cursor = new WrappingCursor(profile.preallocatedFileSizeBytes);
    for (const recordSizeBytes of profile.recordSizesBytes) {
      const states: BatchState[] = rawBatchesFor(profile, recordSizeBytes).map((batchRecordsCount) => {
        const block = crypto.randomBytes(batchRecordsCount * recordSizeBytes);
        const buffers = Array.from({ length: batchRecordsCount }, (_, i) => block.subarray(i * recordSizeBytes, (i + 1) * recordSizeBytes));
        return { batchRecordsCount, buffers, recorder: new LatencyRecorder(), elapsedUs: 0 };
      });
      const passUs = (profile.rawDurationMs * 1000) / 2;
      for (const pass of [states, [...states].reverse()]) {
        for (const state of pass) {
          progress.step(`${recordSizeBytes} B x ${state.batchRecordsCount}`);
          runBatches(fd, cursor, state, recordSizeBytes, passUs, (fraction) => progress.advance(fraction));
        }
      }
      for (const state of states) {
        const sorted = state.recorder.sorted();
        const batchesPerSec = sorted.length / (state.elapsedUs / 1e6);
        results.push({
          recordSizeBytes,
          batchRecordsCount: state.batchRecordsCount,
          recordsPerSec: batchesPerSec * state.batchRecordsCount,
          batchesPerSec,
          batchLatency: summarize(sorted),
        });
      }
    }
    return results;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(filePath, { force: true });
  }
}

/** Steps measureRawCeiling will report to the progress bar. */
export function rawCeilingStepsCount(profile: BenchProfile): number {
  return profile.recordSizesBytes.reduce((sum, size) => sum + 2 * rawBatchesFor(profile, size).length, 0);
}
