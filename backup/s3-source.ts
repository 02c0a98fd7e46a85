/**
 * A backup named by a user (CLI, scripts): a directory path, or s3://bucket/prefix. For S3 the AWS SDK is
 * loaded only then, the endpoint comes from the caller (--endpoint) and the keys from AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY. `location` and `fs` go to restoreBackup({ from: location, fs }) and
 * verifyBackup(location, { fs }).
 */
import path from 'node:path';
import type { FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { parseS3Url, type S3TargetOptions } from './s3-options.js';

export interface BackupSource {
  /** The directory (resolved) or s3://bucket/prefix. */
  location: string;
  /** Reads the backup (and, for restore, writes the new WAL on the local disk). */
  fs: FileSystem;
  close(): Promise<void>;
}

export async function openBackupSource(spec: string, options: { cwd?: string; s3?: Partial<S3TargetOptions> } = {}): Promise<BackupSource> {
  const s3 = parseS3Url(spec);
  if (s3 === null) {
    if (options.s3?.endpoint !== undefined) throw new TypeError(`an S3 endpoint was given, but ${spec} is not an s3://bucket/prefix URL`);
    return { location: path.resolve(options.cwd ?? process.cwd(), spec), fs: nodeFileSystem, close: async () => {} };
  }
  const { S3Target } = await import('./s3-target.js');
  const target = new S3Target({ ...options.s3, bucket: s3.bucket, prefix: s3.prefix });
  return { location: target.location, fs: target.readFs, close: () => target.close() };
}
