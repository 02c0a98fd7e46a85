/**
 * SinkStats' age of the oldest record not yet backed up: it keeps growing while the backup is stuck,
 * however many durable marks the WAL's commits leave (marks are merged when there are too many, never
 * dropped from the old end).
 */
import { describe, expect, it } from 'vitest';
import { DURABLE_MARKS_COUNT_MAX, DURABLE_MARK_SPACING_MS } from '../backup/limits.js';
import { SinkStats } from '../backup/stats.js';

describe('SinkStats lag age', () => {
  it('grows with the stuck time past the mark cap (25 minutes of commits every 5 ms)', () => {
    const stats = new SinkStats(0, 0);
    const commits = 3 * DURABLE_MARKS_COUNT_MAX;
    let nowMs = 1_000;
    const firstMs = nowMs;
    for (let lsn = 1; lsn <= commits; lsn++) {
      stats.markDurable(lsn, nowMs);
      nowMs += DURABLE_MARK_SPACING_MS;
    }
    // Nothing is backed up (checkpoint 0): the oldest unflushed record is LSN 1, durable since firstMs.
    expect(stats.oldestUnflushedAgeMs(0, nowMs)).toBe(nowMs - firstMs);
    // Backed up to the middle: the age is at least that of the record after the checkpoint, and at most
    // what it would be from the first mark.
    const checkpoint = commits / 2;
    const trueAgeMs = nowMs - (firstMs + checkpoint * DURABLE_MARK_SPACING_MS);
    const age = stats.oldestUnflushedAgeMs(checkpoint, nowMs);
    expect(age).toBeGreaterThanOrEqual(trueAgeMs);
    expect(age).toBeLessThanOrEqual(nowMs - firstMs);
    stats.flushed(1, commits, 1, 0, { readMs: 0, writeMs: 0, publishMs: 0, checkpointMs: 0, totalMs: 0 });
    expect(stats.oldestUnflushedAgeMs(commits, nowMs)).toBe(0);
  });
});
