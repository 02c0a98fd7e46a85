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
import { cdf, LatencyRecorder, nowUs, summarize, type CdfPoint, type LatencySummary } from './latency.js';
import { createPreallocatedFile, WrappingCursor } from './preallocated-file.js';
import type { BenchProfile } from './profile.js';
import type { Progress } from './progress.js';
import type { DeviceInfo } from './device-probe.js';

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

/**
 * One synchronous write + fdatasync loop on one file: the pattern decides where each write lands.
 * It can run in several slices (interleaved with other measurements); the result covers them all.
 */
export class SyncWriteLoop {
  readonly pattern: DevicePattern;
  readonly #fd: number;
  readonly #nextPositionBytes: () => number;
  readonly #buffer = crypto.randomBytes(deviceWriteSizeBytes); // random, in case the device compresses or dedups zeros
  #recorder = new LatencyRecorder();
  #elapsedUs = 0;

  constructor(pattern: DevicePattern, fd: number, nextPositionBytes: () => number) {
    this.pattern = pattern;
    this.#fd = fd;
    this.#nextPositionBytes = nextPositionBytes;
  }

  runFor(durationUs: number, onTick: (fraction: number) => void = () => {}): void {
    const startUs = nowUs();
    let doneUs = 0;
    while (doneUs < durationUs) {
      const t0 = nowUs();
      const written = fs.writeSync(this.#fd, this.#buffer, 0, this.#buffer.length, this.#nextPositionBytes());
      fs.fdatasyncSync(this.#fd);
      const t1 = nowUs();
      if (written !== this.#buffer.length) throw new Error(`short write: ${written} of ${this.#buffer.length} B`);
      this.#recorder.add(t1 - t0);
      doneUs = t1 - startUs;
      onTick(doneUs / durationUs);
    }
    this.#elapsedUs += doneUs;
  }

  /** The figures of every slice run since the last reset. */
  result(): DevicePatternResult {
    const sorted = this.#recorder.sorted();
    if (sorted.length === 0) throw new Error(`the ${this.pattern} loop has not run`);
    return {
      pattern: this.pattern,
      writeSizeBytes: deviceWriteSizeBytes,
      opsPerSec: sorted.length / (this.#elapsedUs / 1e6),
      latency: summarize(sorted),
      cdf: cdf(sorted),
    };
  }

  reset(): void {
    this.#recorder = new LatencyRecorder();
    this.#elapsedUs = 0;
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

export function measureDeviceLatency(dir: string, device: DeviceInfo, profile: BenchProfile, progress: Progress): DeviceLatencyResult {
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
        loop.runFor(sliceUs, (fraction) => progress.advance(fraction));
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
