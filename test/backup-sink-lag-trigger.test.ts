/**
 * The lag trigger (flushLagBytes, or segmentSizeBytesMax when smaller), deterministically: the sink's
 * timers run on a manual clock that the tests never advance unless they say so, so no interval flush or
 * retry can run behind their back, and flushes are held in their datasync by the fault-injecting file
 * system.
 *
 * - a trigger's worth of lag starts a flush without the interval (the default flushLagBytes included);
 * - a flush that ends with a trigger's worth of new lag starts the next one at once, without the
 *   interval; with no lag nothing more runs (no spinning);
 * - lag below the trigger at the end of a flush is left to the interval: under load every automatic
 *   flush carries at least a trigger's worth, never a flush per commit;
 * - a failed flush's retry delay holds the lag trigger too (no flush per commit against a failing
 *   target), and once the retry succeeds the lag that piled up meanwhile follows at once;
 * - the option's defaults (a directory, S3) and bounds.
 */
import { describe, expect, it } from 'vitest';
import { FLUSH_LAG_BYTES_DEFAULT, FLUSH_LAG_BYTES_DEFAULT_S3, FLUSH_LAG_BYTES_MIN } from '../backup/limits.js';
import { backupDefaults, type BackupSinkOptions } from '../backup/options.js';
import type { Wal } from '../wal/index.js';
import { appendDurable } from './helpers/backup-fixtures.js';
import { turns, until } from './helpers/async.js';
import { BACKUP_DATA_SYNC, holdFlushAtDatasync, sinkFixture, type HeldFlush, type SinkFixture } from './helpers/held-flush.js';
import { ManualClock } from './helpers/manual-clock.js';

/** Timers only when the test advances time; deferred work (a flush's start) on the real event loop. */
class ManualTimersClock extends ManualClock {
  override defer(fn: () => void): void {
    setImmediate(fn);
  }
}

/** Records of PAYLOAD_BYTES: LAG_RECORDS of them are past a LAG_TRIGGER_BYTES trigger, FEW_RECORDS are far below it. */
const LAG_TRIGGER_BYTES = 4096;
const PAYLOAD_BYTES = 50;
const LAG_RECORDS = 200;
const FEW_RECORDS = 10;
/** Event-loop turns given to anything that would start a flush on its own (nothing may). */
const QUIET_TURNS = 50;
const FLUSH_INTERVAL_MS = 1000;

/** sinkFixture on a ManualTimersClock, with the [fromLsn, toLsn] of every flush recorded in `flushes`. */
async function lagSink(options: Partial<BackupSinkOptions>): Promise<SinkFixture & { clock: ManualTimersClock; flushes: Array<[number, number]> }> {
  const clock = new ManualTimersClock();
  const fixture = await sinkFixture({ clock, flushIntervalMs: FLUSH_INTERVAL_MS, ...options });
  const flushes: Array<[number, number]> = [];
  fixture.sink.on('flush', (e) => flushes.push([e.fromLsn, e.toLsn]));
  return { ...fixture, clock, flushes };
}

/** LAG_RECORDS made durable start a flush by themselves; it is held in its datasync. */
function holdLagFlush({ wal, sink, bfs }: SinkFixture): Promise<HeldFlush<number>> {
  return holdFlushAtDatasync(bfs, sink, () => appendDurable(wal, LAG_RECORDS, PAYLOAD_BYTES));
}

describe('BackupSink lag trigger', () => {
  it('the records sized as the tests assume: LAG_RECORDS are past the trigger, FEW_RECORDS are below it', async () => {
    await using fixture = await lagSink({});
    const { wal } = fixture;
    await appendDurable(wal, LAG_RECORDS, PAYLOAD_BYTES);
    const avgRecordBytes = wal.appendedBytes / wal.appends;
    expect(LAG_RECORDS * avgRecordBytes).toBeGreaterThanOrEqual(LAG_TRIGGER_BYTES);
    expect(FEW_RECORDS * avgRecordBytes).toBeLessThan(LAG_TRIGGER_BYTES / 2);
  });

  it('the default flushLagBytes starts a flush without the interval once that much is durable and not backed up', async () => {
    await using fixture = await lagSink({});
    const { wal, sink, clock, flushes } = fixture;
    const payloadBytes = 1024;
    const records = Math.ceil(FLUSH_LAG_BYTES_DEFAULT / payloadBytes) + 1;
    const last = await appendDurable(wal, records, payloadBytes);
    await until(() => sink.checkpointLsn === last, 'the lag-triggered flush');
    expect(flushes).toEqual([[1, last]]);
    expect(clock.nowMs()).toBe(0); // no interval ran
  });

  it('a flush that ends with a trigger of new lag starts the next at once, without the interval; with no lag nothing more runs', async () => {
    await using fixture = await lagSink({ flushLagBytes: LAG_TRIGGER_BYTES });
    const { wal, sink, bfs, clock, flushes } = fixture;
    await using held = await holdLagFlush(fixture);
    await held.started;
    expect(flushes).toEqual([]);
    // Another trigger's worth becomes durable while it is held.
    const last = await appendDurable(wal, LAG_RECORDS, PAYLOAD_BYTES);
    expect(sink.stats().flushes).toBe(0);
    held.release();
    await until(() => sink.checkpointLsn === last, 'the chained flush');
    expect(flushes).toEqual([
      [1, LAG_RECORDS],
      [LAG_RECORDS + 1, last],
    ]);
    expect(clock.nowMs()).toBe(0);
    // Caught up: no flush without lag.
    const datasyncs = bfs.counts.datasync;
    await turns(QUIET_TURNS);
    expect(sink.flushing).toBe(false);
    expect(sink.stats().flushes).toBe(2);
    expect(bfs.counts.datasync).toBe(datasyncs);
  });

  it('lag below the trigger when a flush ends waits for the interval (segmentSizeBytesMax as the trigger: every automatic flush carries a trigger or more)', async () => {
    // flushLagBytes stays at its default: the smaller segmentSizeBytesMax is the trigger.
    await using fixture = await lagSink({ segmentSizeBytesMax: LAG_TRIGGER_BYTES });
    const { wal, sink, clock, flushes } = fixture;
    await using held = await holdLagFlush(fixture);
    await held.started;
    // A few records become durable, in several commits, while the flush is held: far below the trigger.
    let last = 0;
    for (let i = 0; i < FEW_RECORDS; i++) last = await appendDurable(wal, 1, PAYLOAD_BYTES);
    held.release();
    await until(() => sink.checkpointLsn === LAG_RECORDS && !sink.flushing, 'the first flush');
    await turns(QUIET_TURNS);
    expect(sink.stats().flushes).toBe(1);
    expect(sink.checkpointLsn).toBe(LAG_RECORDS);
    // The interval takes the rest.
    clock.advance(FLUSH_INTERVAL_MS);
    await until(() => sink.checkpointLsn === last, 'the interval flush');
    expect(flushes).toEqual([
      [1, LAG_RECORDS],
      [LAG_RECORDS + 1, last],
    ]);
  });

  it('a failed flush: commits past the trigger start no flush until the retry delay ends; then the retry, and at once the lag behind it', async () => {
    const retryDelayMsMax = 1000;
    await using fixture = await lagSink({ flushIntervalMs: 3_600_000, segmentSizeBytesMax: LAG_TRIGGER_BYTES, retryDelayMsMin: retryDelayMsMax, retryDelayMsMax });
    const { wal, sink, bfs, clock, flushes } = fixture;
    bfs.inject({ ...BACKUP_DATA_SYNC, error: 'EIO' });
    await appendDurable(wal, LAG_RECORDS, PAYLOAD_BYTES);
    await until(() => sink.stats().flushFailures === 1 && !sink.flushing, 'the failed flush');
    const opens = bfs.counts.open;
    // Two more triggers' worth, in many commits, during the retry delay: no flush may start.
    let last = 0;
    for (let i = 0; i < 2 * LAG_RECORDS; i += FEW_RECORDS) last = await appendDurable(wal, FEW_RECORDS, PAYLOAD_BYTES);
    await turns(QUIET_TURNS);
    expect(bfs.counts.open).toBe(opens);
    expect(sink.stats()).toMatchObject({ flushes: 0, flushFailures: 1, flushing: false, checkpointLsn: 0 });
    // The delay ends: the retry re-sends its frozen range, and the lag that piled up follows at once.
    clock.advance(retryDelayMsMax);
    await until(() => sink.checkpointLsn === last, 'the retry and the chained flush');
    expect(flushes).toEqual([
      [1, LAG_RECORDS],
      [LAG_RECORDS + 1, last],
    ]);
    expect(clock.nowMs()).toBe(retryDelayMsMax);
  });
});

describe('flushLagBytes option', () => {
  const wal = { append: () => 0 } as unknown as Wal;

  it('defaults to 256 KiB on a directory and 8 MiB on S3 (a flush there is two priced PUTs); an explicit value wins; out of range is a RangeError', () => {
    expect(backupDefaults({ wal, dir: '/bk' }).flushLagBytes).toBe(FLUSH_LAG_BYTES_DEFAULT);
    expect(FLUSH_LAG_BYTES_DEFAULT).toBe(256 * 1024);
    expect(backupDefaults({ wal, target: { s3: { bucket: 'backups', prefix: 'node-1', credentials: { accessKeyId: 'id', secretAccessKey: 'secret' } } } }).flushLagBytes).toBe(FLUSH_LAG_BYTES_DEFAULT_S3);
    expect(FLUSH_LAG_BYTES_DEFAULT_S3).toBe(8 * 1024 * 1024);
    expect(backupDefaults({ wal, target: { s3: { bucket: 'backups', prefix: 'node-1', credentials: { accessKeyId: 'id', secretAccessKey: 'secret' } } }, flushLagBytes: 4096 }).flushLagBytes).toBe(4096);
    expect(() => backupDefaults({ wal, dir: '/bk', flushLagBytes: FLUSH_LAG_BYTES_MIN - 1 })).toThrow(RangeError);
    expect(() => backupDefaults({ wal, dir: '/bk', flushLagBytes: FLUSH_LAG_BYTES_MIN + 0.5 })).toThrow(RangeError);
  });
});

describe('a flush that succeeds during a retry delay re-arms the triggers (review of the lag trigger)', () => {
  // The triggers hold off while a retry timer is pending; before the fix a success (forceFlush, resume)
  // left that timer in place, so a healthy sink ignored its lag for up to retryDelayMsMax.
  const lagTriggerBytes = 4096;
  const payloadBytes = 50;
  const lagRecords = 200;
  const retryDelayMsMax = 600_000;

  it('after a forceFlush succeeds, lag past the trigger starts a flush without the clock moving', async () => {
    const clock = new ManualTimersClock();
    await using fixture = await sinkFixture({ clock, flushIntervalMs: 3_600_000, segmentSizeBytesMax: lagTriggerBytes, retryDelayMsMin: retryDelayMsMax, retryDelayMsMax });
    const { wal, sink, bfs } = fixture;
    bfs.inject({ ...BACKUP_DATA_SYNC, error: 'EIO' }); // one failure, then the target is healthy
    await appendDurable(wal, lagRecords, payloadBytes);
    await until(() => sink.stats().flushFailures === 1 && !sink.flushing, 'the failed flush');
    expect((await sink.forceFlush()).checkpointLsn).toBe(lagRecords);
    const last = await appendDurable(wal, 2 * lagRecords, payloadBytes);
    await until(() => sink.checkpointLsn === last, 'the lag trigger flushes with the clock standing still');
  });

  it('after resume(), lag past the trigger starts a flush without the clock moving', async () => {
    const clock = new ManualTimersClock();
    await using fixture = await sinkFixture({ clock, flushIntervalMs: 3_600_000, segmentSizeBytesMax: lagTriggerBytes, retryDelayMsMin: retryDelayMsMax, retryDelayMsMax });
    const { wal, sink, bfs } = fixture;
    bfs.inject({ ...BACKUP_DATA_SYNC, error: 'EIO' });
    await appendDurable(wal, lagRecords, payloadBytes);
    await until(() => sink.stats().flushFailures === 1 && !sink.flushing, 'the failed flush');
    sink.resume();
    await until(() => sink.checkpointLsn === lagRecords, 'the resumed flush');
    const last = await appendDurable(wal, 2 * lagRecords, payloadBytes);
    await until(() => sink.checkpointLsn === last, 'the lag trigger flushes with the clock standing still');
  });
});
