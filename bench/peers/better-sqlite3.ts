/**
 * better-sqlite3 in journal_mode=WAL with synchronous=FULL: every commit syncs SQLite's WAL file.
 * The driver is synchronous, so concurrent writers form a queue in front of it, drained on the event
 * loop; an acknowledgement's latency includes the time spent in that queue, as a caller's would.
 * Two variants:
 *  - one row per transaction (what autocommit inserts give);
 *  - batched: each drain writes everything queued in one transaction (the group commit a user would
 *    write by hand around a synchronous driver).
 */
import path from 'node:path';
import type { Peer, PeerOpener, PeerStore } from './peer.js';

/** A drain of the one-row variant stops after this long, so timers and I/O get a turn. */
const drainSliceMs = 10;

interface Pending {
  key: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function makeLoader(batched: boolean): () => Promise<PeerOpener> {
  return async () => {
    const { default: Database } = await import('better-sqlite3');
    return async (dir: string, payload: Buffer): Promise<PeerStore> => {
      const db = new Database(path.join(dir, 'peer.sqlite'));
      const journalMode = db.pragma('journal_mode = WAL', { simple: true });
      if (journalMode !== 'wal') throw new Error(`journal_mode=WAL was refused (got ${String(journalMode)})`);
      db.pragma('synchronous = FULL');
      if (db.pragma('synchronous', { simple: true }) !== 2) throw new Error('synchronous=FULL was refused');
      db.exec('CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)');
      const insert = db.prepare('INSERT INTO kv (k, v) VALUES (?, ?)');
      const insertAll = db.transaction((items: readonly Pending[]) => {
        for (const item of items) insert.run(item.key, payload);
      });

      let queue: Pending[] = [];
      let scheduled = false;
      let nextKey = 0;
      const drain = (): void => {
        scheduled = false;
        if (queue.length === 0) return;
        if (batched) {
          const items = queue;
          queue = [];
          try {
            insertAll(items);
          } catch (err) {
            for (const item of items) item.reject(err);
            return;
          }
          for (const item of items) item.resolve();
        } else {
          const deadlineMs = performance.now() + drainSliceMs;
          let index = 0;
          while (index < queue.length && performance.now() < deadlineMs) {
            const item = queue[index++]!;
            try {
              insert.run(item.key, payload);
              item.resolve();
            } catch (err) {
              item.reject(err);
            }
          }
          queue = queue.slice(index);
        }
        if (queue.length > 0) schedule();
      };
      const schedule = (): void => {
        if (scheduled) return;
        scheduled = true;
        setImmediate(drain);
      };
      return {
        write: () =>
          new Promise<void>((resolve, reject) => {
            queue.push({ key: nextKey++, resolve, reject });
            schedule();
          }),
        close: async () => {
          if (queue.length > 0) throw new Error(`closing with ${queue.length} writes still queued`);
          db.close();
        },
      };
    };
  };
}

const durableSetting = 'journal_mode=WAL, synchronous=FULL';

export const betterSqlite3Peer: Peer = {
  id: 'better-sqlite3',
  packageName: 'better-sqlite3',
  durableSetting: `${durableSetting}, one row per transaction`,
  load: makeLoader(false),
};

export const betterSqlite3BatchedPeer: Peer = {
  id: 'better-sqlite3-batched',
  packageName: 'better-sqlite3',
  durableSetting: `${durableSetting}, one transaction per drain of the queue`,
  load: makeLoader(true),
};
