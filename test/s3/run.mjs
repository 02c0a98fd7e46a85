#!/usr/bin/env node
/**
 * npm run test:s3: a single-node Ceph cluster under a temporary directory (test/s3/ceph.mjs), the S3
 * tests against its radosgw (vitest.s3.config.ts), then every daemon stopped, also when a test fails or
 * the run is interrupted. Exits non-zero if a test failed or a daemon outlived the run.
 *
 *   FLUSHPOINT_S3_STORE=bluestore   the OSD on a sparse file instead of memory (slower start)
 *   extra arguments go to vitest (a file name, -t NAME ...)
 *   --bench [--quick]               instead of the tests, the S3 benchmark (bench/s3-bench-main.ts; build first)
 *   --exec CMD [ARGS...]            instead of the tests, CMD with FLUSHPOINT_S3_ENDPOINT and the AWS_* keys set
 *                                   and the bucket flushpoint-bench made (e.g. test/s3/ab-force-flush.mjs)
 */
import { spawn } from 'node:child_process';
import { serveControl, startCeph } from './ceph.mjs';

const store = process.env.FLUSHPOINT_S3_STORE ?? 'memstore';
const handle = await startCeph({ store, log: (line) => console.error(line) });
const closeControl = serveControl(handle);
let stopping = null;
const stopAll = () => (stopping ??= closeControl().then(() => handle.stop()));
let child = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    child?.kill(sig);
    await stopAll();
    process.exit(130);
  });
}
let code = 1;
const bench = process.argv[2] === '--bench';
const exec = process.argv[2] === '--exec';
try {
  const env = { ...process.env, FLUSHPOINT_S3_STATE: handle.stateFile, FLUSHPOINT_S3_ENDPOINT: handle.endpoint };
  if (bench || exec) {
    // npm run bench:s3: the S3 section of the benchmark against this cluster (dist/ must be built).
    const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
    const client = new S3Client({ endpoint: handle.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: handle.accessKeyId, secretAccessKey: handle.secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: 'flushpoint-bench' }));
    client.destroy();
    const keys = { ...env, AWS_ACCESS_KEY_ID: handle.accessKeyId, AWS_SECRET_ACCESS_KEY: handle.secretAccessKey };
    if (exec) child = spawn(process.argv[3], process.argv.slice(4), { stdio: 'inherit', env: keys });
    else child = spawn(process.execPath, ['dist/bench/s3-bench-main.js', '--endpoint', handle.endpoint, '--bucket', 'flushpoint-bench', ...process.argv.slice(3)], { stdio: 'inherit', env: keys });
  } else {
    child = spawn('npx', ['vitest', 'run', '--config', 'vitest.s3.config.ts', ...process.argv.slice(2)], { stdio: 'inherit', env });
  }
  code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
} finally {
  const { left } = await stopAll();
  if (left.length > 0) {
    console.error(`test:s3: daemons still present after stop: ${left.join(', ')}`);
    code = code || 1;
  } else {
    console.error('test:s3: every Ceph daemon stopped');
  }
}
process.exit(code);
