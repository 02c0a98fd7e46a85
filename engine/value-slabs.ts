/**
 * Where the index keeps the values it owns: mid-sized values (VALUE_SLAB_VALUE_BYTES_MIN to _MAX, as
 * bytes or as a utf8 string) are copied side by side into slabs, each value a Buffer view of its slab;
 * smaller and larger ones are copied into Buffers of their own (Buffer.from, as before).
 *
 * Why (docs/decisions.md, "Value slabs"): a value the index keeps is new memory, and new memory costs a
 * page fault per 4 KiB at its first touch, ~3 us on these machines. With one Buffer per 4 KiB value that
 * fault was taken on the event loop by every put: a fifth of the loop's time at 64 writers of 4 KiB.
 * Full-size slabs (VALUE_SLAB_BYTES) are touched on libuv's thread pool before their first value goes in
 * (touchPages, the native addon), VALUE_SLABS_AHEAD of them ahead of the one being filled, so the event
 * loop copies into memory that is mapped already. Where no slab is ready (or the addon is absent), one
 * is filled untouched: the loop takes the faults, as before.
 *
 * An engine that holds little pays little: the first slab is VALUE_SLAB_BYTES_INITIAL, each next one
 * twice the last up to VALUE_SLAB_BYTES, and slabs are touched ahead only from the first full-size one.
 *
 * What a slab costs: a live value keeps its whole slab alive. Every slab records the keys whose values
 * went into it, and a checkpoint's scan of the state counts each slab's live bytes (scan()); a slab less
 * than half live is then relocated (relocate()): each key whose value in the index is still a view of it
 * gets a copy in the current slab, and the old slab is freed once no snapshot holds it. So slab memory
 * stays under about twice the live values plus what was written since the last checkpoint plus what
 * snapshots hold (a running checkpoint's included), and slabs with nothing live are collected as any
 * Buffer.
 *
 * Where the addon can tell V8 of memory (`external`, fs/page-cache.ts externalMemoryAdjuster), slabs are
 * SharedArrayBuffers, whose memory V8 does not count as its own: a growing index then starts no
 * collection by its size (a plain Buffer's memory counts, and every 64 MiB of new values started a full
 * one). V8 is told of a slab once the index no longer holds it (`SlabScan.released`: a scan found nothing
 * live in it, or its values were relocated, and no pending put is in it) and of all of them at close, so
 * slabs the index dropped press for a collection as before, and the tally is taken back once the slab is
 * collected (a FinalizationRegistry). docs/decisions.md, "Value slabs V8 collects for only once dropped".
 */
import { SLAB_SCAN_BYTES_MIN, SLAB_SCAN_BYTES_PER_KEY, SLAB_SCAN_KEPT_DIVISOR, VALUE_SLAB_BYTES, VALUE_SLAB_BYTES_INITIAL, VALUE_SLAB_VALUE_BYTES_MAX, VALUE_SLAB_VALUE_BYTES_MIN, VALUE_SLABS_AHEAD } from './limits.js';

/** One slab: its memory, how much of it is used, the keys of the values copied into it. */
export interface Slab {
  readonly bytes: Buffer;
  used: number;
  /** The keys (latin1) of the values copied in that may still be in it; a key may repeat. */
  keys: string[];
  /** Live bytes counted by the scan that last found it (the scan's number in scanId). */
  live: number;
  scanId: number;
  /** Its pages were touched ahead (touchPages resolved) before it became the slab being filled. */
  touched: boolean;
  /** A shared slab's account with V8 (null: a plain Buffer, which V8 counts itself). */
  life: SlabLife | null;
}

/**
 * What the collection of a shared slab must settle, known without the slab: its size, whether it was
 * counted among the closed bytes a scan is due for (it stopped being filled), and whether V8 was told of it.
 */
interface SlabLife {
  readonly bytes: number;
  /** When it stopped being the slab filled (ValueSlabs' count of such events; 0: not yet). */
  closedSeq: number;
  released: boolean;
  /** The ValueSlabs' count of closed bytes V8 was not told of (shared with its slabs' lives). */
  readonly tally: { closedBytes: number };
  readonly external: (deltaBytes: number) => unknown;
}

/** A map of the index's values by key (a B-tree of the engine's state). */
export interface SlabValueMap {
  get(key: string): Buffer | undefined;
  set(key: string, value: Buffer): unknown;
}

/** Maps the pages of a slab's new memory off the event loop (fs/page-cache.ts touchPages), or null. */
export type TouchPages = ((bytes: Uint8Array) => Promise<void>) | null;

/** Tells V8 of memory outside its heap, in bytes (fs/page-cache.ts externalMemoryAdjuster), or null. */
export type ExternalMemory = ((deltaBytes: number) => unknown) | null;

/**
 * Settles a shared slab's account once it is collected: takes back what its release told V8, or, never
 * released (every view of it died before a scan found it dropped), takes it out of the closed bytes.
 */
const collected = new FinalizationRegistry<SlabLife>((life) => {
  if (life.released) life.external(-life.bytes);
  else if (life.closedSeq > 0) life.tally.closedBytes -= life.bytes;
});

/** What a checkpoint's scan found: the slabs worth relocating. */
export interface SlabScan {
  /** Counts one value of the scanned state. */
  visit(value: Uint8Array): void;
  /**
   * The slabs with less than half their bytes live, other than the one being filled now and the one
   * that was being filled when the scan began (its values written since are not in the scanned state).
   */
  sparse(): Slab[];
  /**
   * After the sparse slabs were relocated: tells V8 of every shared slab the index no longer holds (one
   * filled before the scan began with nothing live in the scanned state, or relocated, and not in
   * `pending`: the slabs holding a value of a put not visible when the scan began or now), so that it
   * collects for them; the next scan is due (scanDue) after SLAB_SCAN_BYTES_MIN of new shared slabs, or a
   * quarter of the kept ones, or SLAB_SCAN_BYTES_PER_KEY times `keysCount`, whichever is most. A no-op
   * without `external`.
   */
  released(pending: ReadonlySet<Slab>, keysCount?: number): void;
}

/** What an engine's stats() and metrics report of its value slabs (since open). */
export interface ValueSlabStats {
  /** Slabs made. */
  slabs: number;
  /** Full-size slabs filled without their pages mapped ahead (none was ready, or the addon is absent). */
  slabsUntouched: number;
  /** Values copied out of slabs less than half live. */
  valuesRelocated: number;
  /** Slabs in shared memory V8 was told of, once dropped by the index or at close (0 without the addon). */
  slabsReleased: number;
  /** Scans of the slabs begun (a checkpoint's, or one of their own: ValueSlabs.scanDue and the engine's drop count). */
  scans: number;
}

/** Whether a value of this size goes into a slab. */
export function inSlabRange(byteLength: number): boolean {
  return byteLength >= VALUE_SLAB_VALUE_BYTES_MIN && byteLength <= VALUE_SLAB_VALUE_BYTES_MAX;
}

export class ValueSlabs {
  readonly #touch: TouchPages;
  readonly #external: ExternalMemory;
  readonly #slabBytes: number;
  readonly #ahead: number;
  readonly #slabs = new WeakMap<ArrayBufferLike, Slab>();
  #current: Slab | null = null;
  /** Size of the next slab made while slabs still grow (up to #slabBytes). */
  #growBytes: number;
  /** Full-size slabs whose pages are touched, in order. */
  #ready: Slab[] = [];
  /** Touches in flight. */
  #touching = 0;
  #scans = 0;
  /** Shared slabs that stopped being the one filled, so far (SlabLife.closedSeq). */
  #closes = 0;
  /** Shared slabs V8 was not told of yet (weakly: they must not keep their memory). */
  #unreleased: Array<WeakRef<Slab>> = [];
  /** Bytes of shared slabs that stopped being filled and V8 was not told of; a scan is due from #scanDueBytes on. */
  readonly #tally = { closedBytes: 0 };
  #scanDueBytes: number;
  readonly #scanBytesMin: number;
  #closed = false;
  /** Counters: see ValueSlabStats. */
  #stats: Omit<ValueSlabStats, 'scans'> = { slabs: 0, slabsUntouched: 0, valuesRelocated: 0, slabsReleased: 0 };

  constructor(touch: TouchPages, slabBytes = VALUE_SLAB_BYTES, ahead = VALUE_SLABS_AHEAD, external: ExternalMemory = null, scanBytesMin = SLAB_SCAN_BYTES_MIN) {
    this.#touch = touch;
    this.#external = external;
    this.#scanBytesMin = scanBytesMin;
    this.#scanDueBytes = scanBytesMin;
    this.#slabBytes = slabBytes;
    this.#ahead = ahead;
    this.#growBytes = Math.min(VALUE_SLAB_BYTES_INITIAL, slabBytes);
  }

  /** A copy of `value` (key `key`, latin1) that the index owns. */
  copy(key: string, value: Uint8Array): Buffer {
    const n = value.byteLength;
    if (n < VALUE_SLAB_VALUE_BYTES_MIN || n > VALUE_SLAB_VALUE_BYTES_MAX || n > this.#slabBytes) return Buffer.from(value);
    const out = this.#place(key, n);
    out.set(value);
    return out;
  }

  /** `value` as utf8 bytes that the index owns (key `key`, latin1). */
  copyString(key: string, value: string): Buffer {
    // A string of length L takes L to 3L utf8 bytes: only one that may be in range is measured.
    if (value.length * 3 < VALUE_SLAB_VALUE_BYTES_MIN || value.length > VALUE_SLAB_VALUE_BYTES_MAX) return Buffer.from(value, 'utf8');
    const n = Buffer.byteLength(value, 'utf8');
    if (n < VALUE_SLAB_VALUE_BYTES_MIN || n > VALUE_SLAB_VALUE_BYTES_MAX || n > this.#slabBytes) return Buffer.from(value, 'utf8');
    const out = this.#place(key, n);
    out.write(value, 0, n, 'utf8');
    return out;
  }

  stats(): ValueSlabStats {
    return { ...this.#stats, scans: this.#scans };
  }

  /**
   * Whether the shared slabs closed since the last scan warrant one (SLAB_SCAN_BYTES_MIN): V8 learns of the
   * dropped ones only through a scan. Always false without `external` (V8 sees plain slabs itself).
   */
  scanDue(): boolean {
    return this.#tally.closedBytes >= this.#scanDueBytes;
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
    const currentAtScan = this.#current;
    const closesAtScan = this.#closes;
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
      sparse: (): Slab[] => found.filter((s) => s !== this.#current && s !== currentAtScan && s.keys.length > 0 && s.live * 2 < s.bytes.byteLength),
      released: (pending: ReadonlySet<Slab>, keysCount = 0): void => {
        if (this.#external === null) return;
        this.#unreleased = this.#unreleased.filter((ref) => {
          const slab = ref.deref();
          if (slab === undefined) return false; // collected: nothing held it
          // Filled after the scan began (or being filled): its values may not be in the scanned state.
          const { closedSeq } = slab.life as SlabLife;
          if (closedSeq === 0 || closedSeq > closesAtScan) return true;
          if (slab.scanId === id && slab.live * 2 >= slab.bytes.byteLength) return true; // at least half live: not relocated
          if (pending.has(slab)) return true; // a put on its way has its value there
          this.#release(slab);
          return false;
        });
        const kept = this.#tally.closedBytes;
        this.#scanDueBytes = kept + Math.max(this.#scanBytesMin, kept / SLAB_SCAN_KEPT_DIVISOR, keysCount * SLAB_SCAN_BYTES_PER_KEY);
      },
    };
  }

  /**
   * Moves the values still in `slab`: in each of `maps`, every key of the slab whose value is a view of
   * it is set to a copy in the current slab (one copy per value, shared by the maps that hold the same
   * one). A key found in no map stays listed if `pending(key)`: its write may still be on its way to the
   * index (pending its commit), and a later relocation moves it then; any other is dead here and is
   * dropped (a listed key keeps its string alive). Returns the copies made.
   */
  relocate(slab: Slab, maps: ReadonlyArray<SlabValueMap>, pending: (key: string) => boolean = () => true): number {
    const keys = slab.keys;
    const kept: string[] = [];
    const buffer = slab.bytes.buffer;
    let moved = 0;
    for (const key of keys) {
      let from: Buffer | undefined;
      let to: Buffer | undefined;
      let seen = false;
      for (const map of maps) {
        const value = map.get(key);
        if (value === undefined || value.buffer !== buffer) continue;
        seen = true;
        if (value !== from) {
          from = value;
          to = this.copy(key, value);
          moved++;
        }
        map.set(key, to as Buffer);
      }
      if (!seen && pending(key)) kept.push(key);
    }
    slab.keys = kept;
    this.#stats.valuesRelocated += moved;
    return moved;
  }

  /** Stops touching slabs ahead (the engine closed) and tells V8 of every shared slab; copies still work. */
  close(): void {
    this.#closed = true;
    this.#ready = [];
    for (const ref of this.#unreleased) {
      const slab = ref.deref();
      if (slab !== undefined) this.#release(slab);
    }
    this.#unreleased = [];
  }

  /** Tells V8 of a shared slab's memory, until the slab is collected (`collected` takes it back). */
  #release(slab: Slab): void {
    const life = slab.life as SlabLife;
    if (life.released) return;
    life.released = true;
    if (life.closedSeq > 0) this.#tally.closedBytes -= life.bytes;
    life.external(life.bytes);
    this.#stats.slabsReleased++;
  }

  /** The `n` bytes of a slab where key `key`'s value goes (listed under the key; the caller fills them). */
  #place(key: string, n: number): Buffer {
    let slab = this.#current;
    if (slab === null || slab.used + n > slab.bytes.byteLength) slab = this.#next(n);
    const out = slab.bytes.subarray(slab.used, slab.used + n);
    slab.used += n;
    slab.keys.push(key);
    return out;
  }

  #next(n: number): Slab {
    let slab: Slab;
    if (this.#growBytes < this.#slabBytes) {
      // Still growing: a slab twice the last, untouched (small, and an engine that holds little pays little).
      const size = Math.max(this.#growBytes, n);
      this.#growBytes = Math.min(this.#growBytes * 2, this.#slabBytes);
      slab = this.#make(size);
    } else {
      slab = this.#ready.shift() ?? this.#make(this.#slabBytes);
      if (!slab.touched) this.#stats.slabsUntouched++;
      this.#refill();
    }
    const closing = this.#current?.life;
    if (closing) {
      closing.closedSeq = ++this.#closes;
      this.#tally.closedBytes += closing.bytes;
    }
    this.#current = slab;
    return slab;
  }

  #make(size: number): Slab {
    // A SharedArrayBuffer's memory does not count toward the heap's external memory: without telling V8
    // of the slabs the index dropped (#release), they stayed allocated until a collection came for other
    // reasons (253 MiB more RSS over 256 MiB of overwrites with 1 MiB live, against 56 MiB). Without the
    // addon to tell it, slabs are plain Buffers, whose memory V8 counts.
    const external = this.#external;
    const bytes = external !== null ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size);
    const life: SlabLife | null = external !== null ? { bytes: size, closedSeq: 0, released: false, tally: this.#tally, external } : null;
    const slab: Slab = { bytes, used: 0, keys: [], live: 0, scanId: 0, touched: false, life };
    this.#slabs.set(slab.bytes.buffer, slab);
    if (life !== null) {
      collected.register(slab.bytes.buffer, life);
      this.#unreleased.push(new WeakRef(slab));
    }
    this.#stats.slabs++;
    return slab;
  }

  /** Keeps `ahead` full-size slabs touched or being touched. */
  #refill(): void {
    const touch = this.#touch;
    if (touch === null || this.#closed) return;
    while (this.#ready.length + this.#touching < this.#ahead) {
      const slab = this.#make(this.#slabBytes);
      this.#touching++;
      const done = (touched: boolean): void => {
        this.#touching--;
        slab.touched = touched;
        if (!this.#closed) this.#ready.push(slab);
      };
      // A touch that fails leaves the memory as it was: the slab is still good, only not mapped yet.
      touch(slab.bytes).then(() => done(true), () => done(false));
    }
  }
}
