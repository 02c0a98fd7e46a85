/** Test file systems around a MemoryFileSystem whose handles' dropCache is replaced, and a reader of checkpoint block headers. */
import type { FileHandle, FileSystem, OpenFlags } from '../../fs/index.js';
import type { MemoryFileSystem } from '../../fs/index.js';

/** `mem` with every handle's dropCache replaced by `dropCache(inner, offset, lengthBytes)`; everything else passes through. */
export function withDropCache(mem: MemoryFileSystem, dropCache: (inner: FileHandle, offset: number, lengthBytes: number) => Promise<void>): FileSystem {
  const bind = <T extends object>(target: T, key: string | symbol): unknown => {
    const v = Reflect.get(target, key, target) as unknown;
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  };
  return new Proxy(mem, {
    get(target, key) {
      if (key !== 'open') return bind(target, key);
      return async (path: string, flags: OpenFlags) => {
        const h = await target.open(path, flags);
        return new Proxy(h, { get: (t, k) => (k === 'dropCache' ? (offset: number, lengthBytes: number) => dropCache(t, offset, lengthBytes) : bind(t, k)) });
      };
    },
  });
}

/** The blocks of the one checkpoint file in `dir`: body bytes and entry count of each, in order. */
export async function checkpointBlocks(mem: MemoryFileSystem, dir: string): Promise<Array<{ bodyBytes: number; entries: number }>> {
  const name = (await mem.readdir(dir)).find((n) => n.endsWith('.ckpt')) as string;
  const h = await mem.open(`${dir}/${name}`, 'r');
  const { sizeBytes } = await h.stat();
  const file = Buffer.alloc(sizeBytes);
  await h.read(file, 0, sizeBytes, 0);
  await h.close();
  const blocks: Array<{ bodyBytes: number; entries: number }> = [];
  // Header and footer are 32 bytes each; a block header is 16 (engine/checkpoint-file.ts).
  for (let at = 32; at < sizeBytes - 32; ) {
    const bodyBytes = file.readUInt32LE(at);
    blocks.push({ bodyBytes, entries: file.readUInt32LE(at + 4) });
    at += 16 + bodyBytes;
  }
  return blocks;
}
