/**
 * A small WAL on an in-memory disk behind a fault-injecting layer, with the payloads it was given kept
 * for checking. Segments of 4 KiB and payloads of 100 bytes (128 bytes a record) give 31 records a
 * segment, so a test knows which batch fits the current segment and which rolls into the next.
 */
import { Wal, type SyncMode } from '../../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../../fs/index.js';
import { PREALLOC_SUFFIX } from '../../wal/segment-preparer.js';
import { turns } from './async.js';
import { patternBytes } from './payload.js';
import { ExpectedLog, verifyLog } from './wal-log.js';

export const MEMORY_WAL_DIR = '/data/wal';
export const SEGMENT_BYTES = 4096;
export const PAYLOAD_BYTES = 100;
/** (4096 - 32-byte segment header) / 128 bytes a record. */
export const RECORDS_PER_SEGMENT = 31;

export class MemoryWal {
  readonly mem: MemoryFileSystem;
  readonly fault: FaultFileSystem;
  readonly log = new ExpectedLog();
  wal: Wal;
  /** Where its commits run (the WAL's syncMode option), for every open of this log. */
  readonly syncMode: SyncMode;

  private constructor(mem: MemoryFileSystem, fault: FaultFileSystem, wal: Wal, syncMode: SyncMode) {
    this.mem = mem;
    this.fault = fault;
    this.wal = wal;
    this.syncMode = syncMode;
  }

  /** Opens a fresh WAL; `beforeOpen` may inject rules that must see the WAL's very first operations. */
  static async open(beforeOpen?: (fault: FaultFileSystem) => void, syncMode: SyncMode = 'worker'): Promise<MemoryWal> {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    beforeOpen?.(fault);
    const wal = await Wal.open({ dir: MEMORY_WAL_DIR, fs: fault, segmentSizeBytes: SEGMENT_BYTES, syncMode });
    return new MemoryWal(mem, fault, wal, syncMode);
  }

  /** Appends `count` records in this turn (they ride one batch); returns their LSNs. */
  append(count: number): number[] {
    const lsns: number[] = [];
    for (let i = 0; i < count; i++) {
      const lsn = this.wal.lastLsn + 1;
      const payload = patternBytes(lsn * 7919, PAYLOAD_BYTES);
      if (this.wal.append(payload) !== lsn) throw new Error(`append did not return LSN ${lsn}`);
      this.log.set(lsn, payload);
      lsns.push(lsn);
    }
    return lsns;
  }

  /** Appends `count` records as one batch and awaits every one of them. */
  async appendDurable(count: number): Promise<number[]> {
    const lsns = this.append(count);
    await Promise.all(lsns.map((lsn) => this.wal.waitDurable(lsn)));
    return lsns;
  }

  /**
   * The usual start: 20 acknowledged records in the first segment, in four batches, with the
   * background preparation of the next segment given time to finish.
   */
  async fillFirstSegment(): Promise<void> {
    await this.appendDurable(8);
    for (let i = 0; i < 3; i++) await this.appendDurable(4);
    await turns(5);
  }

  /** Paths of the preallocated segment files waiting to be used (temp names). */
  async preparedPaths(): Promise<string[]> {
    return (await this.mem.readdir(MEMORY_WAL_DIR)).filter((n) => n.endsWith(PREALLOC_SUFFIX)).map((n) => `${MEMORY_WAL_DIR}/${n}`);
  }

  /** Opens the directory again (through the same fault layer) and checks the log against what was appended. */
  async reopenAndVerify(mustSurviveLsn: number): Promise<Wal> {
    this.wal = await Wal.open({ dir: MEMORY_WAL_DIR, fs: this.fault, segmentSizeBytes: SEGMENT_BYTES, syncMode: this.syncMode });
    await verifyLog(this.wal, (lsn) => this.log.get(lsn), { mustSurviveLsn, lastAppendedLsn: this.log.lastLsn });
    this.log.truncateAfter(this.wal.lastLsn);
    return this.wal;
  }
}
