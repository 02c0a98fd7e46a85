/**
 * Damage to a file on a test's file system: one byte flipped in the middle, or the file cut to half its
 * size; synced, so a crash image keeps it.
 */
import type { FileSystem } from '../../fs/index.js';

export async function damageFile(fs: FileSystem, path: string, how: 'flip' | 'truncate'): Promise<void> {
  const h = await fs.open(path, 'r+');
  try {
    const { sizeBytes } = await h.stat();
    if (how === 'truncate') await h.truncate(Math.floor(sizeBytes / 2));
    else {
      const at = Math.floor(sizeBytes / 2);
      const b = new Uint8Array(1);
      await h.read(b, 0, 1, at);
      b[0] = (b[0] as number) ^ 0x40;
      await h.writev([b], at);
    }
    await h.datasync();
  } finally {
    await h.close();
  }
}
