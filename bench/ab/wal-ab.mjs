#!/usr/bin/env node
/**
 * Interleaved A/B runs of the WAL between two builds (two dist/ directories), in the same session: each
 * round runs one child process per build, alternating which goes first, and every child measures its
 * own device baseline (4 KiB overwrite + fdatasync on the main thread) right before and after its WAL
 * window, so each figure has a ratio to the disk as it was at that moment.
 *
 *   node bench/ab/wal-ab.mjs --a OLD/dist --b dist [--writers 1,64,1024] [--size 128] [--rounds 6]
 *        [--window-ms 1500] [--warmup-ms 300] [--dir data/ab] [--wal-options '{"syncMode":"inline"}']
 *        [--b-wal-options JSON] [--recovery-mib 64]
 *
 * Prints one line per child and a summary per row: the median of each build and the median of the
 * per-round B/A ratios. Loop busy us per record = event-loop active time (performance.eventLoopUtilization)
 * inside the window / records acknowledged in it: the main thread's cost of a record, disk waits excluded
 * (in an inline sync mode the blocking sync counts as busy). Busy time also counts the time the main thread
 * is runnable but not running: the commit worker, woken by Atomics.notify onto the main thread's CPU,
 * preempts it until the worker blocks in fdatasync. So each child also reads the kernel's per-thread
 * accounting (/proc/thread-self/schedstat, ns on a CPU and ns waiting in the run queue): "main cpu" is
 * the main thread's time on a CPU per record, "rq wait" its time runnable but preempted, "other cpu"
 * every other thread of the process (the commit worker, libuv's pool, V8's helpers) per record.
 * --truncate: the log is truncated behind the writers as a checkpointing consumer does it:
 * truncateBefore(durableLsn) each time another segment's worth of bytes has been appended; the
 * warm-up then lasts until 3 segments have been started too, so recycling (recycleSegments) is in its
 * steady state when the window opens.
 * --recovery-mib N: instead of writers, fills one WAL of N MiB of --size records with build A, then times
 * Wal.open of it by A and B alternately (MB/s of record bytes).
 * Not part of npm test; a tool for the A/B tables in the commit messages and reports.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
function arg(name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}
const self = fileURLToPath(import.meta.url);
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

if (args[0] === '--child') await child(JSON.parse(args[1]));
else await parent();

async function parent() {
  const a = path.resolve(arg('a'));
  const b = path.resolve(arg('b'));
  const rounds = Number(arg('rounds', '6'));
  const size = Number(arg('size', '128'));
  const windowMs = Number(arg('window-ms', '1500'));
  const warmupMs = Number(arg('warmup-ms', '300'));
  const dir = path.resolve(arg('dir', 'data/ab'));
  const walOptionsA = JSON.parse(arg('wal-options', '{}'));
  const walOptionsB = JSON.parse(arg('b-wal-options', arg('wal-options', '{}')));
  const recoveryMib = arg('recovery-mib');
  const truncate = args.includes('--truncate');
  fs.mkdirSync(dir, { recursive: true });
  const builds = [
    { name: 'A', dist: a, walOptions: walOptionsA },
    { name: 'B', dist: b, walOptions: walOptionsB },
  ];
  console.log(`A = ${a} ${JSON.stringify(walOptionsA)}\nB = ${b} ${JSON.stringify(walOptionsB)}`);
  const run = (spec) => {
    const r = spawnSync(process.execPath, [self, '--child', JSON.stringify(spec)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stdout}`);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  };
  if (recoveryMib !== undefined) {
    const walDir = path.join(dir, 'recovery');
    fs.rmSync(walDir, { recursive: true, force: true });
    run({ kind: 'fill', dist: a, dir: walDir, size, mib: Number(recoveryMib) });
    const got = { A: [], B: [] };
    const ratios = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      const mbs = {};
      for (const build of order) {
        const r = run({ kind: 'open', dist: build.dist, dir: walDir, walOptions: build.walOptions, recordBytes: size });
        mbs[build.name] = r.mbPerSec;
        got[build.name].push(r.mbPerSec);
        console.log(`round ${round + 1} ${build.name}: open ${r.openMs.toFixed(1)} ms, ${r.mbPerSec.toFixed(0)} MB/s (${r.records} records)`);
      }
      ratios.push(mbs.B / mbs.A);
    }
    fs.rmSync(walDir, { recursive: true, force: true });
    console.log(`\nrecovery ${recoveryMib} MiB of ${size} B records: A median ${median(got.A).toFixed(0)} MB/s, B median ${median(got.B).toFixed(0)} MB/s, B/A per round median ${median(ratios).toFixed(2)}x (${ratios.map((x) => x.toFixed(2)).join(' ')})`);
    return;
  }
  const writersList = arg('writers', '1,64,1024').split(',').map(Number);
  const summary = [];
  for (const writers of writersList) {
    const got = { A: [], B: [] };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      for (const build of order) {
        const r = run({ kind: 'wal', dist: build.dist, dir: path.join(dir, `w${build.name}`), size, writers, windowMs, warmupMs, walOptions: build.walOptions, truncate });
        got[build.name].push(r);
        console.log(
          `${writers} writers round ${round + 1} ${build.name}: ${r.opsPerSec.toFixed(0)}/s, p50 ${r.p50Us.toFixed(0)} us, p99 ${r.p99Us.toFixed(0)} us, ` +
            `device ${r.deviceOpsPerSec.toFixed(0)}/s p50 ${r.deviceP50Us.toFixed(0)} us, vs device ${(r.opsPerSec / r.deviceOpsPerSec).toFixed(2)}x, ` +
            `loop ${r.loopUsPerRecord.toFixed(2)} us/record, main cpu ${r.mainCpuUsPerRecord.toFixed(2)} us/record (rq wait ${r.mainRunqWaitUsPerRecord.toFixed(2)}), other threads cpu ${r.otherCpuUsPerRecord.toFixed(2)} us/record, ${r.recordsPerSync.toFixed(1)} records/sync` +
            `, window: ${r.writeBytesPerRecord.toFixed(0)} B written to storage per record, ${r.segmentsStarted} segments started (${r.segmentsRecycled} recycled, ${r.preallocStalls} unprepared), load ${r.loadavg}`,
        );
      }
    }
    const row = (k) => ({ A: median(got.A.map((r) => r[k])), B: median(got.B.map((r) => r[k])), ratio: median(got.A.map((ra, i) => got.B[i][k] / ra[k])) });
    summary.push({ writers, ops: row('opsPerSec'), vsDevice: row('vsDevice'), p50: row('p50Us'), p99: row('p99Us'), loop: row('loopUsPerRecord'), cpu: row('mainCpuUsPerRecord'), written: row('writeBytesPerRecord') });
  }
  console.log(`\n| writers | A ops/s | B ops/s | B/A | A vs device | B vs device | A p50 us | B p50 us | A p99 us | B p99 us | A loop us/rec | B loop us/rec | A main cpu us/rec | B main cpu us/rec | B/A main cpu | A B written/rec | B B written/rec |`);
  console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`);
  for (const s of summary) {
    console.log(
      `| ${s.writers} | ${s.ops.A.toFixed(0)} | ${s.ops.B.toFixed(0)} | ${s.ops.ratio.toFixed(2)}x | ${s.vsDevice.A.toFixed(2)}x | ${s.vsDevice.B.toFixed(2)}x | ` +
        `${s.p50.A.toFixed(0)} | ${s.p50.B.toFixed(0)} | ${s.p99.A.toFixed(0)} | ${s.p99.B.toFixed(0)} | ${s.loop.A.toFixed(2)} | ${s.loop.B.toFixed(2)} | ${s.cpu.A.toFixed(2)} | ${s.cpu.B.toFixed(2)} | ${s.cpu.ratio.toFixed(2)}x | ${s.written.A.toFixed(0)} | ${s.written.B.toFixed(0)} |`,
    );
  }
  console.log(`(medians over ${rounds} interleaved rounds; B/A = median of the per-round ratios)`);
}

/**
 * Bytes this process (every thread: the commit worker and the libuv pool included) caused to be sent to
 * storage (/proc/self/io write_bytes; NaN where there is none): records, end markers and zero-fill alike.
 * The kernel charges a whole page-cache folio each time a write dirties it, so with large folios (a
 * 1 MiB write into new pages makes a 1 MiB folio on Linux 6.x ext4) this counts far more than reaches
 * the device (/proc/diskstats): read it as page cache dirtied, and compare builds, not bytes on disk.
 */
function writeBytes() {
  try {
    const m = /^write_bytes: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/**
 * The kernel's scheduler accounting of this process's threads: [main thread ns on a CPU, main thread ns
 * runnable in the run queue, every other thread's ns on a CPU] (NaN where /proc has no schedstat).
 */
function threadTimes() {
  try {
    const [mainCpu, mainWait] = fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    let all = 0;
    for (const tid of fs.readdirSync('/proc/self/task')) {
      try {
        all += Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
    return [mainCpu, mainWait, all - mainCpu];
  } catch {
    return [NaN, NaN, NaN];
  }
}

/** 4 KiB overwrite + fdatasync on the main thread for `ms`: ops/s and p50. */
function deviceSlice(fd, ms, samples) {
  const page = Buffer.alloc(4096, 0x5a);
  const fileBytes = 8 * 1024 * 1024;
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) {
    const t0 = performance.now();
    fs.writeSync(fd, page, 0, page.length, (n++ * 4096) % fileBytes);
    fs.fdatasyncSync(fd);
    samples.push((performance.now() - t0) * 1000);
  }
  return performance.now() - start;
}

async function child(spec) {
  const { Wal } = await import(path.join(spec.dist, 'wal/index.js'));
  if (spec.kind === 'fill') {
    const payload = Buffer.alloc(spec.size, 0x33);
    const wal = await Wal.open({ dir: spec.dir });
    while (wal.appendedBytes < spec.mib * 1024 * 1024) {
      for (let i = 0; i < 4096; i++) wal.append(payload);
      await wal.sync();
    }
    await wal.close();
    console.log(JSON.stringify({ ok: true }));
    return;
  }
  if (spec.kind === 'open') {
    const t0 = performance.now();
    const wal = await Wal.open({ dir: spec.dir, ...spec.walOptions });
    const openMs = performance.now() - t0;
    const records = wal.lastLsn;
    // Bytes of records (header, payload, padding) as the bench's recovery row counts them.
    const stats = wal.stats();
    await wal.close();
    const dataBytes = stats.recovery.bytesScanned; // preallocated space included; see below
    const framed = records * (24 + Math.ceil(Number(spec.recordBytes ?? 128) / 8) * 8);
    console.log(JSON.stringify({ openMs, records, mbPerSec: framed / 1e6 / (openMs / 1000), scannedBytes: dataBytes }));
    return;
  }
  fs.rmSync(spec.dir, { recursive: true, force: true });
  fs.mkdirSync(spec.dir, { recursive: true });
  const devicePath = path.join(spec.dir, '..', `device-${process.pid}.dat`);
  const fd = fs.openSync(devicePath, 'w+');
  fs.writeSync(fd, Buffer.alloc(8 * 1024 * 1024), 0, 8 * 1024 * 1024, 0);
  fs.fdatasyncSync(fd);
  const deviceSamples = [];
  let deviceMs = deviceSlice(fd, 250, deviceSamples);
  const wal = await Wal.open({ dir: spec.dir, ...spec.walOptions });
  const payload = Buffer.alloc(spec.size, 0x42);
  let phase = 'warmup';
  const lat = [];
  let acked = 0;
  const writer = async () => {
    while (phase !== 'stopped') {
      const t0 = performance.now();
      await wal.waitDurable(wal.append(payload));
      if (phase === 'window') {
        lat.push((performance.now() - t0) * 1000);
        acked++;
      }
    }
  };
  const writers = Array.from({ length: spec.writers }, writer);
  let truncatedAtBytes = 0;
  const segmentBytes = spec.walOptions.segmentSizeBytes ?? 64 * 1024 * 1024;
  if (spec.truncate) {
    wal.on('durable', (durableLsn) => {
      if (wal.appendedBytes - truncatedAtBytes < segmentBytes) return;
      truncatedAtBytes = wal.appendedBytes;
      wal.truncateBefore(durableLsn).catch(() => {});
    });
  }
  const warmupStart = performance.now();
  while (performance.now() - warmupStart < spec.warmupMs || (spec.truncate && wal.stats().segmentsCreated < 3)) await new Promise((r) => setTimeout(r, 20));
  phase = 'window';
  const io0 = writeBytes();
  const t0 = threadTimes();
  const s0 = wal.stats();
  const elu0 = performance.eventLoopUtilization();
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, spec.windowMs));
  phase = 'stopped';
  const io1 = writeBytes();
  const t1 = threadTimes();
  const w1 = performance.now();
  const elu = performance.eventLoopUtilization(elu0);
  const s1 = wal.stats();
  await Promise.all(writers);
  await wal.close();
  fs.rmSync(spec.dir, { recursive: true, force: true });
  deviceMs += deviceSlice(fd, 250, deviceSamples);
  fs.closeSync(fd);
  fs.rmSync(devicePath, { force: true });
  lat.sort((x, y) => x - y);
  deviceSamples.sort((x, y) => x - y);
  const opsPerSec = acked / ((w1 - w0) / 1000);
  const deviceOpsPerSec = deviceSamples.length / (deviceMs / 1000);
  const syncs = s1.syncs - s0.syncs;
  console.log(
    JSON.stringify({
      opsPerSec,
      p50Us: pct(lat, 0.5),
      p99Us: pct(lat, 0.99),
      deviceOpsPerSec,
      deviceP50Us: pct(deviceSamples, 0.5),
      vsDevice: opsPerSec / deviceOpsPerSec,
      loopUsPerRecord: (elu.active * 1000) / acked,
      mainCpuUsPerRecord: (t1[0] - t0[0]) / 1000 / acked,
      mainRunqWaitUsPerRecord: (t1[1] - t0[1]) / 1000 / acked,
      otherCpuUsPerRecord: (t1[2] - t0[2]) / 1000 / acked,
      recordsPerSync: syncs === 0 ? NaN : (s1.appends - s0.appends) / syncs,
      segmentsStarted: s1.segmentsCreated - s0.segmentsCreated,
      segmentsRecycled: (s1.segmentsRecycled ?? 0) - (s0.segmentsRecycled ?? 0),
      preallocStalls: s1.preallocStalls - s0.preallocStalls,
      loadavg: os.loadavg()[0].toFixed(2),
      writeBytesPerRecord: (io1 - io0) / acked,
    }),
  );
}
