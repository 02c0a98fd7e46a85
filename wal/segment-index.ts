/**
 * SegmentIndex: a sparse map from LSN to byte offset inside one segment, so a read that starts in the
 * middle of a 64 MiB segment seeks close to its first record instead of scanning (and checksumming)
 * everything before it. Entries are record starts, in LSN order, at least INDEX_SPACING_BYTES apart;
 * the writer adds one per commit, recovery one per stretch of that many bytes.
 */
import { assert } from '../core/errors.js';
import { SEGMENT_HEADER_BYTES } from './format.js';

export const INDEX_SPACING_BYTES = 64 * 1024;

export class SegmentIndex {
  readonly #lsns: number[] = [];
  readonly #offsets: number[] = [];

  constructor(firstLsn: number) {
    this.#lsns.push(firstLsn);
    this.#offsets.push(SEGMENT_HEADER_BYTES);
  }

  /** Notes that the record `lsn` starts at `offset` (kept only if far enough past the last entry). */
  add(lsn: number, offset: number): void {
    const last = this.#lsns.length - 1;
    // Called once per record by recovery: the message is built only when the assertion fails.
    if (!(lsn > (this.#lsns[last] as number) && offset > (this.#offsets[last] as number))) assert(false, `index entries in order: ${lsn}@${offset}`);
    if (offset - (this.#offsets[last] as number) >= INDEX_SPACING_BYTES) {
      this.#lsns.push(lsn);
      this.#offsets.push(offset);
    }
  }

  /** The indexed record start at or before `lsn`: where a read for `lsn` begins. */
  seek(lsn: number): { lsn: number; offset: number } {
    let lo = 0;
    let hi = this.#lsns.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#lsns[mid] as number) <= lsn) lo = mid;
      else hi = mid - 1;
    }
    return { lsn: this.#lsns[lo] as number, offset: this.#offsets[lo] as number };
  }

  get entriesCount(): number {
    return this.#lsns.length;
  }
}
