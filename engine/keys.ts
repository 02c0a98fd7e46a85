/**
 * Conversions between what abstract-level hands the engine (a string for 'utf8', a Buffer for 'buffer',
 * a Uint8Array for 'view') and what the index holds.
 *
 * Keys are held as latin1 strings: one char per key byte, so JavaScript's string order is exactly the
 * byte order the Level ecosystem expects, comparisons are native, and V8 stores them one byte per char.
 * Values are held as Buffers that the engine owns (copied on the way in, by value-slabs.ts, and on the
 * way out, so a caller mutating its buffer never changes the database).
 */

export type Format = 'utf8' | 'buffer' | 'view';

/** Characters >= 0x80 in a latin1 key: such a key is not plain ASCII, so utf8 differs from latin1. */
const NON_ASCII_RE = /[^\x00-\x7f]/;

/** The key bytes of `key` as a latin1 string. */
export function keyIn(key: string | Uint8Array): string {
  if (typeof key === 'string') {
    // A string whose utf8 form has one byte per char is ASCII: its latin1 form is itself.
    if (!NON_ASCII_RE.test(key)) return key;
    return Buffer.from(key, 'utf8').toString('latin1');
  }
  // A Buffer (the 'buffer' encoding's form) is read in place; a plain Uint8Array through a Buffer view.
  if (Buffer.isBuffer(key)) return key.toString('latin1');
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/** A latin1 key as the format abstract-level asked for. */
export function keyOut(key: string, format: Format): string | Uint8Array {
  if (format === 'utf8') return NON_ASCII_RE.test(key) ? Buffer.from(key, 'latin1').toString('utf8') : key;
  const buf = Buffer.from(key, 'latin1');
  return format === 'buffer' ? buf : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The bytes of a latin1 key (for the WAL and checkpoints). */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}

/** A stored value as the format abstract-level asked for (a fresh copy: the caller may mutate it). */
export function valueOut(value: Buffer, format: Format): string | Uint8Array {
  if (format === 'utf8') return value.toString('utf8');
  const copy = Buffer.from(value);
  return format === 'buffer' ? copy : new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
}
