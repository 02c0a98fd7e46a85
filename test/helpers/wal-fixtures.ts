import { Wal, type WalOptions } from '../../wal/index.js';
import { MemoryFileSystem } from '../../fs/memory-file-system.js';

/** Deterministic payload for an LSN and a length. */
export function payloadFor(lsn: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (lsn * 2654435761) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export async function readAll(wal: Wal): Promise<Array<{ lsn: number; payload: Uint8Array }>> {
  const out: Array<{ lsn: number; payload: Uint8Array }> = [];
  for await (const r of wal.read()) out.push(r);
  return out;
}

/** Builds a closed WAL in memory, one awaited record per batch; returns the fs and the payloads by LSN. */
export async function buildMemoryWal(lengths: readonly number[], options: Partial<WalOptions> = {}): Promise<{ fs: MemoryFileSystem; payloads: Uint8Array[]; dir: string }> {
  const fs = new MemoryFileSystem();
  const dir = '/db';
  const wal = await Wal.open({ dir, fs, ...options });
  const payloads: Uint8Array[] = [new Uint8Array(0)];
  for (const len of lengths) {
    const lsn = wal.lastLsn + 1;
    const p = payloadFor(lsn, len);
    expectEq(wal.append(p), lsn);
    await wal.waitDurable(lsn);
    payloads.push(p);
  }
  await wal.close();
  return { fs, payloads, dir };
}

function expectEq(a: number, b: number): void {
  if (a !== b) throw new Error(`expected ${b}, got ${a}`);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** Appends `count` copies of `payload` and waits until they are durable: one commit of that many records. Returns the last LSN. */
export async function commitRecords(wal: Wal, payload: Uint8Array, count: number): Promise<number> {
  let lsn = 0;
  for (let i = 0; i < count; i++) lsn = wal.append(payload);
  return wal.waitDurable(lsn);
}
