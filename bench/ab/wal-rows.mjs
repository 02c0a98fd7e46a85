#!/usr/bin/env node
/**
 * Section 3's WAL rows alone, as `flushpoint bench` measures them (bench/store-comparison.ts): each row
 * a fresh WAL under closed-loop writers (measureWalRow, the profile's warm-up and window), between its
 * paired baselines (the device's 4 KiB overwrite + fdatasync and the raw writev + fdatasync ceiling at
 * batch = writers, one slice before and one after), so each ratio compares figures of the same minute.
 * `flushpoint bench` has no option to run one section; this runs the rows the 4 KiB targets read in
 * about 10 s per row instead of the whole run's 10 minutes. With --a and --b, the rows of two builds
 * (two dist/ directories) alternate, one child process per row, order swapped every round.
 *
 *   node bench/ab/wal-rows.mjs --a DIST [--b DIST] [--size 4096] [--writers 64,1024] [--rounds 3]
 *        [--profile full|quick] [--truncate] [--dir data/rows] [--modes worker,inline]
 *
 * Prints one line per row: WAL acks/s, the raw ceiling at batch = writers and the ratio, ack p99 and its
 * ratio to the device's p99, segments started (unprepared); and the medians per build and row.
 * Not part of npm test.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
function arg(name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (args[0] === '--child') await child(JSON.parse(args[1]));
else parent();

function parent() {
  const self = fileURLToPath(import.meta.url);
  let builds = [['A', arg('a')], ['B', arg('b')]].filter(([, d]) => d !== undefined).map(([name, d]) => ({ name, dist: path.resolve(d), mode: 'worker' }));
  if (builds.length === 0) throw new TypeError('--a DIST is required');
  // --modes worker,inline: one build, its syncModes alternating in place of two builds.
  const modes = arg('modes', undefined);
  if (modes !== undefined) builds = modes.split(',').map((mode) => ({ name: mode, dist: builds[0].dist, mode }));
  const size = Number(arg('size', '4096'));
  const writersList = arg('writers', '64,1024').split(',').map(Number);
  const rounds = Number(arg('rounds', '3'));
  const profile = arg('profile', 'full');
  const truncate = args.includes('--truncate');
  const dir = path.resolve(arg('dir', 'data/rows'));
  fs.mkdirSync(dir, { recursive: true });
  for (const b of builds) console.log(`${b.name} = ${b.dist}`);
  const got = new Map();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const writers of writersList) {
      for (const build of order) {
        const spec = { dist: build.dist, mode: build.mode, dir: path.join(dir, `rows-${build.name}`), size, writers, profile, truncate };
        const r = spawnSync(process.execPath, [self, '--child', JSON.stringify(spec)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
        if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stdout}`);
        const row = JSON.parse(r.stdout.trim().split('\n').pop());
        const key = `${build.name} ${writers}`;
        if (!got.has(key)) got.set(key, []);
        got.get(key).push(row);
        console.log(
          `round ${round + 1} ${build.name} ${size} B x ${writers}${truncate ? ' truncated' : ''}: ${row.opsPerSec.toFixed(0)}/s, raw at batch ${writers} ${row.rawRecordsPerSec.toFixed(0)}/s = ${row.vsRaw.toFixed(2)}x; ` +
            `ack p99 ${row.p99Us.toFixed(0)} us, device p99 ${row.deviceP99Us.toFixed(0)} us = ${row.p99VsDevice.toFixed(1)}x; ` +
            `${row.segmentsStarted} segments started, ${row.preallocStalls} unprepared, ${row.segmentsRecycled} recycled`,
        );
      }
    }
  }
  console.log('\n| build | writers | acks/s | raw at batch = writers | vs raw | ack p99 us | device p99 us | p99 vs device |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [key, rows] of got) {
    const [name, writers] = key.split(' ');
    const m = (k) => median(rows.map((r) => r[k]));
    console.log(`| ${name} | ${writers} | ${m('opsPerSec').toFixed(0)} | ${m('rawRecordsPerSec').toFixed(0)} | ${m('vsRaw').toFixed(2)}x | ${m('p99Us').toFixed(0)} | ${m('deviceP99Us').toFixed(0)} | ${m('p99VsDevice').toFixed(1)}x |`);
  }
  console.log(`(medians over ${rounds} rounds of ${size} B rows, profile '${profile}'; each ratio within one row's minute)`);
}

async function child(spec) {
  const { profiles } = await import(path.join(spec.dist, 'bench/profile.js'));
  const { PairedBaselines } = await import(path.join(spec.dist, 'bench/paired-baselines.js'));
  const { measureWalRow } = await import(path.join(spec.dist, 'bench/wal-runner.js'));
  const profile = profiles[spec.profile];
  const progress = { section() {}, step() {}, advance() {}, done() {} };
  fs.rmSync(spec.dir, { recursive: true, force: true });
  fs.mkdirSync(spec.dir, { recursive: true });
  const baselines = new PairedBaselines(spec.dir, profile);
  try {
    await baselines.before(spec.size, spec.writers);
    const payload = crypto.randomBytes(spec.size);
    const measured = await measureWalRow(path.join(spec.dir, 'wal'), payload, spec.writers, profile, progress, { syncMode: spec.mode, use: spec.truncate ? 'truncate' : 'append' });
    const paired = await baselines.after();
    console.log(
      JSON.stringify({
        opsPerSec: measured.opsPerSec,
        p99Us: measured.ackLatency.p99Us,
        rawRecordsPerSec: paired.rawRecordsPerSec,
        vsRaw: measured.opsPerSec / paired.rawRecordsPerSec,
        deviceP99Us: paired.deviceP99Us,
        p99VsDevice: measured.ackLatency.p99Us / paired.deviceP99Us,
        segmentsStarted: measured.segmentsStarted,
        segmentsRecycled: measured.segmentsRecycled,
        preallocStalls: measured.preallocStalls,
      }),
    );
  } finally {
    baselines.close?.();
    fs.rmSync(spec.dir, { recursive: true, force: true });
  }
}
