/**
 * LSNs are plain numbers: the first record ever written is LSN 1, LSNs are contiguous and never reused,
 * and 0 means "nothing". They are stored on disk as unsigned 64-bit little-endian integers, but must stay
 * below Number.MAX_SAFE_INTEGER in memory; every place that makes one asserts it.
 */

/** Validates an LSN argument from a caller: TypeError for non-numbers, RangeError for bad values. */
export function checkLsnArgument(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number (an LSN), got ${typeof value}`);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a safe non-negative integer, got ${value}`);
  return value;
}
