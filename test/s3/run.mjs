#!/usr/bin/env node
/**
 * npm run test:s3: a single-node Ceph cluster under a temporary directory (test/s3/ceph.mjs), the S3
 * tests against its radosgw (vitest.s3.config.ts), then every daemon stopped, also when a test fails or
 * the run is interrupted. Exits non-zero if a test failed or a daemon outlived the run.
 *
 *   FLUSHPOINT_S3_STORE=bluestore   the OSD on a sparse file instead of memory (slower start)
 *   extra arguments go to vitest (a file name, -t NAME ...)
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
try {
  child = spawn('npx', ['vitest', 'run', '--config', 'vitest.s3.config.ts', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, FLUSHPOINT_S3_STATE: handle.stateFile, FLUSHPOINT_S3_ENDPOINT: handle.endpoint },
  });
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
