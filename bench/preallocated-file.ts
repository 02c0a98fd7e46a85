/**
 * A file whose blocks are all written and synced before the measurement starts, so that a later write
 * overwrites allocated blocks and fdatasync has only data to flush (no extent or size change to commit).
 * fallocate is not enough on ext4: it leaves unwritten extents, and the first write to each one is a
 * metadata change. Synchronous by design: the callers measure tight synchronous loops.
 */
import fs from 'node:fs';

const zeroChunkSizeBytes = 1024 * 1024;

/** Creates (or truncates) `path`, fills it with zeros, fdatasyncs it, and returns the open fd ('r+'). */
export function createPreallocatedFile(path: string, sizeBytes: number): number {
  if (!(Number.isSafeInteger(sizeBytes) && sizeBytes > 0)) throw new RangeError(`sizeBytes must be a positive integer, got ${sizeBytes}`);
  const fd = fs.openSync(path, 'w+');
  try {
    const zeros = Buffer.alloc(Math.min(zeroChunkSizeBytes, sizeBytes));
    let positionBytes = 0;
    while (positionBytes < sizeBytes) {
      const lengthBytes = Math.min(zeros.length, sizeBytes - positionBytes);
      positionBytes += fs.writeSync(fd, zeros, 0, lengthBytes, positionBytes);
    }
    fs.fsyncSync(fd); // the size and the extents, once; later overwrites only need fdatasync
    if (fs.fstatSync(fd).size !== sizeBytes) throw new Error(`preallocation of ${path} came out the wrong size`);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Hands out write positions in a preallocated file, wrapping to the start when the next write would
 * pass the end, so a measurement can run for any time without growing the file.
 */
export class WrappingCursor {
  readonly #fileSizeBytes: number;
  #positionBytes = 0;

  constructor(fileSizeBytes: number) {
    this.#fileSizeBytes = fileSizeBytes;
  }

  next(lengthBytes: number): number {
    if (lengthBytes > this.#fileSizeBytes) throw new RangeError(`a ${lengthBytes} B write does not fit in a ${this.#fileSizeBytes} B file`);
    if (this.#positionBytes + lengthBytes > this.#fileSizeBytes) this.#positionBytes = 0;
    const positionBytes = this.#positionBytes;
    this.#positionBytes += lengthBytes;
    return positionBytes;
  }
}
