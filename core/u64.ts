/** Unsigned 64-bit little-endian integers as JavaScript numbers (values stay below 2^53). */
const TWO_32 = 0x1_0000_0000;

export function writeU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % TWO_32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_32), true);
}

export function readU64(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * TWO_32;
}
