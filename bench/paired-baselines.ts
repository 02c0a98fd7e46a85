/**
 * Baselines taken right beside a measurement: the device's 4 KiB overwrite + fdatasync and the raw
 * group-commit ceiling at the matching batch size, each run in one slice just before and one just after
 * the measurement. On a shared machine the disk drifts within minutes; a ratio is only worth reading
 * when both sides saw the same disk, so sections 3 and 4 are judged against these, not against the
 * figures of sections 1 and 2 taken minutes earlier.
 */
import path from 'node:path';
import { openOverwriteLoop } from './device-latency.js';
import type { BenchProfile } from './profile.js';
import { RawBatchLoop, RawFile } from './raw-ceiling.js';
import { recordBytes } from '../record/format.js';

export interface PairedBaseline {
  deviceOpsPerSec: number;
  deviceP50Us: number;
  deviceP99Us: number;
  /** Raw ceiling records/s at batch = the measurement's writer count (NaN when a batch does not fit). */
  rawRecordsPerSec: number;
}

const deviceFileSizeBytes = 8 * 1024 * 1024;

export class PairedBaselines {
  readonly #device: ReturnType<typeof openOverwriteLoop>;
  readonly #rawFile: RawFile;
  readonly #rawLoops = new Map<string, RawBatchLoop>();
  readonly #sliceUs: number;
  #current: RawBatchLoop | undefined;

  constructor(dir: string, profile: BenchProfile) {
    this.#device = openOverwriteLoop(path.join(dir, 'paired-device.dat'), Math.min(deviceFileSizeBytes, profile.preallocatedFileSizeBytes));
    try {
      this.#rawFile = new RawFile(path.join(dir, 'paired-raw.dat'), profile.preallocatedFileSizeBytes);
    } catch (err) {
      this.#device.close();
      throw err;
    }
    // Each side (before, after) gives half the slice to the device and half to the raw ceiling.
    this.#sliceUs = (profile.pairedDeviceSliceMs * 1000) / 4;
  }

  /** Starts the baselines of a measurement at `recordSizeBytes` with `writersCount` writers. */
  async before(recordSizeBytes: number, writersCount: number): Promise<void> {
    const key = `${recordSizeBytes}x${writersCount}`;
    let raw = this.#rawLoops.get(key);
    if (raw === undefined && recordBytes(recordSizeBytes) * writersCount <= this.#rawFile.sizeBytes) {
      raw = new RawBatchLoop(this.#rawFile, recordSizeBytes, writersCount);
      this.#rawLoops.set(key, raw);
    }
    this.#current = raw;
    this.#device.loop.reset();
    raw?.reset();
    await this.#slice(true);
  }

  /** Ends the baselines of the measurement started by before(). */
  async after(): Promise<PairedBaseline> {
    await this.#slice(false);
    const device = this.#device.loop.result();
    return {
      deviceOpsPerSec: device.opsPerSec,
      deviceP50Us: device.latency.p50Us,
      deviceP99Us: device.latency.p99Us,
      rawRecordsPerSec: this.#current?.result().recordsPerSec ?? Number.NaN,
    };
  }

  close(): void {
    this.#device.close();
    this.#rawFile.close();
  }

  /**
   * One side's slice: the device and the raw ceiling, the device first before the measurement and last
   * after it, so that neither always takes what the section or row before left on the disk.
   */
  async #slice(deviceFirst: boolean): Promise<void> {
    if (!deviceFirst) await this.#current?.runFor(this.#sliceUs);
    await this.#device.loop.runFor(this.#sliceUs);
    if (deviceFirst) await this.#current?.runFor(this.#sliceUs);
  }
}
