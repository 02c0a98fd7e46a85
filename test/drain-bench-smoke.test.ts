/**
 * Smoke test of `npm run bench:drain` (dist/bench/drain-bench.js, `npm run build` first): a two-round
 * run prints the drain row, the three baseline rows, the ratio line, the target's verdict for that run,
 * the backlog row and the throughput line under load; its figures are not checked.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

it('npm run bench:drain: a 2-round run prints drain p50/p99, the baselines and the ratio, and leaves no scratch directory', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  expect(pkg.scripts['bench:drain']).toContain('node dist/bench/drain-bench.js');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-drain-smoke-'));
  try {
    const r = spawnSync(process.execPath, [path.join(root, 'dist/bench/drain-bench.js'), '--rounds', '2', '--writers', '8', '--load-ms', '200', '--dir', base], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^rounds 2, writers 8, puts \d+, dir .*, backup flushIntervalMs default$/m);
    expect(r.stdout).toMatch(/^drain under 8 writers +p50 \d+\.\d\d ms +p99 \d+\.\d\d ms$/m);
    expect(r.stdout).toMatch(/^baseline: 1 WAL sync +p50 \d+\.\d\d ms/m);
    expect(r.stdout).toMatch(/^baseline: 1 idle backup flush +p50 \d+\.\d\d ms/m);
    expect(r.stdout).toMatch(/^ratio drain\/baseline +p50 \d+\.\d\dx +p99 \d+\.\d\dx +\(target <= 2x\)$/m);
    expect(r.stdout).toMatch(/^target \(drain p50 and p99 within 2x of sync \+ flush, this run\): (MET|MISSED)$/m);
    expect(r.stdout).toMatch(/^backlog when the drain began +p50 \d+ KiB +max \d+ KiB +\(automatic flushes during the warmups: \d+\)$/m);
    expect(r.stdout).toMatch(/^under load \(8 writers, \d+ ms, sink attached\): puts\/s \d+\.\d +backup flushes\/s \d+\.\d +files\/s \d+\.\d +mean file (\d+|-) KiB$/m);
    expect(fs.readdirSync(base)).toEqual([]);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
