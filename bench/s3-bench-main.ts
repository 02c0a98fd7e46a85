/**
 * Section 8 of the benchmark alone (the backup sink to an S3 endpoint), printed as in the report:
 *
 *   node dist/bench/s3-bench-main.js --endpoint URL --bucket NAME [--prefix P] [--dir DIR] [--quick] [--json FILE]
 *   keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. `npm run bench:s3` starts a local Ceph RGW and runs this.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderS3BackupSection } from './report-table.js';
import { runS3Bench, s3BenchProfiles } from './s3-backup.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { endpoint: { type: 'string' }, bucket: { type: 'string' }, prefix: { type: 'string' }, dir: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'string' } } });
  if (!values.endpoint || !values.bucket) {
    process.stderr.write('usage: node dist/bench/s3-bench-main.js --endpoint URL --bucket NAME [--prefix P] [--dir DIR] [--quick] [--json FILE]\n');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(values.dir ?? os.tmpdir(), 'fp-s3-bench-'));
  try {
    const s3 = { endpoint: values.endpoint, bucket: values.bucket, prefix: values.prefix ?? '', forcePathStyle: true };
    const r = await runS3Bench({ s3, dir, ...s3BenchProfiles[values.quick === true ? 'quick' : 'full'] }, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(renderS3BackupSection({ status: 'ok', endpoint: s3.endpoint, bucket: s3.bucket, prefix: s3.prefix, ...r }) + '\n');
    if (values.json) fs.writeFileSync(values.json, JSON.stringify(r, null, 2));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === `file://${path.resolve(process.argv[1])}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
