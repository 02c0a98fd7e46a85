/**
 * Smoke test of `flushpoint bench`: the whole command at toy sizes (--tiny), checking the report's
 * shape (table sections, JSON keys, a well-formed SVG) and the run's hygiene (its data directory is
 * gone afterwards), never its figures. Plus the small pure pieces the report is built from.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClosedLoop } from '../bench/closed-loop.js';
import { main } from '../cli/main.js';
import type { CliIo } from '../cli/subcommand.js';
import { cdf, LatencyRecorder, percentile, summarize } from '../bench/latency.js';
import { loadPeers, measurePeerRow } from '../bench/peer-runner.js';
import type { Peer } from '../bench/peers/peer.js';
import { profiles } from '../bench/profile.js';
import { silentProgress } from '../core/progress.js';
import { SyncLoop, yieldEveryUs } from '../bench/sync-loop.js';
import { createScratchDir } from '../bench/scratch-dir.js';
import { findMount, parseMounts } from '../bench/device-probe.js';
import { figureColumn, renderTable, textColumn } from '../bench/text-table.js';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
}

function capture(cwd: string): Captured {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: { write: (text) => ((out += text), true) },
    stderr: { write: (text) => ((err += text), true) },
    cwd,
    env: {},
  };
  return { io, stdout: () => out, stderr: () => err };
}

/** Checks that `text` is well-formed XML as far as an SVG needs: balanced tags, quoted attributes, escaped text. */
function assertWellFormedXml(text: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let at = 0;
  for (let m = tag.exec(text); m !== null; m = tag.exec(text)) {
    const between = text.slice(at, m.index);
    expect(between, `stray markup before offset ${m.index}`).not.toMatch(/[<>]/);
    expect(between, `unescaped & before offset ${m.index}`).not.toMatch(/&(?!(amp|lt|gt|quot|apos|#\d+);)/);
    at = m.index + m[0].length;
    const [, closing, name, , selfClosing] = m;
    if (selfClosing) continue;
    if (closing) expect(stack.pop(), `closing </${name}> at ${m.index}`).toBe(name);
    else stack.push(name!);
  }
  expect(text.slice(at).trim()).toBe('');
  expect(stack).toEqual([]);
}

describe('flushpoint bench --tiny', () => {
  let tmp: string;
  let result: { code: number; stdout: string; stderr: string };
  const jsonFile = 'out/report.json';
  const svgFile = 'out/report.svg';

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flushpoint-bench-smoke-'));
    const { io, stdout, stderr } = capture(tmp);
    const code = await main(['bench', '--tiny', '--dir', 'data/bench', '--json', jsonFile, '--svg', svgFile], io);
    result = { code, stdout: stdout(), stderr: stderr() };
  }, 55_000);

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('exits 0 and prints every section of the table, baselines and ratios beside the figures', () => {
    expect(result.stderr).toBe(''); // not a TTY: no progress bar
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out.startsWith('flushpoint bench (tiny run')).toBe(true);
    for (const section of ['1. Device', '2. Raw group-commit ceiling', '3. flushpoint WAL', '4. Peers', '5. Recovery', '6. Backup sink', '7. Engine', '8. Backup to S3', 'Targets (issue 12: the WAL; 10: the engine; 4 and 13: the backup)']) {
      expect(out).toContain(`\n${section}`);
    }
    expect(out).toMatch(/^8\. Backup to S3 .*\n=+\nnot measured: no --endpoint given/m);
    expect(out).toMatch(/^4 KiB write \+ fdatasync +ops\/s +p50 +p90 +p99 +p99\.9 +max +ops\/s vs overwrite$/m);
    expect(out).toMatch(/^record +writers +appends\/s +syncs\/rec +raw @batch=writers +vs raw +ack ceiling +vs ceiling +device ovw\/s +vs device$/m);
    expect(out).toMatch(/^record +writers +ack p50 +ack p90 +ack p99 +ack p99\.9 +ack max +device p99 +ack p99 vs device p99$/m);
    expect(out).toMatch(/^record +writers +appends\/s +ack p50 +ack p99 +device ovw\/s +raw @batch=1 +device p50 +vs device +loop busy$/m);
    expect(out).toMatch(/^record +writers +loop busy us\/rec +harness alone us\/rec +WAL us\/rec +loop busy$/m);
    expect(out).toMatch(/^WAL size +record +records +segments +Wal\.open +of it scan +MB\/s +raw read MB\/s +vs raw read$/m);
    expect(out).toMatch(/^peer +record +writers +durable ops\/s +ack p50 +ack p99 +flushpoint\/s +flushpoint\/peer$/m);
    expect(out).toMatch(/^target +figure +baseline +ratio +needed +status$/m);
    expect(out).toMatch(/^measure +figure +baseline \(same run\) +ratio$/m);
    expect(out).toMatch(/^record +writers +engine puts +WAL alone +vs WAL +raw @batch=writers +lmdb +better-sqlite3 +better-sqlite3-batched +classic-level +vs best peer +target needs +reachable \(<= raw\)$/m);
    // The engine's syncMode 'inline' twin of the 1-writer row (section 3 measures 1 writer inline too).
    expect(out).toMatch(/^128 B +1, 'inline' \(blocks loop\) +[\d,]+\/s/m);
    // And its commitWait 'sleep' twin.
    expect(out).toMatch(/^128 B +1, 'sleep' \(least CPU\) +[\d,]+\/s/m);
    expect(out).toMatch(/^gets, one at a time .* classic-level [\d,]+\/s +[\d.]+x$/m);
    expect(out).toMatch(/^reopen from the checkpoint, keys .* index inserts [\d,]+\/s +[\d.]+x$/m);
  });

  it('writes the JSON report with every section, the environment and the baselines', () => {
    const report = JSON.parse(fs.readFileSync(path.join(tmp, jsonFile), 'utf8')) as Record<string, any>;
    expect(Object.keys(report).sort()).toEqual(
      ['backup', 'device', 'durationMs', 'engine', 'environment', 'peers', 'profile', 'rawCeiling', 'recovery', 's3Backup', 'schemaVersion', 'startedAt', 'targets', 'tool', 'wal', 'walInline', 'walSleep', 'walTruncating', 'machineLoad'].sort(),
    );
    expect(report.profile).toBe('tiny');
    expect(Object.keys(report.environment)).toEqual(expect.arrayContaining(['node', 'kernel', 'cpuModel', 'cpusCount', 'memoryBytes']));
    expect(Object.keys(report.device.info)).toEqual(expect.arrayContaining(['fileSystem', 'blockDevice', 'writeCache', 'mountPoint']));
    for (const pattern of [report.device.overwrite, report.device.appendGrow]) {
      expect(Object.keys(pattern.latency).sort()).toEqual(['count', 'maxUs', 'meanUs', 'p50Us', 'p90Us', 'p999Us', 'p99Us']);
      expect(pattern.opsPerSec).toBeGreaterThan(0);
    }
    expect(report.rawCeiling.map((r: any) => r.batchRecordsCount)).toEqual([...profiles.tiny.rawBatchRecordsCounts]);
    expect(report.wal.map((r: any) => r.writersCount)).toEqual([...profiles.tiny.walWritersCounts[128]!]);
    for (const row of report.wal) {
      expect(Object.keys(row)).toEqual(expect.arrayContaining(['opsPerSec', 'ackLatency', 'cdf', 'syncsPerRecord', 'ratioToRawCeiling', 'p99RatioToDevice', 'paired', 'loopCeilingOpsPerSec', 'ratioToLoopCeiling', 'loopBusyUsPerRecord', 'loopCeilingBusyUsPerRecord', 'loopUtilization']));
      expect(row.opsCount).toEqual(expect.any(Number)); // a figure, not a judgement: a stalled disk may ack nothing in a tiny window
    }
    expect(Object.keys(report.wal[0].paired).sort()).toEqual(['deviceOpsPerSec', 'deviceP50Us', 'deviceP99Us', 'rawRecordsPerSec']);
    expect(report.wal[0].ratioToDevice).toEqual(expect.any(Number)); // 1 writer has the device baseline
    expect(report.wal[1].ratioToDevice).toBeNull(); // other writer counts do not
    expect(report.peers.map((p: any) => p.id)).toEqual(['lmdb', 'better-sqlite3', 'better-sqlite3-batched', 'classic-level']);
    for (const peer of report.peers) {
      expect(['ok', 'skipped', 'failed']).toContain(peer.status);
      if (peer.status === 'ok') expect(peer.rows[0]).toEqual(expect.objectContaining({ flushpointOverPeer: expect.any(Number) }));
      else expect(peer.reason).toEqual(expect.any(String));
    }
    expect(report.recovery[0]).toEqual(
      expect.objectContaining({ dataBytes: expect.any(Number), openMs: expect.any(Number), scanMs: expect.any(Number), mbPerSec: expect.any(Number), rawReadMbPerSec: expect.any(Number) }),
    );
    expect(report.machineLoad).toEqual(expect.objectContaining({ loadAverage1mStart: expect.any(Number), warnings: expect.any(Array) }));
    expect(report.backup).toEqual(
      expect.objectContaining({
        status: 'ok',
        walAloneOpsPerSec: expect.any(Number),
        walWithSinkOpsPerSec: expect.any(Number),
        withSinkRatio: expect.any(Number),
        backupMBPerSec: expect.any(Number),
        idleRatio: expect.any(Number),
        flushesForConcurrentCalls: expect.any(Number),
        forceFlushIdleUs: expect.objectContaining({ p50Us: expect.any(Number) }),
        directPublishUs: expect.objectContaining({ p50Us: expect.any(Number) }),
      }),
    );
    expect(Object.keys(report.engine).sort()).toEqual(['checkpoint', 'puts', 'reads']);
    expect(report.engine.puts.map((r: any) => [r.recordSizeBytes, r.writersCount])).toEqual([[128, 1], [128, 4]]);
    expect(report.engine.puts[0].inline).toEqual(expect.objectContaining({ opsPerSec: expect.any(Number), walAloneOpsPerSec: expect.any(Number), ratioToWalAlone: expect.any(Number) }));
    expect(report.engine.puts[0].sleep).toEqual(expect.objectContaining({ opsPerSec: expect.any(Number), walAloneOpsPerSec: expect.any(Number), ratioToWalAlone: expect.any(Number) }));
    for (const row of report.engine.puts) {
      expect(row).toEqual(expect.objectContaining({ opsPerSec: expect.any(Number), walAloneOpsPerSec: expect.any(Number), ratioToWalAlone: expect.any(Number), rawCeilingOpsPerSec: expect.any(Number), peers: expect.any(Array) }));
      // The baseline is the fastest peer measured in section 4 at the same size and writers.
      const okPeers = report.peers.filter((p: any) => p.status === 'ok').map((p: any) => p.id);
      expect(row.peers.map((p: any) => p.id)).toEqual(okPeers);
      if (okPeers.length > 0) expect(row.bestPeerOpsPerSec).toBe(Math.max(...row.peers.map((p: any) => p.opsPerSec)));
    }
    expect(report.engine.reads).toEqual(expect.objectContaining({ status: 'ok', getsPerSec: expect.any(Number), classicLevelGetsPerSec: expect.any(Number), getsRatio: expect.any(Number), scanRatio: expect.any(Number) }));
    expect(report.engine.checkpoint).toEqual(
      expect.objectContaining({ keysCount: 5000, checkpointMs: expect.any(Number), reopenKeysPerSec: expect.any(Number), indexInsertKeysPerSec: expect.any(Number), reopenRatio: expect.any(Number), walReplayRatio: expect.any(Number) }),
    );
    expect(report.targets.map((t: any) => t.id)).toEqual(
      expect.arrayContaining(['engine-puts-64-vs-best-peer-128', 'engine-puts-1-vs-best-peer-128', 'engine-gets-vs-classic-level', 'engine-reopen-vs-index-insert']),
    );
    expect(report.targets.find((t: any) => t.id === 'engine-puts-64-vs-best-peer-128').status).toBe('not-measured'); // tiny has no 64-writer row
    // 1 writer with syncMode 'inline', beside its own baselines, and its target.
    expect(report.walInline.map((r: any) => [r.writersCount, r.syncMode])).toEqual([[1, 'inline']]);
    expect(report.wal.every((r: any) => r.syncMode === 'worker')).toBe(true);
    expect(report.walInline[0].ratioToDevice).toEqual(expect.any(Number));
    // And with commitWait 'sleep' (reported beside the default 'auto', not judged).
    expect(report.walSleep.map((r: any) => [r.writersCount, r.syncMode, r.commitWait])).toEqual([[1, 'worker', 'sleep']]);
    expect(report.walSleep[0].ratioToDevice).toEqual(expect.any(Number));
    expect(report.targets.filter((t: any) => t.id.includes('sleep') || t.id.includes('poll'))).toEqual([]);
    // The truncating row ran truncated behind its writers: it started segments past its warm-up's three.
    expect(report.walTruncating.map((r: any) => [r.writersCount, r.use])).toEqual([[4, 'truncate']]);
    expect(report.walTruncating[0].segmentsStarted).toEqual(expect.any(Number));
    expect(report.targets.map((t: any) => t.id)).toContain('wal-1-writer-inline-vs-device-128');
    expect(report.targets.map((t: any) => t.id)).toEqual(expect.arrayContaining(['backup-idle-force-flush-vs-direct-publish', 'backup-append-with-sink-vs-alone', 'backup-concurrent-calls-flushes']));
    // Without --endpoint the S3 section says why it did not run, and its targets are not judged.
    expect(report.s3Backup).toEqual({ status: 'not-measured', reason: expect.stringMatching(/^no --endpoint given/) });
    for (const id of ['s3-idle-force-flush-vs-plain-put', 's3-in-flight-force-flush-vs-plain-puts']) expect(report.targets.find((t: any) => t.id === id).status).toBe('not-measured');
    expect(report.targets.length).toBeGreaterThan(0);
    for (const t of report.targets) expect(['met', 'missed', 'not-measured']).toContain(t.status);
  });

  it('writes a well-formed SVG with both charts', () => {
    const svg = fs.readFileSync(path.join(tmp, svgFile), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    assertWellFormedXml(svg);
    expect(svg).toContain('Durable records per second vs concurrent writers');
    expect(svg).toContain('Ack latency CDF');
    expect((svg.match(/<polyline /g) ?? []).length).toBeGreaterThanOrEqual(4);
  });

  it('removes its data directory, and the parents it created', () => {
    expect(fs.existsSync(path.join(tmp, 'data'))).toBe(false);
  });
});

describe('the bench command line', () => {
  it('rejects an unknown command and an unknown option with exit code 2', async () => {
    const unknown = capture(os.tmpdir());
    expect(await main(['frobnicate'], unknown.io)).toBe(2);
    expect(unknown.stderr()).toContain("unknown command 'frobnicate'");
    const badOption = capture(os.tmpdir());
    expect(await main(['bench', '--fast'], badOption.io)).toBe(2);
    expect(badOption.stderr()).toContain('usage: flushpoint bench');
  });

  it('prints help without running anything', async () => {
    const help = capture(os.tmpdir());
    expect(await main(['bench', '--help'], help.io)).toBe(0);
    expect(help.stdout()).toContain('--quick');
    expect(help.stdout()).not.toContain('--tiny');
  });
});

describe('peers that cannot load or fail while running', () => {
  it('are reported as skipped or failed, with the reason, and the run goes on', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flushpoint-bench-peers-'));
    const broken: Peer = { id: 'broken', packageName: 'no-such-package', durableSetting: '-', load: () => import('no-such-package-' + 'x') };
    const failing: Peer = {
      id: 'failing',
      packageName: 'failing',
      durableSetting: '-',
      load: async () => async () => ({ write: async () => Promise.reject(new Error('EIO: disk on fire')), close: async () => {} }),
    };
    let n = 0;
    const working: Peer = {
      id: 'working',
      packageName: 'working',
      durableSetting: '-',
      load: async () => async () => ({ write: () => new Promise((resolve) => setImmediate(() => resolve(n++))), close: async () => {} }),
    };
    try {
      const loaded = await loadPeers([broken, failing, working]);
      const payload = Buffer.alloc(128);
      for (const writersCount of profiles.tiny.peerWritersCounts[128]!) {
        for (const peer of loaded) await measurePeerRow(peer, dir, payload, writersCount, profiles.tiny, silentProgress);
      }
      const results = loaded.map((peer) => peer.result);
      expect(results.map((r) => [r.id, r.status])).toEqual([['broken', 'skipped'], ['failing', 'failed'], ['working', 'ok']]);
      // Not installed: the reason says what to install (an installed flushpoint has no peers by default).
      expect(results[0]!.reason).toMatch(/^not installed; to compare with it, run 'npm install no-such-package'/);
      expect(results[1]!.reason).toBe('EIO: disk on fire');
      expect(results[2]!.measurements.length).toBe(profiles.tiny.peerWritersCounts[128]!.length);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Ctrl-C during a run', () => {
  it('the synchronous measured loops give the event loop a turn while they run, so a signal handler runs at once', async () => {
    let steps = 0;
    const loop = new SyncLoop(() => {
      steps++;
      const until = performance.now() + 0.05;
      while (performance.now() < until) {
        // a step of ~50 us
      }
    });
    let stepsAtTurn = -1;
    setImmediate(() => (stepsAtTurn = steps));
    await loop.runFor(4 * yieldEveryUs);
    expect(stepsAtTurn, 'the event loop had a turn during the run').toBeGreaterThan(0);
    expect(stepsAtTurn, 'the turn came before the run ended').toBeLessThan(steps);
  });

  it('SIGINT stops the command with exit code 130 and removes its data directory', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flushpoint-bench-sigint-'));
    try {
      const child = spawn(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), 'bench', '--tiny', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      // Once the run has made its directory, it is measuring: interrupt it there.
      while (fs.readdirSync(dir).length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(stderr).toMatch(/flushpoint bench: stopped by SIGINT, removed /);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('report building blocks', () => {
  it('percentiles are nearest-rank, and the summary refuses unsorted samples', () => {
    const recorder = new LatencyRecorder();
    for (let i = 100; i >= 1; i--) recorder.add(i);
    const sorted = recorder.sorted();
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99);
    expect(percentile(sorted, 1)).toBe(100);
    expect(summarize(sorted)).toEqual({ count: 100, meanUs: 50.5, p50Us: 50, p90Us: 90, p99Us: 99, p999Us: 100, maxUs: 100 });
    expect(() => summarize(Float64Array.of(2, 1))).toThrow(/not sorted/);
    expect(cdf(sorted).at(-1)).toEqual([100, 1]);
  });

  it('the recorder keeps every sample across its chunks, and sorts them all', () => {
    expect(new LatencyRecorder().sorted()).toEqual(new Float64Array(0));
    for (const n of [1, 65_535, 65_536, 65_537, 150_001]) {
      const recorder = new LatencyRecorder();
      for (let i = n; i >= 1; i--) recorder.add(i);
      expect(recorder.count).toBe(n);
      const expected = Float64Array.from({ length: n }, (_, i) => i + 1);
      expect(recorder.sorted()).toEqual(expected);
      recorder.add(0.5); // it goes on recording after sorted()
      expect(recorder.sorted()[0]).toBe(0.5);
      expect(recorder.count).toBe(n + 1);
    }
  });

  it('the closed loop reads the clock once per write, and times each write from its own call', async () => {
    // A fake clock that only the write moves: each write takes exactly 1,000 us of it.
    let nowUsFake = 0;
    let reads = 0;
    let writes = 0;
    const result = await runClosedLoop({
      writersCount: 1,
      warmupMs: 20,
      windowMs: 100,
      clockUs: () => {
        reads++;
        return nowUsFake;
      },
      write: async () => {
        writes++;
        nowUsFake += 1_000;
        await new Promise((resolve) => setImmediate(resolve)); // the loop's timers run between writes
      },
    });
    expect(result.opsCount).toBeGreaterThan(10);
    // Every sample is its own write's 1,000 us: not one measured from an earlier call.
    expect(result.ackLatency.p50Us).toBe(1_000);
    expect(result.ackLatency.maxUs).toBe(1_000);
    expect(result.cdf[0]?.[0]).toBe(1_000);
    // One read per write and one to start; two per write (call and acknowledgement) would be 2 x writes.
    expect(reads).toBe(writes + 1);
  });

  it('tables pad columns and keep figures right-aligned', () => {
    const text = renderTable<{ name: string; n: number }>(
      [textColumn('name', (r) => r.name), figureColumn('n', (r) => String(r.n))],
      [
        { name: 'a', n: 1000 },
        { name: 'longer', n: 2 },
      ],
    );
    expect(text.split('\n')).toEqual(['name       n', '------  ----', 'a       1000', 'longer     2']);
  });

  it('finds the mount that holds a directory (longest mount point, octal escapes undone)', () => {
    const mounts = parseMounts('/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n/dev/vdb /mnt/my\\040disk xfs rw 0 0\n');
    expect(findMount(mounts, '/tmp/x')?.fileSystem).toBe('tmpfs');
    expect(findMount(mounts, '/tmpfoo')?.fileSystem).toBe('ext4');
    expect(findMount(mounts, '/mnt/my disk/data')?.fileSystem).toBe('xfs');
  });

  it('a scratch directory leaves what the user had, and removes only what it created', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'flushpoint-scratch-'));
    try {
      fs.writeFileSync(path.join(base, 'keep.txt'), 'mine');
      const inExisting = createScratchDir(base);
      fs.writeFileSync(path.join(inExisting.runDir, 'segment'), 'x');
      inExisting.dispose();
      expect(fs.readdirSync(base)).toEqual(['keep.txt']);

      const nested = createScratchDir(path.join(base, 'a', 'b'));
      nested.dispose();
      nested.dispose();
      expect(fs.readdirSync(base)).toEqual(['keep.txt']);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
