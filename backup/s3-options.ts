/**
 * Options of an S3 backup target: one doc line each, units in the name, defaults applied in s3Defaults,
 * limits named here with their units.
 */
import { integerInRange, knownOptionsOnly } from '../core/check.js';

// ---- limits and defaults (units in the names) ----
/** Per request: the SDK has no timeout by default and waited out a 3 s stall; a stall must become a failure. */
export const S3_REQUEST_TIMEOUT_MS_DEFAULT = 30_000;
/** Per connection attempt. */
export const S3_CONNECTION_TIMEOUT_MS_DEFAULT = 5_000;
/** Attempts per request by the SDK (1 = no SDK retry); the sink's own retry policy comes on top. */
export const S3_ATTEMPTS_COUNT_DEFAULT = 3;
export const S3_ATTEMPTS_COUNT_MAX = 10;
/** Files larger than this go through multipart upload: above the sink's default file size (64 MiB), since
 * radosgw 16 ignores If-None-Match on CompleteMultipartUpload and a single PUT keeps the condition. */
export const S3_MULTIPART_THRESHOLD_BYTES_DEFAULT = 100 * 1024 * 1024;
/** Part size of a multipart upload (S3's minimum for all parts but the last is 5 MiB). */
export const S3_PART_SIZE_BYTES_DEFAULT = 8 * 1024 * 1024;
export const S3_PART_SIZE_BYTES_MIN = 5 * 1024 * 1024;
/** S3 allows at most this many parts per upload. */
export const S3_PARTS_COUNT_MAX = 10_000;
/** Parts of one upload in flight at once. */
export const S3_PARTS_IN_FLIGHT_MAX = 4;
/** Conditional checkpoint publishes retried after this target's own earlier attempt turned out to have landed. */
export const S3_CHECKPOINT_REPUBLISH_COUNT_MAX = 3;
/** A checkpoint request signed while the last data file uploaded is sent only if that took less than this, in ms (SigV4 allows 15 minutes of skew). */
export const S3_PREPARED_CHECKPOINT_AGE_MS_MAX = 60_000;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3TargetOptions {
  /** Endpoint URL, e.g. http://127.0.0.1:7480. Default: AWS's own for the region. */
  endpoint?: string;
  /** Bucket name; it must exist. */
  bucket: string;
  /** Key prefix of the backup inside the bucket (no leading or trailing slash). Default '' (the bucket's root). */
  prefix?: string;
  /** Region. Default: AWS_REGION, else 'us-east-1'. */
  region?: string;
  /** Keys. Default: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) from the environment. */
  credentials?: S3Credentials;
  /** Path-style addressing (http://host/bucket/key), what most non-AWS stores need. Default true. */
  forcePathStyle?: boolean;
  /** Timeout of one request (send and answer), in ms. Default 30000. */
  requestTimeoutMs?: number;
  /** Timeout of one connection attempt, in ms. Default 5000. */
  connectionTimeoutMs?: number;
  /** Attempts per request inside the SDK (with its backoff); the sink retries failed flushes on top. Default 3. */
  attemptsCountMax?: number;
  /** Files larger than this are uploaded in parts, in bytes. Default 100 MiB. */
  multipartThresholdBytes?: number;
  /** Size of each part but the last, in bytes. Default 8 MiB (min 5 MiB). */
  partSizeBytes?: number;
}

export interface ResolvedS3Options {
  endpoint: string | undefined;
  bucket: string;
  prefix: string;
  region: string;
  credentials: S3Credentials;
  forcePathStyle: boolean;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  attemptsCountMax: number;
  multipartThresholdBytes: number;
  partSizeBytes: number;
}

const KNOWN = ['endpoint', 'bucket', 'prefix', 'region', 'credentials', 'forcePathStyle', 'requestTimeoutMs', 'connectionTimeoutMs', 'attemptsCountMax', 'multipartThresholdBytes', 'partSizeBytes'];

function credentialsFrom(o: S3TargetOptions, env: NodeJS.ProcessEnv): S3Credentials {
  const c = o.credentials;
  if (c !== undefined) {
    if (c === null || typeof c !== 'object' || typeof c.accessKeyId !== 'string' || typeof c.secretAccessKey !== 'string' || c.accessKeyId === '' || c.secretAccessKey === '') {
      throw new TypeError('s3.credentials must be { accessKeyId, secretAccessKey, sessionToken? } with non-empty strings');
    }
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) };
  }
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new TypeError('s3 target: no credentials: pass s3.credentials or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  }
  return { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

export function s3Defaults(o: S3TargetOptions, env: NodeJS.ProcessEnv = process.env): ResolvedS3Options {
  if (o === null || typeof o !== 'object') throw new TypeError('s3 target options must be an object');
  knownOptionsOnly(o, KNOWN, 's3 target');
  if (typeof o.bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(o.bucket)) throw new TypeError(`s3.bucket must be a valid bucket name, got ${String(o.bucket)}`);
  const prefix = o.prefix ?? '';
  if (typeof prefix !== 'string') throw new TypeError('s3.prefix must be a string');
  if (prefix.startsWith('/') || prefix.endsWith('/') || prefix.includes('//')) throw new RangeError(`s3.prefix must have no leading, trailing or double slash, got '${prefix}'`);
  if (o.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(o.endpoint);
    } catch {
      throw new TypeError(`s3.endpoint must be a URL, got ${String(o.endpoint)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`s3.endpoint must be http(s), got ${o.endpoint}`);
  }
  const partSizeBytes = integerInRange(o.partSizeBytes ?? S3_PART_SIZE_BYTES_DEFAULT, 's3.partSizeBytes', S3_PART_SIZE_BYTES_MIN, 2 ** 31);
  return {
    endpoint: o.endpoint,
    bucket: o.bucket,
    prefix,
    region: o.region ?? env.AWS_REGION ?? 'us-east-1',
    credentials: credentialsFrom(o, env),
    forcePathStyle: o.forcePathStyle ?? true,
    requestTimeoutMs: integerInRange(o.requestTimeoutMs ?? S3_REQUEST_TIMEOUT_MS_DEFAULT, 's3.requestTimeoutMs', 1, 2 ** 31 - 1),
    connectionTimeoutMs: integerInRange(o.connectionTimeoutMs ?? S3_CONNECTION_TIMEOUT_MS_DEFAULT, 's3.connectionTimeoutMs', 1, 2 ** 31 - 1),
    attemptsCountMax: integerInRange(o.attemptsCountMax ?? S3_ATTEMPTS_COUNT_DEFAULT, 's3.attemptsCountMax', 1, S3_ATTEMPTS_COUNT_MAX),
    multipartThresholdBytes: integerInRange(o.multipartThresholdBytes ?? S3_MULTIPART_THRESHOLD_BYTES_DEFAULT, 's3.multipartThresholdBytes', S3_PART_SIZE_BYTES_MIN, 2 ** 31),
    partSizeBytes,
  };
}

/** Parses s3://bucket/prefix (the CLI's and restore's spelling of an S3 backup). */
export function parseS3Url(url: string): { bucket: string; prefix: string } | null {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) return null;
  return { bucket: m[1] as string, prefix: (m[2] ?? '').replace(/\/+$/, '') };
}

export function s3Location(bucket: string, prefix: string): string {
  return prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
}
