/** What the S3 tests share: the cluster run.mjs started, a fresh bucket per test file, target options. */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { loadCeph, type CephHandle } from './ceph.mjs';
import type { S3TargetOptions } from '../../backup/s3-options.js';

export function cluster(): CephHandle {
  const state = process.env.FLUSHPOINT_S3_STATE;
  if (!state) throw new Error('no Ceph cluster: run the S3 tests with `npm run test:s3` (test/s3/run.mjs starts one)');
  return loadCeph(state);
}

/** A plain client on the test cluster (for setup and for looking behind the target's back). */
export function rawClient(c: CephHandle, requestTimeoutMs = 30_000): S3Client {
  return new S3Client({
    endpoint: c.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: { requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true },
  });
}

export async function newBucket(c: CephHandle, what: string): Promise<string> {
  const bucket = `fp-${what}-${randomBytes(4).toString('hex')}`.toLowerCase();
  const client = rawClient(c);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}

export function targetOptions(c: CephHandle, bucket: string, prefix: string, extra: Partial<S3TargetOptions> = {}): S3TargetOptions {
  return {
    endpoint: c.endpoint,
    bucket,
    prefix,
    region: 'us-east-1',
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    forcePathStyle: true,
    ...extra,
  };
}

/** Polls `fn` until it returns true; gives up after `patienceMs` (a liveness bound, not a timing claim). */
export async function until(fn: () => Promise<boolean>, what = 'a condition', patienceMs = 30_000, stepMs = 50): Promise<void> {
  const deadline = Date.now() + patienceMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${patienceMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
