/**
 * Checkpoint files: the whole state of the index as of one LSN, sorted by key, with checksums.
 *
 *   checkpoints/checkpoint-<16 hex digits of the LSN>.ckpt
 *
 *   +---------------------------------------------------------------+
 *   | header (32 B): magic "FPCKPT\0\1" | version u32 | flags u32      |
 *   |                lsn u64 | crc32 of the previous 24 bytes u32 | 0 |
 *   +---------------------------------------------------------------+
 *   | block: bodyBytes u32 | entries u32 | crc32(body) u32 | 0 u32     |
 *   |        body = entries x (keyBytes u32 | key | valueBytes u32 | value) |
 *   | ... (blocks in key order, at most CHECKPOINT_BLOCK_ENTRIES_MAX)  |
 *   |     (the writer also ends a block at CHECKPOINT_BLOCK_BYTES_TARGET) |
 *   +---------------------------------------------------------------+
 *   | footer (32 B): magic "FPCKEND\1" | blocks u32 | 0 u32           |
 *   |                entries u64 | crc32 of the previous 24 bytes u32 |0|
 *   +---------------------------------------------------------------+
 *
 * FORMAT: magic values, the version and the layout are on disk; changing one breaks every checkpoint
 * already written. All integers little-endian. A file is valid only if the header, every block, the
 * footer and its counts check out and the file ends exactly after the footer; anything else is damage.
 *
 * Written streamed from a snapshot (the index is copy-on-write, so writers go on), under a temp name,
 * fdatasync, rename, fsync of the directory: the publish order of fs/durable-publish.ts, with the bytes
 * written in chunks instead of held in memory all at once, fdatasynced every CHECKPOINT_SYNC_EVERY_BYTES
 * on the way (their pages then dropped from the cache), and the temp file removed if it fails.
 */
import { crc32 } from '../core/crc.js';
import { readU64, writeU64 } from '../core/u64.js';
import { assert } from '../core/errors.js';
import type { FileHandle, FileSystem, SyncMethod } from '../fs/file-system.js';
import { tempNameFor } from '../fs/durable-publish.js';
import { CHECKPOINT_BLOCK_BYTES_TARGET, CHECKPOINT_BLOCK_ENTRIES_MAX, CHECKPOINT_SYNC_EVERY_BYTES, CHECKPOINT_WRITE_CHUNK_BYTES } from './limits.js';
import { emptyTree, type Tree } from './ordered-index.js';

export const CHECKPOINT_FORMAT_VERSION = 1;
const HEADER_MAGIC = Buffer.from([0x46, 0x50, 0x43, 0x4b, 0x50, 0x54, 0x00, 0x01]); // "FPCKPT\0\1"
const FOOTER_MAGIC = Buffer.from([0x46, 0x50, 0x43, 0x4b, 0x45, 0x4e, 0x44, 0x01]); // "FPCKEND\1"
export const CHECKPOINT_HEADER_BYTES = 32;
export const CHECKPOINT_FOOTER_BYTES = 32;
const BLOCK_HEADER_BYTES = 16;
export const CHECKPOINT_NAME_RE = /^checkpoint-([0-9a-f]{16})\.ckpt$/;

export function checkpointName(lsn: number): string {
  return `checkpoint-${lsn.toString(16).padStart(16, '0')}.ckpt`;
}

/** LSN of a checkpoint file name, or null if the name is not one. */
export function checkpointLsnOf(name: string): number | null {
  const m = CHECKPOINT_NAME_RE.exec(name);
  return m ? Number.parseInt(m[1] as string, 16) : null;
}


/** A 32-byte header or footer: magic, a u32 at 8, a u64 at 16, the CRC of bytes 0..23 at 24. */
function sealed(magic: Buffer, u32: number, u64: number): Buffer {
  const b = Buffer.alloc(32);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  magic.copy(b, 0);
  v.setUint32(8, u32, true);
  writeU64(v, 16, u64);
  v.setUint32(24, crc32(b.subarray(0, 24)), true);
  return b;
}

function header(lsn: number): Buffer {
  return sealed(HEADER_MAGIC, CHECKPOINT_FORMAT_VERSION, lsn);
}

function footer(blocks: number, entries: number): Buffer {
  return sealed(FOOTER_MAGIC, blocks, entries);
}

/** One block: its header and its body, from entries (latin1 keys, Buffer values) in key order. */
function block(entries: Array<[string, Buffer]>): Buffer[] {
  let bytes = 0;
  for (const [k, v] of entries) bytes += 8 + k.length + v.byteLength;
  const body = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const [k, v] of entries) {
    body.writeUInt32LE(k.length, at);
    at += 4 + body.write(k, at + 4, 'latin1');
    body.writeUInt32LE(v.byteLength, at);
    v.copy(body, at + 4);
    at += 4 + v.byteLength;
  }
  assert(at === bytes, 'block body filled exactly');
  const h = Buffer.alloc(BLOCK_HEADER_BYTES);
  h.writeUInt32LE(bytes, 0);
  h.writeUInt32LE(entries.length, 4);
  h.writeUInt32LE(crc32(body), 8);
  return [h, body];
}

export interface CheckpointWriteResult {
  name: string;
  bytes: number;
  entries: number;
}

/**
 * Writes `tree` (a snapshot nobody mutates) as the checkpoint of `lsn` into `dir`, durably.
 * `beforePublish` runs after the temp file is synced and before the rename (the engine waits there for
 * the WAL to be durable up to `lsn`, so a checkpoint never gets ahead of its log). `visit`, if given,
 * sees every value written (the engine counts its value slabs' live bytes with it).
 */
export async function writeCheckpoint(
  fs: FileSystem,
  dir: string,
  tree: Tree,
  lsn: number,
  syncMethod: SyncMethod,
  beforePublish: () => Promise<void>,
  yieldEvery: () => Promise<void>,
  visit?: (value: Buffer) => void,
): Promise<CheckpointWriteResult> {
  assert(Number.isSafeInteger(lsn) && lsn >= 0, `checkpoint LSN ${lsn}`);
  const name = checkpointName(lsn);
  const tmp = `${dir}/${tempNameFor(name)}`;
  const handle = await fs.open(tmp, 'w+');
  let position = 0;
  let entries = 0;
  let blocks = 0;
  let published = false;
  try {
    try {
      let pending: Buffer[] = [header(lsn)];
      let pendingBytes = CHECKPOINT_HEADER_BYTES;
      let syncedTo = 0;
      const flush = async (): Promise<void> => {
        if (pending.length === 0) return;
        const n = await handle.writev(pending, position);
        assert(n === pendingBytes, `short checkpoint write: ${n} of ${pendingBytes} bytes`);
        position += pendingBytes;
        pending = [];
        pendingBytes = 0;
      };
      let run: Array<[string, Buffer]> = [];
      let runBytes = 0;
      const endBlock = async (): Promise<void> => {
        if (run.length === 0) return;
        for (const part of block(run)) {
          pending.push(part);
          pendingBytes += part.byteLength;
        }
        blocks++;
        run = [];
        runBytes = 0;
        if (pendingBytes >= CHECKPOINT_WRITE_CHUNK_BYTES) await flush();
        if (position - syncedTo >= CHECKPOINT_SYNC_EVERY_BYTES) {
          // Writeback in steps, not one burst at the end that every WAL commit would queue behind; the
          // synced pages are then dropped from the cache (the file is read only at an open). A step is
          // an fdatasync even when syncMethod is 'fsync': the final sync below covers the whole temp
          // file (data and metadata) before it is published.
          await handle.datasync();
          await dropQuietly(fs, handle, syncedTo, position - syncedTo);
          syncedTo = position;
        }
        await yieldEvery();
      };
      for (const entry of tree.entries()) {
        const entryBytes = entry[0].length + entry[1].byteLength;
        // A block ends by count or by bytes, before the entry that would take it past the target: each
        // block is built (copied, checksummed) in one turn of the event loop, so 4,096 values of 4 KiB
        // in one block held the loop ~10 ms while writers waited. An entry larger than the target is a
        // block of its own.
        if (run.length >= CHECKPOINT_BLOCK_ENTRIES_MAX || (run.length > 0 && runBytes + entryBytes > CHECKPOINT_BLOCK_BYTES_TARGET)) await endBlock();
        run.push(entry);
        runBytes += entryBytes;
        entries++;
        visit?.(entry[1]);
      }
      await endBlock();
      pending.push(footer(blocks, entries));
      pendingBytes += CHECKPOINT_FOOTER_BYTES;
      await flush();
      if (syncMethod === 'fsync') await handle.sync();
      else await handle.datasync();
      await dropQuietly(fs, handle, 0, 0); // the whole file is durable now
    } finally {
      await handle.close();
    }
    await beforePublish();
    await fs.rename(tmp, `${dir}/${name}`);
    published = true;
  } finally {
    // A checkpoint that failed before its rename leaves no temp file behind (it may be 32 MiB or more,
    // and a full disk is a common cause); one left by a crash is swept at the next open.
    if (!published) await fs.unlink(tmp).catch(() => {});
  }
  await fs.syncDir(dir);
  return { name, bytes: position, entries };
}

/** Drops cached pages of a durable range where the file system can; a hint, so nothing it throws escapes. */
async function dropQuietly(fs: FileSystem, handle: FileHandle, offset: number, lengthBytes: number): Promise<void> {
  if (fs.dropsCache !== true || handle.dropCache === undefined) return;
  try {
    await handle.dropCache(offset, lengthBytes);
  } catch {
    // The pages just stay cached.
  }
}

/** Why a checkpoint file was refused: the file and the byte offset of the damage. */
export class CheckpointDamage extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    what: string,
  ) {
    super(`checkpoint ${file} is damaged at byte ${offset}: ${what}`);
    this.name = 'CheckpointDamage';
  }
}

export interface LoadedCheckpoint {
  lsn: number;
  tree: Tree;
  entries: number;
  bytes: number;
}

/** Reads and verifies a whole checkpoint file; throws CheckpointDamage for any damage. */
export async function readCheckpoint(fs: FileSystem, path: string, expectedLsn: number, yieldEvery: () => Promise<void>): Promise<LoadedCheckpoint> {
  const handle = await fs.open(path, 'r');
  try {
    return await parse(handle, path, expectedLsn, yieldEvery);
  } finally {
    await handle.close();
  }
}

async function readExactly(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = await handle.read(buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

async function parse(handle: FileHandle, path: string, expectedLsn: number, yieldEvery: () => Promise<void>): Promise<LoadedCheckpoint> {
  const { sizeBytes } = await handle.stat();
  const damage = (offset: number, what: string): CheckpointDamage => new CheckpointDamage(path, offset, what);
  if (sizeBytes < CHECKPOINT_HEADER_BYTES + CHECKPOINT_FOOTER_BYTES) throw damage(0, `file of ${sizeBytes} bytes is too short`);
  const h = await readExactly(handle, CHECKPOINT_HEADER_BYTES, 0);
  const hv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  if (!h.subarray(0, 8).equals(HEADER_MAGIC)) throw damage(0, 'bad header magic');
  if (hv.getUint32(24, true) !== crc32(h.subarray(0, 24))) throw damage(0, 'header checksum mismatch');
  if (hv.getUint32(8, true) !== CHECKPOINT_FORMAT_VERSION) throw damage(8, `unknown format version ${hv.getUint32(8, true)}`);
  const lsn = readU64(hv, 16);
  if (lsn !== expectedLsn) throw damage(16, `header LSN ${lsn} does not match the file name's ${expectedLsn}`);

  const bodyEnd = sizeBytes - CHECKPOINT_FOOTER_BYTES;
  const f = await readExactly(handle, CHECKPOINT_FOOTER_BYTES, bodyEnd);
  const fv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (!f.subarray(0, 8).equals(FOOTER_MAGIC)) throw damage(bodyEnd, 'no footer (truncated?)');
  if (fv.getUint32(24, true) !== crc32(f.subarray(0, 24))) throw damage(bodyEnd, 'footer checksum mismatch');
  const blocksExpected = fv.getUint32(8, true);
  const entriesExpected = readU64(fv, 16);

  const tree = emptyTree();
  let position = CHECKPOINT_HEADER_BYTES;
  let blocks = 0;
  let entries = 0;
  let lastKey: string | undefined;
  // Read in large chunks; a block never spans more than what we hold (a block is read whole).
  while (position < bodyEnd) {
    if (position + BLOCK_HEADER_BYTES > bodyEnd) throw damage(position, 'block header runs into the footer');
    const bh = await readExactly(handle, BLOCK_HEADER_BYTES, position);
    const bodyBytes = bh.readUInt32LE(0);
    const count = bh.readUInt32LE(4);
    const crc = bh.readUInt32LE(8);
    if (count === 0 || count > CHECKPOINT_BLOCK_ENTRIES_MAX || bh.readUInt32LE(12) !== 0) throw damage(position, 'bad block header');
    const start = position + BLOCK_HEADER_BYTES;
    if (start + bodyBytes > bodyEnd) throw damage(position, `block of ${bodyBytes} bytes runs into the footer`);
    const body = await readExactly(handle, bodyBytes, start);
    if (body.byteLength !== bodyBytes || crc32(body) !== crc) throw damage(start, 'block checksum mismatch');
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (at + 4 > bodyBytes) throw damage(start + at, 'entry runs past its block');
      const keyEnd = at + 4 + body.readUInt32LE(at);
      if (keyEnd + 4 > bodyBytes) throw damage(start + at, 'key runs past its block');
      const key = body.toString('latin1', at + 4, keyEnd);
      const valueEnd = keyEnd + 4 + body.readUInt32LE(keyEnd);
      if (valueEnd > bodyBytes) throw damage(start + keyEnd, 'value runs past its block');
      // Sorted, no duplicates: checked again on the reading side, so a writer bug cannot go unnoticed.
      if (lastKey !== undefined && !(key > lastKey)) throw damage(start + at, 'keys out of order');
      lastKey = key;
      tree.set(key, Buffer.from(body.subarray(keyEnd + 4, valueEnd)), true);
      at = valueEnd;
    }
    if (at !== bodyBytes) throw damage(start + at, 'block has bytes after its last entry');
    entries += count;
    blocks++;
    position = start + bodyBytes;
    await yieldEvery();
  }
  if (position !== bodyEnd) throw damage(position, 'blocks do not end at the footer');
  if (blocks !== blocksExpected || entries !== entriesExpected) throw damage(bodyEnd, `footer counts ${blocksExpected} blocks/${entriesExpected} entries, found ${blocks}/${entries}`);
  assert(tree.size === entries, 'every entry loaded once');
  return { lsn, tree, entries, bytes: sizeBytes };
}
