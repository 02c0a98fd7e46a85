/**
 * Dropping a file's cached pages (posix_fadvise POSIX_FADV_DONTNEED) through flushpoint's own small
 * native addon (fs/native/page-cache.c, built by `npm install` with node-gyp into build/Release). It is
 * a hint: where the addon was not built (no compiler, --ignore-scripts) or the platform has no
 * posix_fadvise, nothing is dropped and everything else works as before; `pageCacheDrop()` says which.
 *
 * Why a log wants it: docs/decisions.md, "The page cache of a growing log". The same addon writes a
 * range's dirty pages back (sync_file_range, `writeBackPages`) for the zero-fill: docs/decisions.md,
 * "Zero-fill in the next segment"; maps new pages ahead (`touchPages`) for the engine's value slabs and
 * tells V8 of the slabs the index dropped (`externalMemoryAdjuster`); and checks the CRCs of a run of
 * records in one call (`recordCrcWalker`) for recovery: docs/decisions.md, "Recovery's CRCs in the addon";
 * and stores them for the WAL's appends (`recordCrcFiller`): "Appends' CRCs in the addon".
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** One of the addon's calls: (fd, offset, length) -> Promise<void>. */
type AddonCall = (fd: number, offset: number, lengthBytes: number) => Promise<void>;

/** Whether this process can drop cached pages, and if not, why. */
export interface PageCacheDropStatus {
  available: boolean;
  /** Why not, in one line (null when available). */
  reason: string | null;
}

const ADDON = 'build/Release/flushpoint_native.node';

/** The addon's touchPages: (bytes) -> Promise<void>. */
type TouchCall = (bytes: Uint8Array) => Promise<void>;

/**
 * The addon's recordCrcWalk (fs/native/record-crc.c): from `start`, the records that follow one another in
 * buf[start, end) whose CRC-32 matches, each at most `recordBytesMax` bytes framed; returns the offset after
 * the last of them (`start` if none). Synchronous.
 */
export type RecordCrcWalk = (buf: Uint8Array, start: number, end: number, recordBytesMax: number) => number;

/**
 * The addon's recordCrcFill (fs/native/record-crc.c): stores the CRC-32 of each record framed one after
 * another in buf[start, end), leaving those over `recordBytesMax` bytes framed as they are; returns where
 * its walk stopped (`end` when the records tile the range). Synchronous.
 */
export type RecordCrcFill = (buf: Uint8Array, start: number, end: number, recordBytesMax: number) => number;

/** How the addon computes its CRCs: carry-less multiplication (PCLMULQDQ) or a table (fs/native/record-crc.c). */
export type RecordCrcMethod = 'clmul' | 'table';

/** The addon's adjustExternalMemory: (deltaBytes) -> the new total (napi_adjust_external_memory). */
export type AdjustExternalMemory = (deltaBytes: number) => number;

interface Loaded {
  drop: AddonCall | null;
  writeBack: AddonCall | null;
  touch: TouchCall | null;
  crcWalk: RecordCrcWalk | null;
  crcFill: RecordCrcFill | null;
  crcMethod: RecordCrcMethod | null;
  adjustExternal: AdjustExternalMemory | null;
  status: PageCacheDropStatus;
}

let loaded: Loaded | null = null;

/** The addon is not there, for `reason`: every call does nothing (or is null). */
function unavailable(reason: string): Loaded {
  return { drop: null, writeBack: null, touch: null, crcWalk: null, crcFill: null, crcMethod: null, adjustExternal: null, status: { available: false, reason } };
}

function load(): Loaded {
  if (loaded !== null) return loaded;
  if (process.platform !== 'linux') {
    // posix_fadvise is Linux's (and the BSDs'); macOS and Windows have none: not worth a build there.
    loaded = unavailable(`no posix_fadvise on ${process.platform}`);
    return loaded;
  }
  // The package root is two levels above this file in dist/fs/, one above it in fs/ (tests run the sources).
  const candidates = [new URL(`../../${ADDON}`, import.meta.url), new URL(`../${ADDON}`, import.meta.url)];
  const found = candidates.find((u) => fs.existsSync(u));
  if (found === undefined) {
    loaded = unavailable(`${ADDON} was not built (run 'npm rebuild flushpoint'; needs python3, make and a C compiler)`);
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(fileURLToPath(found)) as {
      dropCache: AddonCall;
      writeBack?: AddonCall;
      touchPages?: TouchCall;
      recordCrcWalk?: RecordCrcWalk;
      recordCrcFill?: RecordCrcFill;
      recordCrcMethod?: () => RecordCrcMethod;
      adjustExternalMemory?: AdjustExternalMemory;
    };
    // An addon built before the later calls existed (a stale build/) still drops cache.
    loaded = {
      drop: addon.dropCache,
      writeBack: addon.writeBack ?? null,
      touch: addon.touchPages ?? null,
      crcWalk: addon.recordCrcWalk ?? null,
      crcFill: addon.recordCrcFill ?? null,
      // An addon built before recordCrcMethod existed computes by table.
      crcMethod: addon.recordCrcWalk === undefined ? null : (addon.recordCrcMethod?.() ?? 'table'),
      adjustExternal: addon.adjustExternalMemory ?? null,
      status: { available: true, reason: null },
    };
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0] as string;
    loaded = unavailable(`${ADDON} did not load: ${reason}`);
  }
  return loaded;
}

/** Whether cached pages can be dropped in this process (the addon loaded), and if not, why. */
export function pageCacheDrop(): PageCacheDropStatus {
  return load().status;
}

/**
 * Drops the cached pages of `fd` in [offset, offset + lengthBytes) (0: to the end of the file), on
 * libuv's thread pool. Resolves at once, dropping nothing, where the addon is not available. Only for
 * bytes already durable: dirty pages are not dropped, only queued for writeback.
 */
export function dropCachedPages(fd: number, offset: number, lengthBytes: number): Promise<void> {
  return callAddon('dropCachedPages', load().drop, fd, offset, lengthBytes);
}

/** Whether writeBackPages really writes pages back in this process (the addon loaded, with the call). */
export function pageWriteBack(): boolean {
  return load().writeBack !== null;
}

/**
 * Writes the dirty pages of `fd` in [offset, offset + lengthBytes) to the device and waits for them
 * (sync_file_range with WAIT_BEFORE, WRITE and WAIT_AFTER), on libuv's thread pool: no metadata, no
 * cache flush, so not durability. Resolves at once, writing nothing, where the addon is not available.
 */
export function writeBackPages(fd: number, offset: number, lengthBytes: number): Promise<void> {
  return callAddon('writeBackPages', load().writeBack, fd, offset, lengthBytes);
}

/** Whether touchPages really touches pages in this process (the addon loaded, with the call). */
export function pageTouch(): boolean {
  return load().touch !== null;
}

/**
 * Takes the page faults of new memory on libuv's thread pool: a zero is stored into one byte of each
 * page of `bytes`, which must not be in use yet (those bytes change), so a page the process never touched is
 * mapped there instead of at its first use on the event loop (engine/value-slabs.ts). The caller must
 * not use the bytes until the promise settles. Resolves at once, touching nothing, where the addon is
 * not available.
 */
export function touchPages(bytes: Uint8Array): Promise<void> {
  if (!(bytes instanceof Uint8Array)) return Promise.reject(new TypeError('touchPages(bytes) takes a Uint8Array'));
  const touch = load().touch;
  if (touch === null) return Promise.resolve();
  try {
    return touch(bytes);
  } catch (err) {
    return Promise.reject(err); // the addon could not queue the call (out of memory)
  }
}

/** The addon's adjustExternalMemory, or null where the addon (or that call) is not there. */
export function externalMemoryAdjuster(): AdjustExternalMemory | null {
  return load().adjustExternal;
}

/** The addon's recordCrcWalk, or null where the addon (or that call) is not there: callers check every CRC themselves then. */
export function recordCrcWalker(): RecordCrcWalk | null {
  return load().crcWalk;
}

/** The addon's recordCrcFill, or null where the addon (or that call) is not there: the WAL computes every CRC in JavaScript then. */
export function recordCrcFiller(): RecordCrcFill | null {
  return load().crcFill;
}

/** How the addon's CRC calls compute (null where they are not there). */
export function recordCrcMethod(): RecordCrcMethod | null {
  return load().crcMethod;
}

/** One call of the addon (null: not available, nothing to do), its arguments checked first. */
function callAddon(name: string, call: AddonCall | null, fd: number, offset: number, lengthBytes: number): Promise<void> {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff || !Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(lengthBytes) || lengthBytes < 0) {
    return Promise.reject(new TypeError(`${name}(fd, offset, lengthBytes) takes a descriptor and two non-negative safe integers, got ${fd}, ${offset}, ${lengthBytes}`));
  }
  if (call === null) return Promise.resolve();
  try {
    return call(fd, offset, lengthBytes);
  } catch (err) {
    return Promise.reject(err); // the addon could not queue the call (out of memory): a rejection, as every other failure
  }
}
