import { describe, expect, it } from 'vitest';
import { crc32, crc32Js, crc32Native, crc32Range, hasNativeCrc32, CRC_NATIVE_THRESHOLD_BYTES } from '../core/crc.js';
import { seededRandom } from '../core/random.js';

describe('CRC-32', () => {
  it('zlib.crc32 is present on this Node (20.15+)', () => {
    expect(hasNativeCrc32).toBe(true);
  });

  it('matches the standard check value for "123456789" in both implementations', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32Js(check)).toBe(0xcbf43926);
    expect(crc32Native(check)).toBe(0xcbf43926);
  });

  it('crc-32 and zlib.crc32 agree on random inputs of every size class, with and without a seed', () => {
    const rnd = seededRandom(42);
    const sizes = [0, 1, 2, 3, 7, 8, 15, 16, 63, 64, 127, 128, 129, CRC_NATIVE_THRESHOLD_BYTES - 1, CRC_NATIVE_THRESHOLD_BYTES, 1000, 4096, 65_537, 1 << 20];
    for (const size of sizes) {
      for (let rep = 0; rep < 5; rep++) {
        const buf = new Uint8Array(size);
        for (let i = 0; i < size; i++) buf[i] = rnd.int(256);
        const seed = rep === 0 ? 0 : rnd.int(2 ** 32);
        const js = crc32Js(buf, seed);
        expect(crc32Native(buf, seed), `size ${size} seed ${seed}`).toBe(js);
        expect(crc32(buf, seed), `dispatch size ${size}`).toBe(js);
      }
    }
  });

  it('crc32Range(buf, start, end) equals the CRC of that subarray, at every size class and offset', () => {
    const rnd = seededRandom(7);
    const buf = new Uint8Array(70_000);
    for (let i = 0; i < buf.length; i++) buf[i] = rnd.int(256);
    const sizes = [0, 1, 15, 16, 17, 31, 32, 33, 148, 152, CRC_NATIVE_THRESHOLD_BYTES - 1, CRC_NATIVE_THRESHOLD_BYTES, 4096, 65_537];
    for (const size of sizes) {
      for (const start of [0, 1, 3, 4, 8, 13]) {
        expect(crc32Range(buf, start, start + size), `size ${size} at ${start}`).toBe(crc32Js(buf.subarray(start, start + size)));
      }
    }
    expect(crc32Range(new TextEncoder().encode('x123456789'), 1, 10)).toBe(0xcbf43926);
    // A view that starts inside its buffer (aligned and not), on a shared buffer too (staging chunks).
    for (const backing of [new ArrayBuffer(512), new SharedArrayBuffer(512)]) {
      const all = new Uint8Array(backing);
      for (let i = 0; i < all.length; i++) all[i] = rnd.int(256);
      for (const viewStart of [0, 1, 4, 6, 8]) {
        const view = new Uint8Array(backing, viewStart, 400);
        for (const start of [0, 2, 4]) expect(crc32Range(view, start, start + 148), `view at ${viewStart}, start ${start}`).toBe(crc32Js(view.subarray(start, start + 148)));
      }
    }
  });

  it('continuing a CRC over two parts equals the CRC of the whole (both implementations)', () => {
    const a = new TextEncoder().encode('write-ahead ');
    const b = new TextEncoder().encode('log');
    const whole = new TextEncoder().encode('write-ahead log');
    expect(crc32Js(b, crc32Js(a))).toBe(crc32Js(whole));
    expect(crc32Native(b, crc32Native(a))).toBe(crc32Native(whole));
  });
});
