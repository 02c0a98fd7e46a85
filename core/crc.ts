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

/**
 * Slicing-by-16 tables for crc32Range: table t (0..15) at [t * 256, t * 256 + 256). Table 0 is the
 * byte-at-a-time table of the reflected polynomial 0xEDB88320; table t advances a byte through t more zero bytes.
 */
const SLICE_TABLES = ((): Int32Array => {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n] as number;
    for (let k = 1; k < 16; k++) {
      c = (c >>> 8) ^ (t[c & 255] as number);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** Int32 word loads read little-endian words only on a little-endian platform (all Node targets today). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** The last buffer crc32Range read by words, and its word view (one per buffer; the record paths reuse a few buffers). */
let wordsOf: ArrayBufferLike | null = null;
let words: Int32Array<ArrayBufferLike> = new Int32Array(0);

/**
 * CRC-32 of buf[start, end) without a subarray: the record paths (encode at append, decode in recovery
 * and reads) checksum one small range per record, and a subarray per record was an allocation per
 * record (the recovery scan's garbage collector time). Same value as crc32(buf.subarray(start, end)).
 * When the range starts 4-aligned in its buffer (records are 8-aligned; their CRC starts at +4), it
 * loads 32-bit words, 4 loads per 16 bytes instead of 16 (~1.3x on 148 B). From
 * CRC_NATIVE_THRESHOLD_BYTES on, zlib.crc32 on a subarray is faster and the allocation is amortized.
 * It keeps a word view of the last buffer it read by words (so that one buffer stays referenced).
 */
export function crc32Range(buf: Uint8Array, start: number, end: number): number {
  if (end - start >= CRC_NATIVE_THRESHOLD_BYTES && nativeCrc32) return nativeCrc32(buf.subarray(start, end), 0) >>> 0;
  const T = SLICE_TABLES;
  let c = -1;
  let i = start;
  const at = buf.byteOffset + start;
  if (LITTLE_ENDIAN && (at & 3) === 0 && end - start >= 16) {
    if (wordsOf !== buf.buffer) {
      wordsOf = buf.buffer;
      words = new Int32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
    }
    const W = words;
    let j = at >>> 2;
    for (const last = end - 16; i <= last; i += 16, j += 4) {
      const w0 = (W[j] as number) ^ c;
      const w1 = W[j + 1] as number;
      const w2 = W[j + 2] as number;
      const w3 = W[j + 3] as number;
      c =
        (T[3840 + (w0 & 255)] as number) ^
        (T[3584 + ((w0 >>> 8) & 255)] as number) ^
        (T[3328 + ((w0 >>> 16) & 255)] as number) ^
        (T[3072 + (w0 >>> 24)] as number) ^
        (T[2816 + (w1 & 255)] as number) ^
        (T[2560 + ((w1 >>> 8) & 255)] as number) ^
        (T[2304 + ((w1 >>> 16) & 255)] as number) ^
        (T[2048 + (w1 >>> 24)] as number) ^
        (T[1792 + (w2 & 255)] as number) ^
        (T[1536 + ((w2 >>> 8) & 255)] as number) ^
        (T[1280 + ((w2 >>> 16) & 255)] as number) ^
        (T[1024 + (w2 >>> 24)] as number) ^
        (T[768 + (w3 & 255)] as number) ^
        (T[512 + ((w3 >>> 8) & 255)] as number) ^
        (T[256 + ((w3 >>> 16) & 255)] as number) ^
        (T[w3 >>> 24] as number);
    }
  } else {
    for (const last = end - 16; i <= last; i += 16) {
      c =
        (T[3840 + ((buf[i] as number) ^ (c & 255))] as number) ^
        (T[3584 + ((buf[i + 1] as number) ^ ((c >>> 8) & 255))] as number) ^
        (T[3328 + ((buf[i + 2] as number) ^ ((c >>> 16) & 255))] as number) ^
        (T[3072 + ((buf[i + 3] as number) ^ (c >>> 24))] as number) ^
        (T[2816 + (buf[i + 4] as number)] as number) ^
        (T[2560 + (buf[i + 5] as number)] as number) ^
        (T[2304 + (buf[i + 6] as number)] as number) ^
        (T[2048 + (buf[i + 7] as number)] as number) ^
        (T[1792 + (buf[i + 8] as number)] as number) ^
        (T[1536 + (buf[i + 9] as number)] as number) ^
        (T[1280 + (buf[i + 10] as number)] as number) ^
        (T[1024 + (buf[i + 11] as number)] as number) ^
        (T[768 + (buf[i + 12] as number)] as number) ^
        (T[512 + (buf[i + 13] as number)] as number) ^
        (T[256 + (buf[i + 14] as number)] as number) ^
        (T[buf[i + 15] as number] as number);
    }
  }
  for (; i < end; i++) c = (c >>> 8) ^ (T[(c ^ (buf[i] as number)) & 255] as number);
  return ~c >>> 0;
}
