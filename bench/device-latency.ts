/**
 * Section 1, the device: what one durable 4 KiB write costs, in the tightest loop Node allows
 * (writeSync + fdatasyncSync on the main thread). Two patterns:
 *  - append-grow: each write extends the file, so every fdatasync also commits the new size and extent
 *    (file-system metadata, a journal commit on ext4);
 *  - overwrite: writes land on blocks of a preallocated file, so fdatasync flushes data only.
 * The two alternate in rounds so that a noisy neighbour slows both alike. The WAL section reuses
 * SyncWriteLoop to take its own overwrite baseline right before and after each of its measurements.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cdf, summarize, type CdfPoint, type LatencySummary } from './latency.js';
import { createPreallocatedFile, WrappingCursor } from './preallocated-file.js';
import type { BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';
import type { DeviceInfo } from './device-probe.js';
import { SyncLoop } from './sync-loop.js';

export const deviceWriteSizeBytes = 4096;

/** Below this, an overwrite + fdatasync is too fast to have reached stable media. */
export const volatileCacheP50UsWarn = 50;

export type DevicePattern = 'append-grow' | 'overwrite';

export interface DevicePatternResult {
  pattern: DevicePattern;
  writeSizeBytes: number;
  opsPerSec: number;
  /** write + fdatasync, per operation. */
  latency: LatencySummary;
  cdf: CdfPoint[];
}

export interface DeviceLatencyResult {
  appendGrow: DevicePatternResult;
  overwrite: DevicePatternResult;
  warnings: string[];
}

/** A write + fdatasync loop of 4 KiB writes, at the positions `nextPositionBytes` hands out. */
export class SyncWriteLoop {
  readonly pattern: DevicePattern;
  readonly #loop: SyncLoop;

  constructor(pattern: DevicePattern, fd: number, nextPositionBytes: () => number) {
    this.pattern = pattern;
    const buffer = crypto.randomBytes(deviceWriteSizeBytes); // random, in case the device compresses or dedups zeros
    this.#loop = new SyncLoop(() => {
      const written = fs.writeSync(fd, buffer, 0, buffer.length, nextPositionBytes());
      fs.fdatasyncSync(fd);
      if (written !== buffer.length) throw new Error(`short write: ${written} of ${buffer.length} B`);
    });
  }

  runFor(durationUs: number, onTick?: (fraction: number) => void): Promise<void> {
    return this.#loop.runFor(durationUs, onTick);
  }

  /** The figures of every slice run since the last reset. */
  result(): DevicePatternResult {
    const { sortedUs, stepsPerSec } = this.#loop.figures();
    return { pattern: this.pattern, writeSizeBytes: deviceWriteSizeBytes, opsPerSec: stepsPerSec, latency: summarize(sortedUs), cdf: cdf(sortedUs) };
  }

  reset(): void {
    this.#loop.reset();
  }
}

/** An overwrite loop on a fresh preallocated file at `filePath`; close() removes the file. */
export function openOverwriteLoop(filePath: string, fileSizeBytes: number): { loop: SyncWriteLoop; close: () => void } {
  const fd = createPreallocatedFile(filePath, fileSizeBytes);
  const cursor = new WrappingCursor(fileSizeBytes);
  return {
    loop: new SyncWriteLoop('overwrite', fd, () => cursor.next(deviceWriteSizeBytes)),
    close: () => {
      fs.closeSync(fd);
      fs.rmSync(filePath, { force: true });
    },
  };
}

/** Warnings a reader needs before trusting any durable figure on this device. */
export function deviceWarnings(device: DeviceInfo, overwrite: LatencySummary): string[] {
  const warnings: string[] = [];
  if (overwrite.p50Us < volatileCacheP50UsWarn) {
    warnings.push(
      `overwrite+fdatasync p50 is ${overwrite.p50Us.toFixed(1)} us (< ${volatileCacheP50UsWarn} us): faster than a flush to stable media; ` +
        'the device or the hypervisor probably acknowledges from a volatile cache, so "durable" may not survive power loss',
    );
  }
  if (device.writeCache === 'write through' && overwrite.p50Us < 4 * volatileCacheP50UsWarn) {
    warnings.push(
      `${device.blockDevice} reports "write through", so the kernel sends no cache flush; with fdatasync this fast, ` +
        'check that the device (or the virtual disk behind it) really has no volatile cache',
    );
  }
  if (device.fileSystem === 'tmpfs' || device.fileSystem === 'ramfs') {
    warnings.push(`${device.dir} is on ${device.fileSystem}: memory, nothing here survives a restart`);
  }
  return warnings;
}

export async function measureDeviceLatency(dir: string, device: DeviceInfo, profile: BenchProfile, progress: Progress): Promise<DeviceLatencyResult> {
  const appendPath = path.join(dir, 'device-append.dat');
  const appendFd = fs.openSync(appendPath, 'w+');
  let appendSizeBytes = 0;
  const append = new SyncWriteLoop('append-grow', appendFd, () => (appendSizeBytes += deviceWriteSizeBytes) - deviceWriteSizeBytes);
  let overwrite: ReturnType<typeof openOverwriteLoop> | undefined;
  try {
    overwrite = openOverwriteLoop(path.join(dir, 'device-overwrite.dat'), profile.preallocatedFileSizeBytes);
    const sliceUs = (profile.deviceDurationMs * 1000) / profile.deviceRoundsCount;
    for (let round = 0; round < profile.deviceRoundsCount; round++) {
      // Alternate which pattern goes first, so neither always runs right after the other's sync storm.
      const order = round % 2 === 0 ? [append, overwrite.loop] : [overwrite.loop, append];
      for (const loop of order) {
        progress.step(`${loop.pattern} round ${round + 1}/${profile.deviceRoundsCount}`);
        await loop.runFor(sliceUs, (fraction) => progress.advance(fraction));
      }
    }
    const overwriteResult = overwrite.loop.result();
    return { appendGrow: append.result(), overwrite: overwriteResult, warnings: deviceWarnings(device, overwriteResult.latency) };
  } finally {
    fs.closeSync(appendFd);
    fs.rmSync(appendPath, { force: true });
    overwrite?.close();
  }
}
