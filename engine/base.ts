/**
 * A base: the engine's whole state as of one LSN, written into its own WAL, so that a backup that begins
 * after LSN 1 holds everything a restore needs (TiKV pairs a log backup with a full snapshot backup for
 * the same reason; here the snapshot rides the log itself, so the backup target needs nothing new).
 *
 * When: at open, when the engine runs a backup whose first LSN is above 1 (the engine ran without one,
 * and checkpoints truncated its WAL) and no base was written for that backup yet. The base is appended
 * before open completes, so no write of the user's lies between its records:
 *
 *   LSN b        base begin  (the state as of LSN b - 1 follows)
 *   b+1 .. e-1   base chunks (puts, in key order, each record at most BASE_CHUNK_BYTES); an entry larger
 *                than that goes in parts (slices of its value, in order), so any value the WAL took fits
 *   e            base end    (b, and the number of entries: a check)
 *
 * Replay (BaseReplay): the chunks of a base build a tree of their own; at its end that tree becomes the
 * state. A base cut short (a crash while it was appended) is dropped: the state is what it was, and the
 * next open writes a new one. Replay of a log that starts after LSN 1 with no checkpoint (a restored
 * backup) starts from nothing and is valid from the first complete base on; a restore to an LSN before
 * that end cannot be opened (ENGINE_CORRUPT says so).
 *
 * Once the base is durable, a marker file (BASE_MARKER_NAME, in the checkpoints directory) records the
 * backup it was written for, so later opens do not write another. A crash between the two writes one
 * more base at the next open: more bytes, nothing wrong.
 */
import { readWholeFile, type FileSystem } from '../fs/file-system.js';
import { publishFileDurably } from '../fs/durable-publish.js';
import type { Wal } from '../wal/index.js';
import { BASE_CHUNK_BYTES, BASE_CHUNKS_IN_FLIGHT } from './limits.js';
import { emptyTree, type Tree } from './ordered-index.js';
import { encodeBaseBegin, encodeBaseChunk, encodeBaseEnd, encodeBasePart, type Op } from './record.js';

/** Bytes a base part record adds around its key and slice (msgpack framing, LSNs, offsets), at most. */
const BASE_PART_OVERHEAD_BYTES = 64;

export const BASE_MARKER_NAME = 'BACKUP-BASE.json';

/** What the marker records: the backup (its location and first LSN) and the LSNs of its base. */
export interface BaseMarker {
  backup: string;
  startLsn: number;
  beginLsn: number;
  endLsn: number;
}

export async function readBaseMarker(fs: FileSystem, dir: string): Promise<BaseMarker | null> {
  try {
    const m = JSON.parse(Buffer.from(await readWholeFile(fs, `${dir}/${BASE_MARKER_NAME}`)).toString('utf8')) as Partial<BaseMarker>;
    return typeof m.backup === 'string' && typeof m.startLsn === 'number' && typeof m.beginLsn === 'number' && typeof m.endLsn === 'number' ? (m as BaseMarker) : null;
  } catch (err) {
    // Missing, or unreadable (a damaged marker): either way the answer is "write a base".
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return null;
    throw err;
  }
}

export async function writeBaseMarker(fs: FileSystem, dir: string, marker: BaseMarker): Promise<void> {
  await publishFileDurably(fs, dir, BASE_MARKER_NAME, [Buffer.from(JSON.stringify(marker), 'utf8')]);
}

/**
 * Appends the base of `tree` (the state as of the WAL's last LSN) and waits until it is durable.
 * Returns the LSNs of its begin and end records.
 */
export async function appendBase(wal: Wal, tree: Tree): Promise<{ beginLsn: number; endLsn: number; entries: number }> {
  const chunkBytesMax = Math.min(BASE_CHUNK_BYTES, Math.floor(wal.payloadBytesMax / 2));
  const beginLsn = wal.append(encodeBaseBegin(wal.lastLsn));
  let chunk: Array<[string, Buffer]> = [];
  let chunkBytes = 0;
  let entries = 0;
  let chunks = 0;
  for (const [key, value] of tree.entries()) {
    const bytes = key.length + value.byteLength + 16;
    if (bytes > chunkBytesMax) {
      // Too large for a chunk of its own (a chunk's framing adds bytes the put's record did not have).
      if (chunk.length > 0) wal.append(encodeBaseChunk(beginLsn, chunk));
      chunk = [];
      chunkBytes = 0;
      const sliceBytes = chunkBytesMax - key.length - BASE_PART_OVERHEAD_BYTES;
      if (sliceBytes <= 0) throw new RangeError(`key of ${key.length} bytes does not fit a base record (limit ${chunkBytesMax} bytes)`);
      // Never empty: an entry with an empty value fits a chunk unless its key alone does not (refused above).
      for (let at = 0; at < value.byteLength; at += sliceBytes) {
        const lsn = wal.append(encodeBasePart(beginLsn, key, at, value.byteLength, value.subarray(at, Math.min(value.byteLength, at + sliceBytes))));
        if (++chunks % BASE_CHUNKS_IN_FLIGHT === 0) await wal.waitDurable(lsn);
      }
      entries++;
      continue;
    }
    if (chunk.length > 0 && chunkBytes + bytes > chunkBytesMax) {
      const lsn = wal.append(encodeBaseChunk(beginLsn, chunk));
      chunk = [];
      chunkBytes = 0;
      // Bounded staging, and the loop gets turns: wait for the log every BASE_CHUNKS_IN_FLIGHT chunks.
      if (++chunks % BASE_CHUNKS_IN_FLIGHT === 0) await wal.waitDurable(lsn);
    }
    chunk.push([key, value]);
    chunkBytes += bytes;
    entries++;
  }
  if (chunk.length > 0) wal.append(encodeBaseChunk(beginLsn, chunk));
  const endLsn = wal.append(encodeBaseEnd(beginLsn, entries));
  await wal.waitDurable(endLsn);
  return { beginLsn, endLsn, entries };
}

/**
 * Replay's view of bases. `complete` says whether the state replay holds is the real one: true when
 * replay started from a checkpoint or from LSN 1, false when it started from nothing (a log that begins
 * after LSN 1) until the end of a complete base.
 */
export class BaseReplay {
  #building: { beginLsn: number; tree: Tree; entries: number; part: { key: string; slices: Buffer[]; bytes: number } | null } | null = null;
  complete: boolean;
  /** LSN of the end of the last complete base seen (0: none). */
  lastEndLsn = 0;

  constructor(complete: boolean) {
    this.complete = complete;
  }

  begin(lsn: number): void {
    this.#building = { beginLsn: lsn, tree: emptyTree(), entries: 0, part: null }; // an earlier base cut short is dropped
  }

  /** A chunk of the base begun at `beginLsn`: its puts go to the base's own tree. */
  chunk(beginLsn: number, ops: readonly Op[]): void {
    const b = this.#building;
    if (!b || b.beginLsn !== beginLsn) return; // a chunk of a base already dropped
    if (b.part !== null) {
      this.#building = null; // an entry's parts interrupted: not a base this engine wrote whole
      return;
    }
    for (const op of ops) if (op.type === 'put') b.tree.set(op.key, op.value, true);
    b.entries += ops.length;
  }

  /** A slice of one entry's value; the entry is set when its last slice arrives (slices come in order). */
  part(beginLsn: number, key: string, offsetBytes: number, totalBytes: number, bytes: Buffer): void {
    const b = this.#building;
    if (!b || b.beginLsn !== beginLsn) return;
    const p = offsetBytes === 0 ? { key, slices: [] as Buffer[], bytes: 0 } : b.part;
    if (!p || p.key !== key || p.bytes !== offsetBytes) {
      this.#building = null; // out of order: not a base this engine wrote whole
      return;
    }
    p.slices.push(bytes);
    p.bytes += bytes.byteLength;
    b.part = p;
    if (p.bytes === totalBytes) {
      b.tree.set(key, p.slices.length === 1 ? (p.slices[0] as Buffer) : Buffer.concat(p.slices, totalBytes), true);
      b.entries++;
      b.part = null;
    }
  }

  /** The end of a base: returns its tree (the state from here on), or null if it is not the one building. */
  end(beginLsn: number, entries: number, lsn: number): Tree | null {
    const b = this.#building;
    this.#building = null;
    if (!b || b.beginLsn !== beginLsn || b.entries !== entries || b.part !== null) return null;
    this.complete = true;
    this.lastEndLsn = lsn;
    return b.tree;
  }

  /** Any other record: a base is contiguous, so one still building was cut short. */
  other(): void {
    this.#building = null;
  }
}
