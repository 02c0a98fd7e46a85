/**
 * What a test expects a WAL to hold, and the check of a recovered WAL against it: a contiguous log
 * 1..lastLsn read back through the public API, every payload byte for byte what was appended under
 * that LSN, every LSN that must survive present, nothing that was never appended.
 */
import type { Wal } from '../../wal/index.js';
import { equalBytes } from './wal-fixtures.js';

export type PayloadOf = (lsn: number) => Uint8Array | undefined;

/** Payloads by LSN, as the test appended them. */
export class ExpectedLog {
  #payloads: Uint8Array[] = [];

  get lastLsn(): number {
    return this.#payloads.length;
  }

  /** Records the payload appended under `lsn` (which must be the next LSN). */
  set(lsn: number, payload: Uint8Array): void {
    if (lsn !== this.#payloads.length + 1) throw new Error(`test bug: appended LSN ${lsn}, expected ${this.#payloads.length + 1}`);
    this.#payloads.push(payload);
  }

  get(lsn: number): Uint8Array | undefined {
    return this.#payloads[lsn - 1];
  }

  /** After a recovery: LSNs above `lsn` were lost and will be assigned again to new payloads. */
  truncateAfter(lsn: number): void {
    this.#payloads.length = Math.min(this.#payloads.length, lsn);
  }
}

export interface VerifyOptions {
  /** Every LSN up to this one must be in the log (acknowledged, or recovered before). */
  mustSurviveLsn: number;
  /** No LSN above this one was ever appended. */
  lastAppendedLsn: number;
  /** The highest LSN passed to a truncateBefore (default 0: none): the log may start anywhere from 1 up to it. */
  truncatedBeforeLsn?: number;
}

/**
 * Reads a freshly opened WAL from its first record and checks it; throws an Error that says what is
 * wrong. Returns the recovered last LSN.
 */
export async function verifyLog(wal: Wal, payloadOf: PayloadOf, options: VerifyOptions): Promise<number> {
  const { mustSurviveLsn, lastAppendedLsn, truncatedBeforeLsn = 0 } = options;
  const lastLsn = wal.lastLsn;
  const fail = (what: string): never => {
    throw new Error(`recovered log is wrong: ${what} (recovered lastLsn ${lastLsn}, must survive up to ${mustSurviveLsn}, appended up to ${lastAppendedLsn})`);
  };
  if (wal.durableLsn !== lastLsn) fail(`durableLsn ${wal.durableLsn} after open is not lastLsn`);
  if (lastLsn < mustSurviveLsn) fail(`LSNs ${lastLsn + 1}..${mustSurviveLsn} were acknowledged (or recovered before) and are missing`);
  if (lastLsn > lastAppendedLsn) fail(`LSNs ${lastAppendedLsn + 1}..${lastLsn} were never appended`);
  if (truncatedBeforeLsn === 0 && wal.firstLsn !== (lastLsn === 0 ? 0 : 1)) fail(`firstLsn is ${wal.firstLsn}; nothing was truncated, so it must be ${lastLsn === 0 ? 0 : 1}`);
  // truncateBefore(t) removes only segments whose records are all below t: the log starts at or below t
  // (a power loss may bring back a segment whose unlink or rename was not yet durable).
  if (truncatedBeforeLsn > 0 && lastLsn > 0 && (wal.firstLsn < 1 || wal.firstLsn > truncatedBeforeLsn)) fail(`firstLsn is ${wal.firstLsn}; truncateBefore was asked for at most ${truncatedBeforeLsn}`);
  const fromLsn = Math.max(1, wal.firstLsn);
  let expectedLsn = fromLsn;
  for await (const record of wal.read({ fromLsn })) {
    if (record.lsn !== expectedLsn) fail(`read gave LSN ${record.lsn} where LSN ${expectedLsn} was due`);
    const want = payloadOf(record.lsn);
    if (want === undefined) fail(`no payload was appended under LSN ${record.lsn}`);
    else if (!equalBytes(record.payload, want)) {
      fail(`payload of LSN ${record.lsn} differs: ${record.payload.byteLength} bytes read, ${want.byteLength} appended`);
    }
    expectedLsn++;
  }
  if (expectedLsn - 1 !== lastLsn) fail(`read ended at LSN ${expectedLsn - 1}`);
  return lastLsn;
}
