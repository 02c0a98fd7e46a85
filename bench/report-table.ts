/**
 * The report as a person reads it in a terminal: one table per section, every figure with its baseline
 * and the ratio, then the targets. Pure: report in, text out.
 */
import type { DevicePatternResult } from './device-latency.js';
import { formatBytes, formatCount, formatMbPerSec, formatMs, formatRate, formatRatio, formatUs, ratioOf } from './format.js';
import type { LatencySummary } from './latency.js';
import type { BenchReport, EnginePutRow, PeerRow, PeerSection, RawCeilingRow, RecoveryRow, S3BackupSection, WalRow } from './report.js';
import { ENGINE_PUTS_TARGET_RATIOS, type TargetResult } from './targets.js';
import { figureColumn, renderTable, textColumn, type Column } from './text-table.js';

export const reportTitle = 'flushpoint bench';

function heading(text: string): string {
  return `\n${text}\n${'='.repeat(text.length)}`;
}

function latencyColumns<Row>(prefix: string, of: (row: Row) => LatencySummary): Column<Row>[] {
  return [
    figureColumn(`${prefix}p50`, (r) => formatUs(of(r).p50Us)),
    figureColumn(`${prefix}p90`, (r) => formatUs(of(r).p90Us)),
    figureColumn(`${prefix}p99`, (r) => formatUs(of(r).p99Us)),
    figureColumn(`${prefix}p99.9`, (r) => formatUs(of(r).p999Us)),
    figureColumn(`${prefix}max`, (r) => formatUs(of(r).maxUs)),
  ];
}

const sizeColumn = <Row extends { recordSizeBytes: number }>(): Column<Row> => textColumn('record', (r) => formatBytes(r.recordSizeBytes));

function header(report: BenchReport): string {
  const env = report.environment;
  const info = report.device.info;
  return [
    `${reportTitle} (${report.profile} run, ${report.startedAt}, took ${formatMs(report.durationMs)})`,
    `flushpoint ${env.flushpointVersion}, node ${env.node}, ${env.platform} ${env.kernel} ${env.arch}, ${env.cpusCount} x ${env.cpuModel}, ${formatBytes(env.memoryBytes)} RAM`,
    `data: ${info.dir}`,
    `file system: ${info.fileSystem} on ${info.mountSource} (mounted at ${info.mountPoint}, ${info.mountOptions})`,
    `block device: ${info.blockDevice}, write cache: ${info.writeCache}` +
      (info.rotational === undefined ? '' : `, ${info.rotational ? 'rotational' : 'non-rotational'} (as the device reports)`) +
      (info.model ? `, model ${info.model}` : ''),
    `machine load: others used ${Number.isFinite(report.machineLoad.othersCpuFraction) ? `${(report.machineLoad.othersCpuFraction * 100).toFixed(0)}%` : 'an unknown share'} of the CPUs during the run`,
    ...report.machineLoad.warnings.map((w) => `WARNING: ${w}`),
  ].join('\n');
}

function deviceSection(report: BenchReport): string {
  const { overwrite, appendGrow, warnings } = report.device;
  const table = renderTable<DevicePatternResult>(
    [
      textColumn('4 KiB write + fdatasync', (r) => r.pattern),
      figureColumn('ops/s', (r) => formatRate(r.opsPerSec)),
      ...latencyColumns<DevicePatternResult>('', (r) => r.latency),
      figureColumn('ops/s vs overwrite', (r) => formatRatio(r.opsPerSec / overwrite.opsPerSec)),
    ],
    [overwrite, appendGrow],
  );
  const warningLines = warnings.map((w) => `WARNING: ${w}`);
  return [heading('1. Device: writeSync + fdatasyncSync of 4 KiB (baseline: overwrite of a preallocated file)'), table, ...warningLines].join('\n');
}

function rawSection(report: BenchReport): string {
  const table = renderTable<RawCeilingRow>(
    [
      sizeColumn(),
      figureColumn('batch', (r) => String(r.batchRecordsCount)),
      figureColumn('records/s', (r) => formatRate(r.recordsPerSec)),
      figureColumn('batches/s', (r) => formatRate(r.batchesPerSec)),
      figureColumn('batch p50', (r) => formatUs(r.batchLatency.p50Us)),
      figureColumn('batch p99', (r) => formatUs(r.batchLatency.p99Us)),
      figureColumn('vs batch 1', (r) => formatRatio(r.ratioToBatch1)),
    ],
    report.rawCeiling,
  );
  return [heading('2. Raw group-commit ceiling: one writevSync + fdatasyncSync per batch, preallocated file'), table].join('\n');
}

function walSection(report: BenchReport): string {
  const blankIfNaN = (value: number, format: (v: number) => string): string => (Number.isFinite(value) ? format(value) : '');
  const throughput = renderTable<WalRow>(
    [
      sizeColumn(),
      figureColumn('writers', (r) => String(r.writersCount)),
      figureColumn('appends/s', (r) => formatRate(r.opsPerSec)),
      figureColumn('syncs/rec', (r) => r.syncsPerRecord.toFixed(3)),
      figureColumn('raw @batch=writers', (r) => formatRate(r.paired.rawRecordsPerSec)),
      figureColumn('vs raw', (r) => formatRatio(r.ratioToRawCeiling)),
      figureColumn('ack ceiling', (r) => formatRate(r.loopCeilingOpsPerSec)),
      figureColumn('vs ceiling', (r) => formatRatio(r.ratioToLoopCeiling)),
      figureColumn('device ovw/s', (r) => formatRate(r.paired.deviceOpsPerSec)),
      figureColumn('vs device', (r) => blankIfNaN(r.ratioToDevice, formatRatio)),
    ],
    report.wal,
  );
  const latency = renderTable<WalRow>(
    [
      sizeColumn(),
      figureColumn('writers', (r) => String(r.writersCount)),
      ...latencyColumns<WalRow>('ack ', (r) => r.ackLatency),
      figureColumn('device p99', (r) => formatUs(r.paired.deviceP99Us)),
      figureColumn('ack p99 vs device p99', (r) => formatRatio(r.p99RatioToDevice)),
    ],
    report.wal,
  );
  const loop = renderTable<WalRow>(
    [
      sizeColumn(),
      figureColumn('writers', (r) => String(r.writersCount)),
      figureColumn('loop busy us/rec', (r) => blankIfNaN(r.loopBusyUsPerRecord, (v) => v.toFixed(2))),
      figureColumn('harness alone us/rec', (r) => blankIfNaN(r.loopCeilingBusyUsPerRecord, (v) => v.toFixed(2))),
      figureColumn('WAL us/rec', (r) => blankIfNaN(r.loopBusyUsPerRecord - r.loopCeilingBusyUsPerRecord, (v) => v.toFixed(2))),
      figureColumn('loop busy', (r) => blankIfNaN(r.loopUtilization, (v) => `${(v * 100).toFixed(0)}%`)),
    ],
    report.wal,
  );
  const optIn = (rows: readonly WalRow[]): string => renderTable<WalRow>(
    [
      sizeColumn(),
      figureColumn('writers', (r) => String(r.writersCount)),
      figureColumn('appends/s', (r) => formatRate(r.opsPerSec)),
      figureColumn('ack p50', (r) => formatUs(r.ackLatency.p50Us)),
      figureColumn('ack p99', (r) => formatUs(r.ackLatency.p99Us)),
      figureColumn('device ovw/s', (r) => formatRate(r.paired.deviceOpsPerSec)),
      figureColumn('raw @batch=1', (r) => blankIfNaN(r.paired.rawRecordsPerSec, formatRate)),
      figureColumn('device p50', (r) => formatUs(r.paired.deviceP50Us)),
      figureColumn('vs device', (r) => blankIfNaN(r.ratioToDevice, formatRatio)),
      figureColumn('loop busy', (r) => blankIfNaN(r.loopUtilization, (v) => `${(v * 100).toFixed(0)}%`)),
    ],
    rows,
  );
  const truncating = renderTable<WalRow>(
    [
      sizeColumn(),
      figureColumn('writers', (r) => String(r.writersCount)),
      figureColumn('appends/s', (r) => formatRate(r.opsPerSec)),
      figureColumn('raw at batch', (r) => formatRate(r.paired.rawRecordsPerSec)),
      figureColumn('vs raw', (r) => formatRatio(r.ratioToRawCeiling)),
      figureColumn('ack p99', (r) => formatUs(r.ackLatency.p99Us)),
      figureColumn('segments (recycled)', (r) => `${r.segmentsStarted} (${r.segmentsRecycled})`),
    ],
    report.walTruncating,
  );
  return [
    heading('3. flushpoint WAL: closed-loop writers, append() + await waitDurable()'),
    'baselines, measured in slices right before and right after each row: raw ceiling (as in section 2) at',
    'batch = writers, and device = 4 KiB overwrite + fdatasync ("vs device" for 1 writer only, against the',
    'faster of device and raw @batch=1: both are the disk\'s write + fdatasync, and one slow slice misleads);',
    'ack ceiling = the same closed-loop harness on a store with no I/O (the event loop\'s limit)',
    '',
    throughput,
    '',
    latency,
    '',
    "where the loop's time goes: event-loop busy time (eventLoopUtilization) per record acknowledged, the",
    'harness alone (ack ceiling run) and the WAL\'s share; loop busy = the fraction of the window the loop',
    'was not waiting for I/O (near 100%: the loop is the limit, not the disk, or it polled for its commits:',
    "the default commitWait 'auto' polls while the log is busy, so these rows count the polling; the 'sleep'",
    "row below shows the loop's own share); on a busy machine it also counts time the thread waited for a CPU",
    loop,
    ...(report.walInline.length === 0
      ? []
      : ['', "syncMode 'inline' (opt-in: each commit's writev + fdatasync block the event loop), with its own baselines", optIn(report.walInline)]),
    ...(report.walSleep.length === 0
      ? []
      : ['', "commitWait 'sleep' (opt-in: the loop and the commit thread sleep until woken, two thread wake-ups per commit; the default 'auto' polls while the log is busy, a CPU kept busy then), own baselines", optIn(report.walSleep)]),
    ...(report.walTruncating.length === 0
      ? []
      : [
          '',
          'truncated behind the writers, as an engine uses its log: truncateBefore(durable LSN) after each segment of',
          'bytes appended (from the third segment on, so freed segments are recycled: recycleSegments; a window long',
          'enough for segments to roll in it), own baselines;',
          'segments = started in the window, (recycled) = of them written over a freed segment instead of zero-filled',
          truncating,
        ]),
  ].join('\n');
}

function peerSection(report: BenchReport): string {
  const nameOf = (peer: PeerSection): string => `${peer.id}${peer.version ? ` ${peer.version}` : ''}`;
  const rows = report.peers.flatMap((peer) => peer.rows.map((row) => ({ name: nameOf(peer), ...row })));
  const table = renderTable<PeerRow & { name: string }>(
    [
      textColumn('peer', (r) => r.name),
      sizeColumn(),
      figureColumn('writers', (r) => String(r.writersCount)),
      figureColumn('durable ops/s', (r) => formatRate(r.opsPerSec)),
      figureColumn('ack p50', (r) => formatUs(r.ackLatency.p50Us)),
      figureColumn('ack p99', (r) => formatUs(r.ackLatency.p99Us)),
      figureColumn('flushpoint/s', (r) => formatRate(r.flushpointOpsPerSec)),
      figureColumn('flushpoint/peer', (r) => formatRatio(r.flushpointOverPeer)),
    ],
    rows,
  );
  const settings = report.peers.map((peer) => `  ${peer.id}: ${peer.durableSetting}`);
  const notes = report.peers.filter((peer) => peer.status !== 'ok').map((peer) => `${nameOf(peer)}: ${peer.status} (${peer.reason ?? 'no reason given'})`);
  return [
    heading('4. Peers at their documented durable settings'),
    'baseline for flushpoint/peer: flushpoint at the same record size and writers, measured just before the peers',
    table,
    'settings:',
    ...settings,
    ...notes,
  ].join('\n');
}

function recoverySection(report: BenchReport): string {
  const table = renderTable<RecoveryRow>(
    [
      textColumn('WAL size', (r) => formatBytes(r.walSizeBytes)),
      sizeColumn(),
      figureColumn('records', (r) => formatCount(r.recordsCount)),
      figureColumn('segments', (r) => String(r.segmentsCount)),
      figureColumn('Wal.open', (r) => formatMs(r.openMs)),
      figureColumn('of it scan', (r) => formatMs(r.scanMs)),
      figureColumn('MB/s', (r) => formatMbPerSec(r.mbPerSec)),
      figureColumn('raw read MB/s', (r) => formatMbPerSec(r.rawReadMbPerSec)),
      figureColumn('vs raw read', (r) => formatRatio(r.ratioToRawRead)),
    ],
    report.recovery,
  );
  return [
    heading('5. Recovery: Wal.open of a full WAL, page cache warm (median of the opens)'),
    'MB/s = log bytes (records with framing) / Wal.open time; baseline: plain sequential reads of the same files',
    table,
  ].join('\n');
}

interface BackupLine {
  measure: string;
  figure: string;
  baseline: string;
  ratio: string;
}

/** A table of single measures, each with its baseline from the same run and the ratio. */
function measureTable(lines: BackupLine[]): string {
  return renderTable<BackupLine>(
    [
      textColumn('measure', (l) => l.measure),
      figureColumn('figure', (l) => l.figure),
      textColumn('baseline (same run)', (l) => l.baseline),
      figureColumn('ratio', (l) => l.ratio),
    ],
    lines,
  );
}

const p50p99 = (x: { p50Us: number; p99Us: number }): string => `${formatUs(x.p50Us)} / ${formatUs(x.p99Us)}`;

function backupSection(report: BenchReport): string {
  const b = report.backup;
  if (b.status !== 'ok') return [heading('6. Backup sink and forceFlush'), `not measured: ${b.reason}`].join('\n');
  const lines: BackupLine[] = [
    {
      measure: 'WAL appends/s, sink running + forceFlush every 100 ms',
      figure: formatRate(b.walWithSinkOpsPerSec),
      baseline: `WAL alone ${formatRate(b.walAloneOpsPerSec)}`,
      ratio: formatRatio(b.withSinkRatio),
    },
    {
      measure: 'backup throughput while the WAL takes load',
      figure: formatMbPerSec(b.backupMBPerSec),
      baseline: `WAL log bytes ${formatMbPerSec(b.walLogMBPerSec)}`,
      ratio: formatRatio(b.backupMBPerSec / b.walLogMBPerSec),
    },
    { measure: 'checkpoint lag, records p50 / p99', figure: `${formatCount(b.checkpointLagRecords.p50Us)} / ${formatCount(b.checkpointLagRecords.p99Us)}`, baseline: '', ratio: '' },
    { measure: 'checkpoint lag, age of oldest p50 / p99', figure: p50p99(b.checkpointLagAgeUs), baseline: '', ratio: '' },
    {
      measure: `forceFlush when idle (${formatCount(b.forceFlushRecordsCount)} records), p50 / p99`,
      figure: p50p99(b.forceFlushIdleUs),
      baseline: `direct publish ${p50p99(b.directPublishUs)}`,
      ratio: formatRatio(b.idleRatio),
    },
    {
      measure: 'forceFlush with a flush in flight, p50 / p99',
      figure: p50p99(b.forceFlushInFlightUs),
      baseline: `idle forceFlush ${formatUs(b.forceFlushIdleUs.p50Us)}`,
      ratio: formatRatio(b.forceFlushInFlightUs.p50Us / b.forceFlushIdleUs.p50Us),
    },
    { measure: `flushes run for ${formatCount(b.concurrentCalls)} concurrent forceFlush calls`, figure: String(b.flushesForConcurrentCalls), baseline: 'at most 2', ratio: '' },
  ];
  const table = measureTable(lines);
  return [
    heading('6. Backup sink and forceFlush'),
    `${b.writersCount} closed-loop writers x ${formatBytes(b.recordSizeBytes)} records on the WAL; the sink's directory on the same disk;`,
    'direct publish = the same bytes written as one backup file + checkpoint (temp, fdatasync, rename, fsync dir) with no sink',
    table,
  ].join('\n');
}

/** Section 8 (also printed alone by bench/s3-backup.ts): the sink to S3, each figure beside plain PUTs of the same run. */
export function renderS3BackupSection(s: S3BackupSection): string {
  const title = heading('8. Backup to S3 (run when --endpoint is given)');
  if (s.status !== 'ok') return [title, `not measured: ${s.reason}`].join('\n');
  const st = s.idleStagesP50Ms;
  const table = measureTable([
    {
      measure: 'backup throughput while the WAL takes load',
      figure: formatMbPerSec(s.backupMBPerSec),
      baseline: `WAL log bytes ${formatMbPerSec(s.walLogMBPerSec)}`,
      ratio: formatRatio(s.backupMBPerSec / s.walLogMBPerSec),
    },
    {
      measure: `forceFlush when idle (${formatBytes(s.flushBytes)}), p50 / p99`,
      figure: p50p99(s.forceFlushIdleUs),
      baseline: `one plain PUT ${p50p99(s.plainPutUs)}`,
      ratio: `${formatRatio(s.idleRatio)} / ${formatRatio(s.idleRatioP99)}`,
    },
    {
      measure: 'forceFlush with an upload in flight, p50 / p99',
      figure: p50p99(s.forceFlushInFlightUs),
      baseline: `two plain PUTs ${p50p99(s.twoPutsUs)}`,
      ratio: `${formatRatio(s.inFlightRatio)} / ${formatRatio(s.inFlightRatioP99)}`,
    },
    { measure: '  the same, beside one plain PUT (p50)', figure: formatUs(s.forceFlushInFlightUs.p50Us), baseline: 'one plain PUT', ratio: formatRatio(s.inFlightRatioToOnePut) },
  ]);
  return [
    title,
    `${s.writersCount} closed-loop writers x ${formatBytes(s.recordSizeBytes)} records on the WAL; backup to ${s.endpoint}, s3://${s.bucket}${s.prefix ? `/${s.prefix}` : ''};`,
    'plain PUT = a bare PutObject of as many bytes (no condition, no Content-MD5) on the same client, alternating with the forceFlush samples;',
    `idle forceFlush stages p50: WAL read ${formatMs(st.readMs)}, data PUT ${formatMs(st.writeMs)}, checkpoint PUT (an inline flush's only PUT, data included) ${formatMs(st.checkpointMs)}`,
    table,
  ].join('\n');
}

/** A line of the engine's puts table: a measured row, or its syncMode 'inline' or commitWait 'sleep' twin (same peers). */
interface EnginePutLine {
  row: EnginePutRow;
  mode: 'default' | 'inline' | 'sleep';
  opsPerSec: number;
  walAloneOpsPerSec: number;
  ratioToWalAlone: number;
  rawCeilingOpsPerSec: number;
}

function enginePutLines(puts: readonly EnginePutRow[]): EnginePutLine[] {
  return puts.flatMap((row): EnginePutLine[] => [
    { row, mode: 'default', opsPerSec: row.opsPerSec, walAloneOpsPerSec: row.walAloneOpsPerSec, ratioToWalAlone: row.ratioToWalAlone, rawCeilingOpsPerSec: row.rawCeilingOpsPerSec },
    ...(row.inline ? [{ row, mode: 'inline' as const, ...row.inline }] : []),
    ...(row.sleep ? [{ row, mode: 'sleep' as const, ...row.sleep }] : []),
  ]);
}

function engineSection(report: BenchReport): string {
  const { puts, reads, checkpoint } = report.engine;
  const peerIds = [...new Set(puts.flatMap((r) => r.peers.map((p) => p.id)))];
  // The judged (default) rows with a target: what it needs, and whether the raw ceiling leaves room for it.
  const targetRatioOf = (l: EnginePutLine): number => (l.mode === 'default' ? (ENGINE_PUTS_TARGET_RATIOS.find(([w]) => w === l.row.writersCount)?.[1] ?? Number.NaN) : Number.NaN);
  const neededOf = (l: EnginePutLine): number => targetRatioOf(l) * l.row.bestPeerOpsPerSec;
  const putsTable = renderTable<EnginePutLine>(
    [
      textColumn('record', (l) => formatBytes(l.row.recordSizeBytes)),
      textColumn('writers', (l) => (l.mode === 'inline' ? `${l.row.writersCount}, 'inline' (blocks loop)` : l.mode === 'sleep' ? `${l.row.writersCount}, 'sleep' (least CPU)` : String(l.row.writersCount))),
      figureColumn('engine puts', (l) => formatRate(l.opsPerSec)),
      figureColumn('WAL alone', (l) => formatRate(l.walAloneOpsPerSec)),
      figureColumn('vs WAL', (l) => formatRatio(l.ratioToWalAlone)),
      figureColumn('raw @batch=writers', (l) => formatRate(l.rawCeilingOpsPerSec)),
      ...peerIds.map((id) => figureColumn<EnginePutLine>(id, (l) => {
        const peer = l.row.peers.find((p) => p.id === id);
        return peer === undefined ? '' : formatRate(peer.opsPerSec);
      })),
      figureColumn('vs best peer', (l) => formatRatio(ratioOf(l.opsPerSec, l.row.bestPeerOpsPerSec))),
      figureColumn('target needs', (l) => (Number.isFinite(neededOf(l)) ? `${formatRatio(targetRatioOf(l))} peer = ${formatRate(neededOf(l))}` : '')),
      textColumn('reachable (<= raw)', (l) => {
        const needed = neededOf(l);
        if (!Number.isFinite(needed) || !Number.isFinite(l.rawCeilingOpsPerSec)) return '';
        // The raw loop runs in slices just before and after the WAL row: a store above it means the disk moved.
        if (Math.max(l.opsPerSec, l.walAloneOpsPerSec) > l.rawCeilingOpsPerSec) return '? disk moved (a store above raw)';
        return needed <= l.rawCeilingOpsPerSec ? 'yes' : 'no: above raw';
      }),
    ],
    enginePutLines(puts),
  );
  const lines: BackupLine[] = [];
  if (reads.status === 'ok') {
    lines.push(
      { measure: `gets, one at a time (${formatCount(reads.keysCount)} keys, ${formatBytes(reads.valueSizeBytes)} values)`, figure: formatRate(reads.getsPerSec), baseline: `classic-level ${formatRate(reads.classicLevelGetsPerSec)}`, ratio: formatRatio(reads.getsRatio) },
      { measure: 'full iterator scans, entries', figure: formatRate(reads.scanEntriesPerSec), baseline: `classic-level ${formatRate(reads.classicLevelScanEntriesPerSec)}`, ratio: formatRatio(reads.scanRatio) },
    );
  }
  const c = checkpoint;
  lines.push(
    { measure: `checkpoint of ${formatCount(c.keysCount)} keys`, figure: `${formatMs(c.checkpointMs)}, ${formatBytes(c.checkpointBytes)}`, baseline: '', ratio: '' },
    { measure: 'reopen from the checkpoint, keys', figure: `${formatRate(c.reopenKeysPerSec)} (${formatMs(c.reopenMs)})`, baseline: `index inserts ${formatRate(c.indexInsertKeysPerSec)}`, ratio: formatRatio(c.reopenRatio) },
    { measure: 'reopen from the WAL alone (replay), keys', figure: `${formatRate(c.walReplayKeysPerSec)} (${formatMs(c.walReplayMs)})`, baseline: `index inserts ${formatRate(c.indexInsertKeysPerSec)}`, ratio: formatRatio(c.walReplayRatio) },
    { measure: 'memory per key (8 B key, 16 B value)', figure: Number.isFinite(c.memoryBytesPerKey) ? formatBytes(c.memoryBytesPerKey) : 'gc() unavailable', baseline: '', ratio: '' },
  );
  const table = measureTable(lines);
  return [
    heading('7. Engine: durable puts, gets and scans, checkpoint and reopen'),
    'closed-loop db.put() under fresh keys, measured between the WAL alone (section 3: append + waitDurable of the',
    'same payload, right before) and the peers (section 4, right after) at the same record size and writers;',
    'raw @batch=writers: one writevSync of that many records + one fdatasyncSync (paired with the WAL row): no store',
    'commits more records per sync with that many closed-loop writers, so a target above it is out of reach on this disk;',
    "the syncMode 'inline' line is reported beside the peers (better-sqlite3 blocks the loop too), not judged;",
    "so is the commitWait 'sleep' line (no polling while the log is busy: the least CPU, two thread wake-ups per commit)",
    putsTable,
    '',
    table,
    ...(reads.status === 'ok' ? [] : [`gets and scans not measured: ${reads.reason}`]),
  ].join('\n');
}

function formatTargetFigure(t: TargetResult, value: number): string {
  if (t.valueLabel === 'flushes') return String(value);
  return t.valueLabel.endsWith('us') ? formatUs(value) : t.valueLabel.endsWith('MB/s') ? formatMbPerSec(value) : formatRate(value);
}

function targetSection(report: BenchReport): string {
  const table = renderTable<TargetResult>(
    [
      textColumn('target', (t) => t.description),
      figureColumn('figure', (t) => formatTargetFigure(t, t.value)),
      figureColumn('baseline', (t) => formatTargetFigure(t, t.baseline)),
      figureColumn('ratio', (t) => formatRatio(t.ratio)),
      figureColumn('needed', (t) => `${t.comparison} ${formatRatio(t.threshold)}`),
      textColumn('status', (t) => t.status),
    ],
    report.targets,
  );
  const counts = (['met', 'missed', 'not-measured'] as const).map((s) => `${report.targets.filter((t) => t.status === s).length} ${s}`).join(', ');
  return [heading('Targets (issue 12: the WAL; 10: the engine; 4 and 13: the backup)'), table, counts].join('\n');
}

export function renderReportTable(report: BenchReport): string {
  const sections = [header, deviceSection, rawSection, walSection, peerSection, recoverySection, backupSection, engineSection, (r: BenchReport) => renderS3BackupSection(r.s3Backup), targetSection];
  return sections.map((section) => section(report)).join('\n') + '\n';
}
