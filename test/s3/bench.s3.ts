/**
 * `flushpoint bench --endpoint URL --bucket NAME` against the real radosgw: section 8 runs (a toy-sized
 * run, --tiny), its table and JSON have their shape, and every figure sits beside its baseline from the
 * same run. Shape and counts only: no timed assertion (the figures of a --tiny run mean nothing).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3BenchProfiles } from '../../bench/s3-backup.js';
import { cluster, newBucket, rawClient } from './cluster.js';

const c = cluster();
let bucket = '';
let tmp = '';
let run: { code: number | null; stdout: string; stderr: string };

function flushpoint(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve('dist/cli/main.js'), ...args], {
      cwd: tmp,
      env: { ...process.env, AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  bucket = await newBucket(c, 'bench');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-s3-bench-'));
  run = await flushpoint(['bench', '--tiny', '--dir', 'data', '--json', 'report.json', '--endpoint', c.endpoint, '--bucket', bucket, '--prefix', 'runs']);
}, 180_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('flushpoint bench --endpoint (section 8, backup to S3)', () => {
  it('exits 0 and prints section 8 with each figure beside plain PUTs of the same run', () => {
    expect(run.code, run.stderr).toBe(0);
    const out = run.stdout;
    expect(out).toMatch(/^8\. Backup to S3 \(run when --endpoint is given\)\n=+\n64 closed-loop writers x 256 B records on the WAL; backup to http:\/\/127\.0\.0\.1:\d+, s3:\/\/fp-bench-[0-9a-f]+\/runs;$/m);
    expect(out).toMatch(/^backup throughput while the WAL takes load +[\d.]+ MB\/s +WAL log bytes [\d.]+ MB\/s +[\d.]+x$/m);
    const us = String.raw`[\d.,]+ (?:us|ms|s)`;
    expect(out).toMatch(new RegExp(String.raw`^forceFlush when idle \(.+\), p50 / p99 +${us} / ${us} +one plain PUT ${us} / ${us} +[\d.]+x / [\d.]+x$`, 'm'));
    expect(out).toMatch(new RegExp(String.raw`^forceFlush with an upload in flight, p50 / p99 +${us} / ${us} +two plain PUTs ${us} / ${us} +[\d.]+x / [\d.]+x$`, 'm'));
    expect(out).toMatch(/^S3: idle forceFlush p50 .* <= 1\.50x +(met|missed)$/m);
    expect(out).toMatch(/^S3: forceFlush p50 with an upload in flight .* <= 1\.50x +(met|missed)$/m);
  });

  it('writes section 8 into the JSON: both sides of every ratio measured, sample for sample', () => {
    const report = JSON.parse(fs.readFileSync(path.join(tmp, 'report.json'), 'utf8'));
    const s = report.s3Backup;
    expect(s).toMatchObject({ status: 'ok', endpoint: c.endpoint, bucket, prefix: 'runs', writersCount: 64, recordSizeBytes: 256 });
    const samples = s3BenchProfiles.tiny.samplesCount;
    for (const side of ['forceFlushIdleUs', 'plainPutUs', 'forceFlushInFlightUs', 'twoPutsUs']) {
      expect(s[side].count, side).toBe(samples);
      expect(s[side].p50Us, side).toBeGreaterThan(0);
    }
    expect(s.flushBytes).toBeGreaterThan(0);
    expect(s.backupMBPerSec).toBeGreaterThan(0);
    expect(s.idleRatio).toBeCloseTo(s.forceFlushIdleUs.p50Us / s.plainPutUs.p50Us, 9);
    expect(s.inFlightRatio).toBeCloseTo(s.forceFlushInFlightUs.p50Us / s.twoPutsUs.p50Us, 9);
    expect(Object.keys(s.idleStagesP50Ms).sort()).toEqual(['checkpointMs', 'readMs', 'writeMs']);
    const targets = report.targets.filter((t: { id: string }) => t.id.startsWith('s3-'));
    expect(targets.map((t: { id: string }) => t.id)).toEqual(['s3-idle-force-flush-vs-plain-put', 's3-in-flight-force-flush-vs-plain-puts']);
    for (const t of targets) {
      expect(['met', 'missed']).toContain(t.status);
      expect(t.threshold).toBe(1.5);
    }
  });

  it('put its objects under the given prefix, and left the local run directory removed', async () => {
    const raw = rawClient(c);
    try {
      const r = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'runs/' }));
      expect((r.Contents ?? []).length).toBeGreaterThan(0);
      const outside = await raw.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect((outside.Contents ?? []).every((o) => o.Key?.startsWith('runs/'))).toBe(true);
    } finally {
      raw.destroy();
    }
    const data = path.join(tmp, 'data');
    expect(fs.existsSync(data) ? fs.readdirSync(data) : []).toEqual([]);
  });
});
