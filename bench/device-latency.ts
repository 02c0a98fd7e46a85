/**
 * Section 1, the device: what one durable 4 KiB write costs, in the tightest loop Node allows
 * (writeSync + fdatasyncSync on the main thread). Two patterns:
 *  - append-grow: each write extends the file, so every fdatasync also commits the new size and extent
 *    (file-system metadata, a journal commit on ext4);
 *  - overwrite: writes land on blocks of a preallocated file, so fdatasync flushes data only.
 * The two alternate in rounds so that a noisy neighbour slows both alike. The overwrite figures are
 * the baseline for the WAL at one writer and for ack-latency targets.
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

interface PatternState {
  pattern: DevicePattern;
  fd: number;
  recorder: LatencyRecorder;
  elapsedUs: number;
  nextPositionBytes: () => number;
}

function runFor(state: PatternState, buffer: Buffer, durationUs: number, onTick: (doneUs: number) => void): void {
  const startUs = nowUs();
  let doneUs = 0;
  while (doneUs < durationUs) {
    const t0 = nowUs();
    const positionBytes = state.nextPositionBytes();
    const written = fs.writeSync(state.fd, buffer, 0, buffer.length, positionBytes);
    fs.fdatasyncSync(state.fd);
    const t1 = nowUs();
    if (written !== buffer.length) throw new Error(`short write: ${written} of ${buffer.length} B`);
    state.recorder.add(t1 - t0);
    doneUs = t1 - startUs;
    onTick(doneUs);
  }
  state.elapsedUs += doneUs;
}

function finish(state: PatternState): DevicePatternResult {
  const sorted = state.recorder.sorted();
  return {
    pattern: state.pattern,
    writeSizeBytes: deviceWriteSizeBytes,
    opsPerSec: sorted.length / (state.elapsedUs / 1e6),
    latency: summarize(sorted),
    cdf: cdf(sorted),
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
  const buffer = crypto.randomBytes(deviceWriteSizeBytes); // random, in case the device compresses or dedups zeros
  const appendPath = path.join(dir, 'device-append.dat');
  const overwritePath = path.join(dir, 'device-overwrite.dat');
  const appendFd = fs.openSync(appendPath, 'w+');
  let overwriteFd: number | undefined;
  try {
    overwriteFd = createPreallocatedFile(overwritePath, profile.preallocatedFileSizeBytes);
    let appendSizeBytes = 0;
    const cursor = new WrappingCursor(profile.preallocatedFileSizeBytes);
    const append: PatternState = {
      pattern: 'append-grow',
      fd: appendFd,
      recorder: new LatencyRecorder(),
      elapsedUs: 0,
      nextPositionBytes: () => (appendSizeBytes += deviceWriteSizeBytes) - deviceWriteSizeBytes,
    };
    const overwrite: PatternState = {
      pattern: 'overwrite',
      fd: overwriteFd,
      recorder: new LatencyRecorder(),
      elapsedUs: 0,
      nextPositionBytes: () => cursor.next(deviceWriteSizeBytes),
    };
    const sliceUs = (profile.deviceDurationMs * 1000) / profile.deviceRoundsCount;
    for (let round = 0; round < profile.deviceRoundsCount; round++) {
      // Alternate which pattern goes first, so neither always runs right after the other's sync storm.
      const order = round % 2 === 0 ? [append, overwrite] : [overwrite, append];
      for (const state of order) {
        progress.step(`${state.pattern} round ${round + 1}/${profile.deviceRoundsCount}`);
        runFor(state, buffer, sliceUs, (doneUs) => progress.advance(doneUs / sliceUs));
      }
    }
    const overwriteResult = finish(overwrite);
    return { appendGrow: finish(append), overwrite: overwriteResult, warnings: deviceWarnings(device, overwriteResult.latency) };
  } finally {
    fs.closeSync(appendFd);
    if (overwriteFd !== undefined) fs.closeSync(overwriteFd);
    fs.rmSync(appendPath, { force: true });
    fs.rmSync(overwritePath, { force: true });
  }
}
