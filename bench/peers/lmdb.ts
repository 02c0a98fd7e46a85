/**
 * lmdb (lmdb-js). Its put() promise resolves when the transaction commits, which on Linux is before the
 * flush by default (overlappingSync defaults to true). Durable here means overlappingSync: false, so the
 * commit includes LMDB's syncs and the promise resolves after them. Writes issued in the same event turn
 * share one transaction (eventTurnBatching, the default): lmdb-js does its own group commit.
 */
import type { Peer, PeerOpener } from './peer.js';

export const lmdbPeer: Peer = {
  id: 'lmdb',
  packageName: 'lmdb',
  durableSetting: 'overlappingSync: false (put resolves after the commit is synced)',
  async load(): Promise<PeerOpener> {
    const { open } = await import('lmdb');
    return async (dir, payload) => {
      const db = open<Buffer, number>({ path: dir, overlappingSync: false, encoding: 'binary', compression: false });
      let nextKey = 0;
      return {
        write: () => db.put(nextKey++, payload),
        close: () => db.close(),
      };
    };
  },
};
