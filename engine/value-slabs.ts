/**
 * Where the index keeps the values it owns: mid-sized values (VALUE_SLAB_VALUE_BYTES_MIN to _MAX) are
 * copied side by side into slabs of VALUE_SLAB_BYTES, each value a Buffer view of its slab; smaller and
 * larger ones are copied into Buffers of their own (Buffer.from, as before).
 *
 * Why (docs/decisions.md, "Value slabs"): a value the index keeps is new memory, and new memory costs a
 * page fault per 4 KiB at its first touch, ~3 us on these machines. With one Buffer per 4 KiB value that
 * fault was taken on the event loop by every put: a fifth of the loop's time at 64 writers of 4 KiB.
 * A slab is shared memory, touched on another thread before its first value goes in (page-toucher.ts),
 * VALUE_SLABS_AHEAD slabs ahead of the one being filled, so the event loop copies into memory that is
 * mapped already. Where no slab is ready (or no worker runs), one is filled untouched: the loop takes
 * the faults, as before.
 *
 * What a slab costs: a live value keeps its whole slab alive. Every slab records the keys whose values
 * went into it, and a checkpoint's scan of the state counts each slab's live bytes (scan()); a slab less
 * than half live is then relocated (relocate()): each key whose value in the index is still a view of
 * it gets a copy in the current slab, and the old slab is freed once no snapshot holds it. So slab memory
 * stays under about twice the live values plus what was written since the last checkpoint, and slabs
 * with nothing live are collected as any Buffer.
 */
import { VALUE_SLAB_BYTES, VALUE_SLAB_VALUE_BYTES_MAX, VALUE_SLAB_VALUE_BYTES_MIN, VALUE_SLABS_AHEAD } from './limits.js';

/** One slab: its memory, how much of it is used, the keys of the values copied into it. */
export interface Slab {
  readonly bytes: Buffer;
  used: number;
  /** The keys (latin1) of the values copied in, in order; a key may repeat. Emptied once relocated. */
  keys: string[];
  /** Live bytes counted by the scan that last found it (the scan's number in scanId). */
  live: number;
  scanId: number;
}

/** A map of the index's values by key (a B-tree of the engine's state). */
export interface SlabValueMap {
  get(key: string): Buffer | undefined;
  set(key: string, value: Buffer): unknown;
}

/** Touches the pages of a slab's new memory off the event loop (page-toucher.ts touchShared), or null. */
export type TouchPages = ((memory: SharedArrayBuffer) => Promise<void>) | null;

/** What a checkpoint's scan found: the slabs worth relocating. */
export interface SlabScan {
  /** Counts one value of the scanned state. */
  visit(value: Uint8Array): void;
  /** The slabs (other than the one being filled) with less than half their bytes live. */
  sparse(): Slab[];
}

/** Whether a value of this size goes into a slab. */
export function inSlabRange(byteLength: number): boolean {
  return byteLength >= VALUE_SLAB_VALUE_BYTES_MIN && byteLength <= VALUE_SLAB_VALUE_BYTES_MAX;
}

export class ValueSlabs {
  readonly #touch: TouchPages;
  readonly #slabBytes: number;
  readonly #ahead: number;
  readonly #slabs = new WeakMap<ArrayBufferLike, Slab>();
  #current: Slab | null = null;
  /** Slabs whose pages are touched, in order. */
  #ready: Slab[] = [];
  /** Touches in flight. */
  #touching = 0;
  #scans = 0;
  #closed = false;
  /** Slabs made, and of them those filled before their pages were touched (counters for tests and metrics). */
  slabsMade = 0;
  slabsUntouched = 0;

  constructor(touch: TouchPages, slabBytes = VALUE_SLAB_BYTES, ahead = VALUE_SLABS_AHEAD) {
    this.#touch = touch;
    this.#slabBytes = slabBytes;
    this.#ahead = ahead;
  }

  /** A copy of `value` (key `key`, latin1) that the index owns. */
  copy(key: string, value: Uint8Array): Buffer {
    const n = value.byteLength;
    if (n < VALUE_SLAB_VALUE_BYTES_MIN || n > VALUE_SLAB_VALUE_BYTES_MAX || n > this.#slabBytes) return Buffer.from(value);
    let slab = this.#current;
    if (slab === null || slab.used + n > this.#slabBytes) slab = this.#next();
    const out = slab.bytes.subarray(slab.used, slab.used + n);
    out.set(value);
    slab.used += n;
    slab.keys.push(key);
    return out;
  }

  /** The slab `value` is a view of, if it is one of these slabs'. */
  slabOf(value: Uint8Array): Slab | undefined {
    return this.#slabs.get(value.buffer);
  }

  /** A scan of one state's values (see the module comment). */
  scan(): SlabScan {
    const id = ++this.#scans;
    const found: Slab[] = [];
    const slabs = this.#slabs;
    return {
      visit(value: Uint8Array): void {
        if (!inSlabRange(value.byteLength)) return;
        const slab = slabs.get(value.buffer);
        if (slab === undefined) return;
        if (slab.scanId !== id) {
          slab.scanId = id;
          slab.live = 0;
          found.push(slab);
        }
        slab.live += value.byteLength;
      },
      sparse: (): Slab[] => found.filter((s) => s !== this.#current && s.keys.length > 0 && s.live * 2 < this.#slabBytes),
    };
  }

  /**
   * Moves the values still in `slab`: in each of `maps`, every key of the slab whose value is a view of
   * it is set to a copy in the current slab (one copy per value, shared by the maps that hold the same
   * one). Returns the copies made.
   */
  relocate(slab: Slab, maps: ReadonlyArray<SlabValueMap>): number {
    const keys = slab.keys;
    slab.keys = [];
    let moved = 0;
    for (const key of keys) {
      let from: Buffer | undefined;
      let to: Buffer | undefined;
      for (const map of maps) {
        const value = map.get(key);
        if (value === undefined || value.buffer !== slab.bytes.buffer) continue;
        if (value !== from) {
          from = value;
          to = this.copy(key, value);
          moved++;
        }
        map.set(key, to as Buffer);
      }
    }
    return moved;
  }

  /** Stops touching slabs ahead (the engine closed); copies still work. */
  close(): void {
    this.#closed = true;
    this.#ready = [];
  }

  #next(): Slab {
    const slab = this.#ready.shift() ?? this.#make(false);
    this.#current = slab;
    this.#refill();
    return slab;
  }

  #make(touched: boolean): Slab {
    const slab: Slab = { bytes: Buffer.from(new SharedArrayBuffer(this.#slabBytes)), used: 0, keys: [], live: 0, scanId: 0 };
    this.#slabs.set(slab.bytes.buffer, slab);
    this.slabsMade++;
    if (!touched) this.slabsUntouched++;
    return slab;
  }

  /** Keeps `ahead` slabs touched or being touched. */
  #refill(): void {
    const touch = this.#touch;
    if (touch === null || this.#closed) return;
    while (this.#ready.length + this.#touching < this.#ahead) {
      const slab = this.#make(true);
      this.#touching++;
      const done = (): void => {
        this.#touching--;
        if (!this.#closed) this.#ready.push(slab);
      };
      // A touch that fails leaves the memory as it was: the slab is still good, only not mapped yet.
      touch(slab.bytes.buffer as SharedArrayBuffer).then(done, done);
    }
  }
}
