/**
 * classic-level (LevelDB). put(key, value, { sync: true }) fsyncs LevelDB's log before it resolves.
 * Puts run on libuv's thread pool; LevelDB merges concurrent writers into one log write and sync.
 */
import type { Peer, PeerOpener } from './peer.js';

export const classicLevelPeer: Peer = {
  id: 'classic-level',
  packageName: 'classic-level',
  durableSetting: 'put(key, value, { sync: true })',
  async load(): Promise<PeerOpener> {
    const { ClassicLevel } = await import('classic-level');
    return async (dir, payload) => {
      const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      let nextKey = 0;
      const putOptions = { sync: true };
      return {
        write: () => {
          const key = Buffer.allocUnsafe(8);
          const n = nextKey++;
          key.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
          key.writeUInt32BE(n >>> 0, 4);
          return db.put(key, payload, putOptions);
        },
        close: () => db.close(),
      };
    };
  },
};
