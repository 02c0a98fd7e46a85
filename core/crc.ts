/**
 * CRC-32 (IEEE 802.3, the zlib / crc-32 polynomial). Two implementations compute the same value:
 * the `crc-32` package (pure JS, cheapest for small inputs: no native call) and Node's zlib.crc32
 * (20.15+, native, much faster on large inputs). crc32() picks by size; the threshold comes from
 * bench/micro/crc.bench.ts, and test/crc.test.ts proves the two agree.
 */
import zlib from 'node:zlib';
import CRC32 from 'crc-32';

/**
 * Inputs at least this long go to zlib.crc32. Measured with bench/micro/crc.bench.ts on the project's
 * machines (Node 20.20): crc-32 ~1.9 GB/s at every size but wins below ~400 B, where the native call's
 * fixed cost dominates (16 B: 15 ns vs 63 ns; 128 B: 70 vs 137; 256 B: 135 vs 168); zlib.crc32 wins
 * from ~448 B (1.26x) and reaches 3x at 64 KiB (5.8 GB/s). A 128 B record (152 B framed) stays in JS.
 */
export const CRC_NATIVE_THRESHOLD_BYTES = 448;

const nativeCrc32: ((data: Uint8Array, value?: number) => number) | undefined = (
  zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }
).crc32;

/** crc-32's result is signed; ours is unsigned like zlib's. `seed` continues a previous CRC. */
export function crc32Js(data: Uint8Array, seed = 0): number {
  return CRC32.buf(data, seed | 0) >>> 0;
}

export function crc32Native(data: Uint8Array, seed = 0): number {
  if (!nativeCrc32) return crc32Js(data, seed);
  return nativeCrc32(data, seed >>> 0) >>> 0;
}

export function crc32(data: Uint8Array, seed = 0): number {
  return data.byteLength >= CRC_NATIVE_THRESHOLD_BYTES && nativeCrc32 ? nativeCrc32(data, seed >>> 0) >>> 0 : CRC32.buf(data, seed | 0) >>> 0;
}

export const hasNativeCrc32 = nativeCrc32 !== undefined;
