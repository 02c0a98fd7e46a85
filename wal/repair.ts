/**
 * Torn-tail repair (recovery.ts decides what is torn; this cuts it). The cut bytes are kept first, as
 * a copy published durably beside the segment (`<segment>.torn`, then `.torn.2`, `.torn.3`, ...: a
 * later cut never overwrites an earlier copy), then zeroed in place and synced, so no stale bytes can
 * be read back as records after new appends. In a recycled (version-3) segment the range is bounded by
 * recovery (X to the end of the last record of the segment found after X, at least 4 KiB): the old bytes
 * beyond it are left as they are, and the zeros at X are the end marker again.
 *
 * On a full disk (ENOSPC, EDQUOT: the last commit was often cut short by it) the copy is given up and
 * the cut goes on without it, said in the log: the cut bytes were never acknowledged (recovery's table
 * calls a tail torn only when no intact batch follows it), and a log that could not reopen until space
 * is freed would keep its acknowledged records from being read meanwhile. Any other error fails the open.
 */
import type { FileSystem } from '../fs/file-system.js';
import { publishFileDurably, tempNameFor } from '../fs/durable-publish.js';
import type { Logger } from '../core/logger.js';
import type { TornTail } from './recovery.js';

/** The file system's answers for "no room to write" (a full disk, a quota). */
const NO_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** Suffix of a copy of cut bytes (a later copy of the same segment adds `.2`, `.3`, ...). */
export const TORN_SUFFIX = '.torn';

/**
 * The name for a copy of cut bytes: `<segment>.torn` for the first cut of a segment, then
 * `<segment>.torn.2`, `.3`, ...: a later cut never overwrites an earlier copy.
 */
async function freeTornName(fs: FileSystem, dir: string, segment: string): Promise<string> {
  const taken = new Set(await fs.readdir(dir));
  let name = `${segment}${TORN_SUFFIX}`;
  for (let n = 2; taken.has(name); n++) name = `${segment}${TORN_SUFFIX}.${n}`;
  return name;
}

/** Keeps a copy of the cut bytes beside the segment (never over an earlier copy), then zeros them in place and syncs. */
export async function repairTornTail(fs: FileSystem, torn: TornTail, logger: Logger | undefined): Promise<void> {
  const handle = await fs.open(torn.file, 'r+');
  let copy: string | null = null;
  try {
    if (torn.bytes > 0) {
      const cut = new Uint8Array(torn.bytes);
      await handle.read(cut, 0, torn.bytes, torn.offset);
      const slash = torn.file.lastIndexOf('/');
      const dir = torn.file.slice(0, slash);
      copy = await freeTornName(fs, dir, torn.file.slice(slash + 1));
      try {
        await publishFileDurably(fs, dir, copy, [cut], 'fsync');
      } catch (err) {
        if (!NO_SPACE_CODES.has((err as NodeJS.ErrnoException)?.code ?? '')) throw err;
        await fs.unlink(`${dir}/${tempNameFor(copy)}`).catch(() => {}); // the next open sweeps it otherwise
        logger?.warn({ ...torn, err }, 'WAL torn tail: no space for a copy of the cut bytes, cut without one');
        copy = null;
      }
      await handle.commit([new Uint8Array(torn.bytes)], torn.offset, 'fsync');
    }
  } finally {
    await handle.close();
  }
  logger?.warn({ ...torn, copy }, 'WAL torn tail cut');
}
