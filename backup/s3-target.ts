/**
 * An S3 bucket prefix as a backup target (@aws-sdk/client-s3; tested against Ceph's RADOS Gateway).
 *
 * Publish protocol, as on disk: data objects first, the CHECKPOINT object last.
 *
 *   putFile(name)        PUT If-None-Match: * (Content-MD5 so the store checks the bytes it got)
 *                        | 201/200 -> stored
 *                        | 412 (something is there) -> "already there?": HEAD, compare size and the
 *                        |   store's ETag with ours (MD5, or MD5-of-part-MD5s "-N" for multipart);
 *                        |   if the ETag cannot decide (another part size), GET and compare SHA-256.
 *                        |   Same bytes -> stored (an earlier attempt landed: a PUT that timed out
 *                        |   client-side may still be stored). Other bytes -> BACKUP_LOCKED: another
 *                        |   writer uses this prefix; never overwritten.
 *   large files          multipart (parts with Content-MD5), completed with If-None-Match: * after a
 *                        HEAD finds nothing there (radosgw 16 does not honour the condition on
 *                        completion), then HEAD again: RGW answers CompleteMultipartUpload with an
 *                        empty ETag, HEAD is right. The default threshold (100 MiB) is above the
 *                        sink's default file size, so by default every file is one conditional PUT.
 *   publishCheckpointInline  (a flush a caller waits for, of one file under INLINE_FILE_BYTES_MAX)
 *                        ONE conditional PUT of the CHECKPOINT (as below) carrying the file inline
 *                        (format.ts, version 3): the flush's commit point. Then, in the background, the
 *                        file is put under its name (putFile, as above): "materialized". Until it is,
 *                        no checkpoint PUT leaves (the next one would replace the only copy): every
 *                        publish first waits for it, and a failure fails that publish (the flush's
 *                        waiters get BACKUP_FAILED; the sink retries). The same holds for a checkpoint
 *                        this target did not write but is about to replace: prepare() (a sink's open)
 *                        and a 412 we continue from materialize its inline file first.
 *   publishCheckpoint    PUT If-None-Match: * (no checkpoint yet) or If-Match: <ETag we last saw>
 *                        (quoted; unquoted once the store refused the quoted form of the very ETag it
 *                        holds: radosgw 16 compares If-Match with the bare ETag).
 *                        412 -> GET the checkpoint: our own earlier attempt (its bytes are among ours
 *                        whose outcome we never learned) -> take its ETag, publish again; anything
 *                        else -> BACKUP_LOCKED: a second sink publishes on this prefix.
 *
 * Every request has a timeout (requestTimeoutMs; the SDK has none by default) and at most
 * attemptsCountMax attempts, so a stalled store becomes a failed flush that the sink retries under its
 * own policy, and a forceFlush timeout stays per caller. Bodies are Buffers with a known length (RGW
 * answers a streamed body with 411), and the SDK computes checksums only where an API requires them.
 */
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandOutput,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { decodeBackupFile, readBackupFile, sameRecords, type BackupFileEntry } from './backup-file.js';
import { CHECKPOINT_BYTES, CHECKPOINT_NAME, decodeCheckpoint, decodeCheckpointFieldsOnly, parseBackupFileName, type BodyRecord, type InlineFile } from './format.js';
import { INLINE_FILE_BYTES_MAX } from './limits.js';
import { s3ReadFileSystem } from './s3-file-system.js';
import {
  S3_CHECKPOINT_REPUBLISH_COUNT_MAX,
  S3_PARTS_COUNT_MAX,
  S3_PARTS_IN_FLIGHT_MAX,
  S3_PREPARED_CHECKPOINT_AGE_MS_MAX,
  s3Defaults,
  s3Location,
  type ResolvedS3Options,
  type S3TargetOptions,
} from './s3-options.js';
import { chunksBytes, emptyTargetStats, type BackupTarget, type PreparedCheckpoint, type PutTimings, type TargetStats } from './target.js';

interface S3ErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function httpStatus(err: unknown): number | undefined {
  return (err as S3ErrorShape)?.$metadata?.httpStatusCode;
}

/** 412, or 409 (a conditional write that raced another one on the same key). */
function isPreconditionFailed(err: unknown): boolean {
  const status = httpStatus(err);
  const name = (err as S3ErrorShape)?.name;
  return status === 412 || status === 409 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict';
}

function isNotFound(err: unknown): boolean {
  const name = (err as S3ErrorShape)?.name;
  return httpStatus(err) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

/** The LSN a checkpoint's bytes name, or null when they are not a checkpoint this version reads. */
function checkpointLsnOf(bytes: Uint8Array): number | null {
  const d = decodeCheckpointFieldsOnly(bytes);
  return d.ok ? d.value.checkpointLsn : null;
}

const md5 = (b: Uint8Array): Buffer => createHash('md5').update(b).digest();

/** The first LSN from `fromLsn` on that none of `ranges` holds (ranges that tile on from fromLsn, in any order). */
function coveredUpTo(ranges: ReadonlyArray<{ firstLsn: number; lastLsn: number }>, fromLsn: number): number {
  let next = fromLsn;
  for (const r of [...ranges].sort((a, b) => a.firstLsn - b.firstLsn)) {
    if (r.firstLsn > next) break;
    next = Math.max(next, r.lastLsn + 1);
  }
  return next;
}

/** Whether a request's headers carry Content-MD5 (then it is signed without hashing the payload). */
const carriesMd5 = (headers: Record<string, string>): boolean => Object.keys(headers).some((h) => h.toLowerCase() === 'content-md5');
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const unquote = (etag: string | undefined): string => (etag ?? '').replace(/^"|"$/g, '').toLowerCase();

/** The ETag S3 gives an object uploaded in parts of `partSizeBytes`: MD5 of the parts' MD5s, "-" count. */
export function multipartEtag(body: Uint8Array, partSizeBytes: number): string {
  const digests: Buffer[] = [];
  for (let at = 0; at < body.byteLength; at += partSizeBytes) digests.push(md5(body.subarray(at, Math.min(body.byteLength, at + partSizeBytes))));
  return `${md5(Buffer.concat(digests)).toString('hex')}-${digests.length}`;
}

/** A file held inline by the stored checkpoint and not yet stored under its own name. */
interface InlinePending {
  name: string;
  bytes: Uint8Array;
  /** Its MD5, when known already. */
  md5: Buffer | null;
}

export interface S3TargetStats extends TargetStats {
  /** Files that went through multipart upload. */
  multipartUploads: number;
  /** Conditional checkpoint publishes refused because our own earlier attempt had landed (resolved). */
  checkpointSelfConflicts: number;
  /** Checkpoints of this very backup that a killed writer's in-flight PUT landed after this target read the prefix, taken over. */
  checkpointTakeovers: number;
  /** Checkpoints published with their flush's data file inline (one PUT for the flush). */
  inlineCheckpoints: number;
  /** Inline files stored under their own names afterwards (ours, or found in a checkpoint this target replaces). */
  inlineMaterialized: number;
  /** Attempts to store an inline file under its name that failed (retried before the next checkpoint). */
  inlineMaterializeFailures: number;
  /** Objects under a data file's name that did not verify, replaced by our copy (PUT If-Match on their ETag). */
  damagedReplaced: number;
}

export class S3Target implements BackupTarget {
  readonly location: string;
  readonly readFs: FileSystem;
  readonly claimsByCheckpoint = true;
  readonly client: S3Client;
  readonly #o: ResolvedS3Options;
  readonly #stats = { ...emptyTargetStats(), multipartUploads: 0, checkpointSelfConflicts: 0, checkpointTakeovers: 0, inlineCheckpoints: 0, inlineMaterialized: 0, inlineMaterializeFailures: 0, damagedReplaced: 0 };
  /** LSN of the checkpoint this target last saw or wrote (0: there was none; null: not one it can read). */
  #checkpointLsnSeen: number | null = null;
  /** Data files this target saw at prepare() or put since: a late checkpoint naming only these may be taken over. */
  readonly #knownFiles = new Set<string>();
  /** ETag of the checkpoint as this target last saw or wrote it; null: none exists; undefined: not read yet. */
  #checkpointEtag: string | null | undefined = undefined;
  /** Checkpoint bodies sent since the last confirmed publish whose outcome is unknown (a timed-out PUT may land). */
  #checkpointsInDoubt: Uint8Array[] = [];
  /** If-Match with the quoted ETag (HTTP's spelling) until the store shows it wants it bare. */
  #ifMatchQuoted = true;
  /** The inline file of the stored checkpoint, until it is stored under its own name too (then null). */
  #inlinePending: InlinePending | null = null;
  /** The running attempt to store #inlinePending under its name (null: none runs). */
  #materializing: Promise<void> | null = null;
  /** Why the last attempt to store #inlinePending failed with BACKUP_LOCKED (another object under its name); null otherwise. */
  #materializeLocked: FlushpointError | null = null;
  /** The CHECKPOINT's bytes as prepare() read them (the ETag held is theirs); null: none; undefined: not prepared. */
  #preparedCheckpoint: Uint8Array | null | undefined = undefined;
  #preparedReadFs: FileSystem | null = null;
  readonly #inner: FileSystem;

  constructor(options: S3TargetOptions, inner: FileSystem = nodeFileSystem) {
    this.#o = s3Defaults(options);
    this.location = s3Location(this.#o.bucket, this.#o.prefix);
    this.client = new S3Client({
      ...(this.#o.endpoint === undefined ? {} : { endpoint: this.#o.endpoint }),
      region: this.#o.region,
      credentials: this.#o.credentials,
      forcePathStyle: this.#o.forcePathStyle,
      maxAttempts: this.#o.attemptsCountMax,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK sends `Expect: 100-continue` on bodies >= 2 MiB, and such a request also leaves the
      // keep-alive pool for a new connection: two round trips more per large PUT. A refused PUT (412)
      // costs us at most one body sent for nothing; every flush would pay the round trips.
      expectContinueHeader: false,
      requestHandler: {
        requestTimeout: this.#o.requestTimeoutMs,
        connectionTimeout: this.#o.connectionTimeoutMs,
        // Without this a breached requestTimeout is only a logged warning and the request waits on.
        throwOnRequestTimeout: true,
      },
    });
    // Bodies we send carry Content-MD5, which the store checks: hashing them once more with SHA-256
    // for the signature (what the SDK does over http) protects nothing more and costs a pass.
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers;
        if (headers !== undefined && carriesMd5(headers)) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'flushpointUnsignedPayloadWhenMd5' },
    );
    this.#inner = inner;
    this.readFs = s3ReadFileSystem(this, inner);
  }

  /**
   * The backup as prepare() found it, for the sink's open (adoption.ts): the CHECKPOINT is the very bytes
   * prepare() read, materialized, and whose ETag this target holds; not a second GET, which could see a
   * later checkpoint (a killed writer's, landing late) that no publish of this target has met yet.
   */
  get preparedReadFs(): FileSystem {
    const pinned = this.#preparedCheckpoint;
    assert(pinned !== undefined, 'S3Target.preparedReadFs before prepare()');
    this.#preparedReadFs ??= s3ReadFileSystem(this, this.#inner, () => pinned);
    return this.#preparedReadFs;
  }

  get bucket(): string {
    return this.#o.bucket;
  }

  /** The object key of a file name. */
  key(name: string): string {
    return this.#o.prefix === '' ? name : `${this.#o.prefix}/${name}`;
  }

  async prepare(): Promise<void> {
    const there = await this.#getWithEtag(CHECKPOINT_NAME);
    // A checkpoint whose writer died before storing its inline file under its name: store it now, before
    // any checkpoint of ours (a claim, a flush) replaces the only copy. The same bytes already there are fine.
    if (there !== null) await this.#materializeInlineOf(there.bytes);
    this.#preparedCheckpoint = there === null ? null : there.bytes;
    this.#checkpointEtag = there === null ? null : there.etag;
    // No checkpoint yet: any LSN a late first checkpoint names is beyond "nothing".
    this.#checkpointLsnSeen = there === null ? 0 : checkpointLsnOf(there.bytes);
    for (const name of await this.listFiles()) this.#knownFiles.add(name);
    // Multipart uploads a dead writer left open under this prefix hold storage until aborted.
    const prefix = this.key('');
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.#o.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of r.Uploads ?? []) {
        if (u.Key && u.UploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.#o.bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => {});
      }
      if (!r.IsTruncated) break;
      keyMarker = r.NextKeyMarker;
      uploadIdMarker = r.NextUploadIdMarker;
    }
  }

  /** Size and ETag (unquoted, lower case) of an object, or null when there is none. */
  async headObject(name: string): Promise<{ sizeBytes: number; etag: string } | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key: this.key(name) }));
      return { sizeBytes: r.ContentLength ?? 0, etag: unquote(r.ETag) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async #getWithEtag(name: string): Promise<{ bytes: Uint8Array; etag: string } | null> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key: this.key(name) }));
      assert(r.Body !== undefined, `GET ${this.key(name)} returned no body`);
      const bytes = await r.Body.transformToByteArray();
      if (r.ContentLength !== undefined && bytes.byteLength !== r.ContentLength) {
        throw new Error(`GET ${this.location}/${name}: got ${bytes.byteLength} bytes, Content-Length said ${r.ContentLength}`);
      }
      return { bytes, etag: unquote(r.ETag) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async getFile(name: string): Promise<Uint8Array | null> {
    return (await this.#getWithEtag(name))?.bytes ?? null;
  }

  async listFiles(): Promise<string[]> {
    const prefix = this.key('');
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.#o.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      for (const o of r.Contents ?? []) {
        if (o.Key !== undefined && o.Key.length > prefix.length) out.push(o.Key.slice(prefix.length));
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  async deleteFiles(names: readonly string[]): Promise<void> {
    for (const name of names) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: this.key(name) }));
      this.#stats.filesDeleted++;
    }
  }

  async putFile(name: string, chunks: readonly Uint8Array[]): Promise<PutTimings> {
    const t0 = performance.now();
    const body = Buffer.concat(chunks);
    assert(body.byteLength === chunksBytes(chunks), `body of ${name}`);
    return this.#putBody(name, body, null, t0);
  }

  /** putFile of one Buffer; `knownMd5`: its MD5 when the caller has it already. */
  async #putBody(name: string, body: Buffer, knownMd5: Buffer | null, t0: number): Promise<PutTimings> {
    const multipart = body.byteLength > this.#o.multipartThresholdBytes;
    const digest = multipart ? null : (knownMd5 ?? md5(body));
    const expectedEtag = digest === null ? multipartEtag(body, this.#o.partSizeBytes) : digest.toString('hex');
    let stored: boolean;
    if (multipart) stored = await this.#putMultipart(name, body, expectedEtag);
    else {
      try {
        const r = await this.client.send(
          new PutObjectCommand({ Bucket: this.#o.bucket, Key: this.key(name), Body: body, ContentLength: body.byteLength, ContentMD5: (digest as Buffer).toString('base64'), IfNoneMatch: '*' }),
        );
        if (r.ETag !== undefined && unquote(r.ETag) !== expectedEtag) throw new Error(`PUT ${this.location}/${name}: the store's ETag ${unquote(r.ETag)} is not our MD5 ${expectedEtag}`);
        stored = true;
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
        stored = false;
      }
    }
    const t1 = performance.now();
    if (!stored) {
      await this.#checkAlreadyThere(name, body, expectedEtag);
      this.#stats.alreadyThere++;
    }
    this.#knownFiles.add(name);
    this.#stats.filesPut++;
    this.#stats.bytesPut += body.byteLength;
    return { writeMs: t1 - t0, publishMs: performance.now() - t1 };
  }

  /**
   * Something is stored under `name`: resolves if it is these very bytes, or the same backup file encoded
   * otherwise (both verify and hold the same records as the WAL framed them: another compression or zlib
   * version); BACKUP_LOCKED if not.
   */
  async #checkAlreadyThere(name: string, body: Buffer, expectedEtag: string): Promise<void> {
    const head = await this.headObject(name);
    if (head === null) throw new Error(`PUT ${this.location}/${name} was refused as existing, but there is no such object (deleted meanwhile?)`);
    if (head.sizeBytes === body.byteLength && head.etag === expectedEtag) return;
    // Uploaded another way (another part size) the ETag cannot decide; the bytes, or the records, can.
    const there = await this.#getWithEtag(name);
    if (there !== null && (sha256Hex(there.bytes) === sha256Hex(body) || (await this.#sameBackupFile(name, there.bytes, body)))) return;
    if (there !== null && (await this.#replaceDamaged(name, there, body))) return;
    throw new FlushpointError(
      ErrorCode.BACKUP_LOCKED,
      `${this.location}/${name} already holds other bytes (${head.sizeBytes} bytes, ETag ${head.etag}; ours: ${body.byteLength} bytes, ${expectedEtag}): another sink writes to this prefix; it is not overwritten`,
      { file: `${this.location}/${name}` },
    );
  }

  /**
   * Replaces `there`, the object under the backup file name `name`, with `body` when it does not verify
   * (it holds nothing a reader can use: readers already read the checkpoint's copy, a directory sink
   * replaces such a file too): one PUT If-Match on its ETag, so an object changed meanwhile is never
   * overwritten. False when it verifies or was changed meanwhile.
   */
  async #replaceDamaged(name: string, there: { bytes: Uint8Array; etag: string }, body: Buffer): Promise<boolean> {
    const range = parseBackupFileName(name);
    if (range === null) return false;
    try {
      await decodeBackupFile(`${this.location}/${name}`, there.bytes, { name, ...range });
      return false; // it verifies: another writer's file, never overwritten
    } catch (err) {
      if (!(err instanceof FlushpointError && err.code === ErrorCode.BACKUP_CORRUPT)) throw err;
    }
    const digest = md5(body);
    for (const quoted of this.#ifMatchQuoted ? [true, false] : [false]) {
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.#o.bucket, Key: this.key(name), Body: body, ContentLength: body.byteLength, ContentMD5: digest.toString('base64'), IfMatch: quoted ? `"${there.etag}"` : there.etag }),
        );
        this.#stats.damagedReplaced++;
        return true;
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err; // radosgw 16 wants the bare ETag: the second try
      }
    }
    return false;
  }

  /** Whether `a` and `b`, both stored as `name`, are one backup file: both verify and hold the same records. */
  async #sameBackupFile(name: string, a: Uint8Array, b: Uint8Array): Promise<boolean> {
    const range = parseBackupFileName(name);
    if (range === null) return false;
    try {
      const entry = { name, ...range };
      return sameRecords((await decodeBackupFile(`${this.location}/${name}`, a, entry)).records, (await decodeBackupFile(`${this.location}/${name}`, b, entry)).records);
    } catch (err) {
      if (err instanceof FlushpointError && err.code === ErrorCode.BACKUP_CORRUPT) return false;
      throw err;
    }
  }

  /** Multipart upload; false when the completion found an object already there (If-None-Match). */
  async #putMultipart(name: string, body: Buffer, expectedEtag: string): Promise<boolean> {
    const Bucket = this.#o.bucket;
    const Key = this.key(name);
    if ((await this.headObject(name)) !== null) return false;
    const partsCount = Math.ceil(body.byteLength / this.#o.partSizeBytes);
    assert(partsCount >= 2 && partsCount <= S3_PARTS_COUNT_MAX, `multipart upload of ${body.byteLength} bytes in ${partsCount} parts`);
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const UploadId = created.UploadId;
    assert(UploadId !== undefined, `CreateMultipartUpload ${Key} returned no UploadId`);
    this.#stats.multipartUploads++;
    try {
      const etags: string[] = new Array<string>(partsCount);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < partsCount) {
          const i = next++;
          const part = body.subarray(i * this.#o.partSizeBytes, Math.min(body.byteLength, (i + 1) * this.#o.partSizeBytes));
          const r = await this.client.send(
            new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body: part, ContentLength: part.byteLength, ContentMD5: md5(part).toString('base64') }),
          );
          etags[i] = r.ETag ?? `"${md5(part).toString('hex')}"`;
        }
      };
      await Promise.all(Array.from({ length: Math.min(S3_PARTS_IN_FLIGHT_MAX, partsCount) }, worker));
      // radosgw 16 ignores If-None-Match on CompleteMultipartUpload (measured: it replaced an object):
      // look again right before completing, so only a writer racing within this round trip could be hit.
      if ((await this.headObject(name)) !== null) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {});
        return false;
      }
      try {
        await this.client.send(
          new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
        );
      } catch (err) {
        if (isPreconditionFailed(err)) return false;
        throw err;
      }
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {});
      throw err;
    }
    // RGW answers CompleteMultipartUpload with an empty ETag; HEAD tells what was stored.
    const head = await this.headObject(name);
    if (head === null || head.sizeBytes !== body.byteLength || head.etag !== expectedEtag) {
      throw new Error(`multipart upload of ${this.location}/${name}: stored ${head === null ? 'nothing' : `${head.sizeBytes} bytes, ETag ${head.etag}`}; expected ${body.byteLength} bytes, ${expectedEtag}`);
    }
    return true;
  }

  async publishCheckpoint(bytes: Uint8Array): Promise<PutTimings> {
    const body = Buffer.from(bytes);
    return this.#publishCheckpoint(body, md5(body), null);
  }

  acceptsInline(bytes: number): boolean {
    // An earlier inline file still being stored does not matter: the PUT waits for it (as every checkpoint
    // does), while this flush's reading and hashing overlap it. Measured against the two PUTs with the data
    // PUT beside that store (test/s3/ab-interleaved.mjs ... inflight): 1.5 and 3 ms faster at the median.
    return bytes <= INLINE_FILE_BYTES_MAX;
  }

  async publishCheckpointInline(chunks: readonly Uint8Array[], fileName: string): Promise<PutTimings> {
    const body = Buffer.concat(chunks);
    const fileBytes = body.byteLength - CHECKPOINT_BYTES;
    assert(parseBackupFileName(fileName) !== null && fileBytes > 0, `inline checkpoint for ${fileName}`);
    // The file comes first in the object (format.ts): one MD5 pass gives the file's (for its own PUT
    // after) and, continued over the 48-byte trailer, the checkpoint's.
    const hash = createHash('md5').update(body.subarray(0, fileBytes));
    const fileMd5 = hash.copy().digest();
    const t = await this.#publishCheckpoint(body, hash.update(body.subarray(fileBytes)).digest(), null);
    // Committed: the checkpoint holds the file. Now store it under its name, before any later checkpoint.
    this.#stats.inlineCheckpoints++;
    this.#knownFiles.add(fileName);
    const inline = { name: fileName, bytes: body.subarray(0, fileBytes), md5: fileMd5 };
    this.#inlinePending = inline;
    // Started on the next turn of the event loop, after the flush's waiters heard that their records are durable.
    this.#materializing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#materialize(inline));
    this.#materializing.catch(() => {}); // seen by the next publish, which tries again
    return t;
  }

  async settled(): Promise<void> {
    await this.#materializing?.catch(() => {});
  }

  /** Waits until no inline file is only in the stored checkpoint (starting an attempt when none runs); throws when an attempt fails. */
  async #settleInline(): Promise<void> {
    while (this.#inlinePending !== null) {
      this.#materializing ??= this.#materialize(this.#inlinePending);
      await this.#materializing;
    }
  }

  #materialize(inline: InlinePending): Promise<void> {
    const bytes = Buffer.from(inline.bytes.buffer, inline.bytes.byteOffset, inline.bytes.byteLength); // no copy
    return this.#putBody(inline.name, bytes, inline.md5, performance.now()).then(
      () => {
        this.#stats.inlineMaterialized++;
        this.#materializeLocked = null;
        if (this.#inlinePending === inline) this.#inlinePending = null;
        this.#materializing = null;
      },
      (err: unknown) => {
        this.#stats.inlineMaterializeFailures++;
        this.#materializing = null;
        if (err instanceof FlushpointError && err.code === ErrorCode.BACKUP_LOCKED) {
          // Another writer's object under the name (review decision: never overwritten, never preferred by
          // readers, who report BACKUP_CORRUPT naming both). Nothing is published over the checkpoint, so the
          // acknowledged records stay in it; what to do is the operator's call.
          throw (this.#materializeLocked = new FlushpointError(
            ErrorCode.BACKUP_LOCKED,
            `${this.location}/${inline.name} holds other bytes than the copy ${this.location}/${CHECKPOINT_NAME} carries inline (the records its flush acknowledged): another writer stored it. This sink publishes nothing over that checkpoint. Make sure no other sink writes to ${this.location}, then delete the object ${inline.name}: readers then read the checkpoint's copy, and the next sink's open stores it under the name`,
            { file: `${this.location}/${inline.name}`, cause: err },
          ));
        }
        if (err instanceof FlushpointError) throw err;
        throw new Error(`${this.location}/${inline.name}, held inline by the checkpoint, could not be stored under its name (no checkpoint is published until it is): ${(err as Error)?.message ?? String(err)}`, { cause: err });
      },
    );
  }

  /** If `checkpoint` (stored bytes we are about to replace) carries an inline file, stores it under its name first. */
  async #materializeInlineOf(checkpoint: Uint8Array): Promise<void> {
    const d = decodeCheckpoint(checkpoint);
    // A damaged one: the sink's open reports it, unless the file is stored under its name already (readCheckpoint).
    if (!d.ok || d.value.inline === null) return;
    if (this.#inlinePending?.name !== d.value.inline.name) {
      await this.#settleInline();
      this.#inlinePending = { name: d.value.inline.name, bytes: d.value.inline.bytes, md5: null };
    }
    await this.#settleInline();
  }

  /**
   * The checkpoint's PutObject, built and signed now, held at a gate right before the connection until
   * publish(): the SDK's own work (about 1 ms a request, measured) then overlaps the last data upload.
   * The send starts on the next turn of the event loop, after the data PUT's request went out.
   */
  prepareCheckpoint(bytes: Uint8Array): PreparedCheckpoint {
    assert(this.#checkpointEtag !== undefined, 'S3Target.prepareCheckpoint before prepare()');
    const body = Buffer.from(bytes);
    const digest = md5(body);
    const etag = this.#checkpointEtag;
    const quoted = this.#ifMatchQuoted;
    const preparedAtMs = performance.now();
    let open: () => void = () => {};
    let refuse: (err: Error) => void = () => {};
    const gate = new Promise<void>((resolve, reject) => {
      open = resolve;
      refuse = reject;
    });
    gate.catch(() => {});
    const command = this.#checkpointCommand(body, digest);
    command.middlewareStack.add(
      (next) => async (args) => {
        await gate;
        return next(args);
      },
      { step: 'deserialize', priority: 'low', name: 'flushpointCheckpointGate' },
    );
    let sent: Promise<PutObjectCommandOutput> | null = null;
    const start = setImmediate(() => {
      sent = this.client.send(command);
      sent.catch(() => {});
    });
    let done = false;
    const drop = (why: string): void => {
      clearImmediate(start);
      refuse(Object.assign(new Error(`${this.location}/${CHECKPOINT_NAME}: prepared request not sent: ${why}`), { name: 'CheckpointNotSent' }));
    };
    return {
      publish: async () => {
        assert(!done, 'a prepared checkpoint published twice');
        done = true;
        try {
          await this.#settleInline(); // the last inline file is stored under its name before this replaces it
        } catch (err) {
          drop('the last inline file is not stored under its name');
          throw err;
        }
        // Another publish since, or signed too long ago (the signature ages): build it afresh.
        const stale = sent === null || this.#checkpointEtag !== etag || this.#ifMatchQuoted !== quoted || performance.now() - preparedAtMs > S3_PREPARED_CHECKPOINT_AGE_MS_MAX;
        if (stale) {
          drop('superseded');
          return this.#publishCheckpoint(body, digest, null);
        }
        open();
        return this.#publishCheckpoint(body, digest, sent);
      },
      cancel: () => {
        if (done) return;
        done = true;
        drop('the flush failed before it');
      },
    };
  }

  #checkpointCommand(body: Buffer, digest: Buffer): PutObjectCommand {
    const condition: { IfNoneMatch?: string; IfMatch?: string } =
      this.#checkpointEtag === null ? { IfNoneMatch: '*' } : { IfMatch: this.#ifMatchQuoted ? `"${this.#checkpointEtag}"` : (this.#checkpointEtag as string) };
    return new PutObjectCommand({ Bucket: this.#o.bucket, Key: this.key(CHECKPOINT_NAME), Body: body, ContentLength: body.byteLength, ContentMD5: digest.toString('base64'), ...condition });
  }

  /** Publishes `body`; the first attempt is `first` when a prepared request was just let go. */
  async #publishCheckpoint(body: Buffer, digest: Buffer, first: Promise<PutObjectCommandOutput> | null): Promise<PutTimings> {
    assert(this.#checkpointEtag !== undefined, 'S3Target.publishCheckpoint before prepare()');
    const t0 = performance.now();
    // Never replace a checkpoint whose inline file is not also stored under its own name.
    await this.#settleInline();
    let prepared = first;
    for (let attempt = 0; ; attempt++) {
      this.#checkpointsInDoubt.push(body);
      try {
        const sending = prepared ?? this.client.send(this.#checkpointCommand(body, digest));
        prepared = null; // a prepared request goes once; any further attempt is built afresh
        const r = await sending;
        this.#checkpointEtag = r.ETag ? unquote(r.ETag) : digest.toString('hex');
        this.#checkpointLsnSeen = checkpointLsnOf(body);
        this.#checkpointsInDoubt = [];
        break;
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
        const there = await this.#getWithEtag(CHECKPOINT_NAME);
        if (there !== null && this.#checkpointEtag === there.etag && this.#ifMatchQuoted) {
          // Refused although the ETag is the one we named: this store (radosgw 16) compares If-Match
          // with the unquoted ETag only. Ask again in its spelling (no change happened meanwhile).
          this.#ifMatchQuoted = false;
          this.#checkpointsInDoubt.pop();
          attempt--;
          continue;
        }
        const ours = there !== null && this.#checkpointsInDoubt.some((b) => Buffer.compare(b, there.bytes) === 0);
        if (!ours && there !== null && attempt < S3_CHECKPOINT_REPUBLISH_COUNT_MAX && (await this.#isLateCheckpointOfThisBackup(there.bytes, body))) {
          // A killed writer's checkpoint PUT, in flight when it died, landed after we read the prefix:
          // it names only what we saw or wrote ourselves, up to no further than we publish. Continue from it
          // (its inline file, if any, stored under its name first: we are about to replace it).
          await this.#continueFrom(there);
          this.#stats.checkpointTakeovers++;
          continue;
        }
        if (!ours || attempt >= S3_CHECKPOINT_REPUBLISH_COUNT_MAX) {
          throw new FlushpointError(
            ErrorCode.BACKUP_LOCKED,
            `${this.location}/${CHECKPOINT_NAME} was changed by another writer (${this.#checkpointEtag === null ? 'it did not exist when this sink started' : `expected ETag ${this.#checkpointEtag}`}, now ${there === null ? 'deleted' : `ETag ${there.etag}`}): a second sink on this prefix; this one stops publishing`,
            { file: `${this.location}/${CHECKPOINT_NAME}`, cause: err },
          );
        }
        // An earlier attempt of ours landed after its client-side timeout: continue from it (its inline
        // file, if any, stored under its name first).
        await this.#continueFrom(there);
        this.#stats.checkpointSelfConflicts++;
        if (Buffer.compare(there.bytes, body) === 0) break;
      }
    }
    this.#stats.checkpointsPublished++;
    return { writeMs: performance.now() - t0, publishMs: 0 };
  }

  /** The stored checkpoint `there` is the one to replace next: its inline file, if any, stored under its name first. */
  async #continueFrom(there: { bytes: Uint8Array; etag: string }): Promise<void> {
    await this.#materializeInlineOf(there.bytes);
    this.#checkpointEtag = there.etag;
    this.#checkpointLsnSeen = checkpointLsnOf(there.bytes);
    this.#checkpointsInDoubt = [];
  }

  /**
   * Whether `theirs`, a checkpoint another writer published since this target last saw the prefix, is
   * the late checkpoint of a writer that is gone (the killed sink's last PUT, in flight when it died,
   * which the store applied after we read the prefix). It is, if it belongs to this very backup (same
   * start LSN), lies between the checkpoint we last saw and the one we publish now, every data file
   * beyond the checkpoint we last saw is one we saw at prepare() or put ourselves (a writer that is
   * alive and writing puts data files of its own; a killed sink has at most one request in flight, a
   * flush's data PUT or after them its checkpoint PUT, so its late checkpoint comes with no late file),
   * and those files, with the file our own checkpoint carries inline, still cover every LSN up to ours (a
   * writer that took the prefix over may have removed files we put). A file `theirs` carries inline is
   * data of theirs that no listing shows yet (a live writer stores it under its name only after its
   * checkpoint): it counts like a file we do not know, unless its records are byte for byte the ones our
   * files (and our inline file) hold for those LSNs, as a killed writer's of this very WAL are. Anything
   * else stays BACKUP_LOCKED.
   */
  async #isLateCheckpointOfThisBackup(theirs: Uint8Array, ours: Uint8Array): Promise<boolean> {
    const t = decodeCheckpoint(theirs);
    const o = decodeCheckpoint(ours);
    const seen = this.#checkpointLsnSeen;
    if (!t.ok || !o.ok || seen === null || t.value.startLsn === null || t.value.startLsn !== o.value.startLsn) return false;
    if (t.value.checkpointLsn < seen || t.value.checkpointLsn > o.value.checkpointLsn) return false;
    // What the bucket holds beyond the checkpoint we saw: only files we know, and they must cover every
    // LSN up to the one we publish (a writer that took the prefix over may have removed ours).
    const known: BackupFileEntry[] = [];
    for (const name of await this.listFiles()) {
      const range = parseBackupFileName(name);
      if (range === null) continue;
      if (!this.#knownFiles.has(name)) {
        if (range.lastLsn > seen) return false;
        continue;
      }
      known.push({ name, ...range });
    }
    const mine = o.value.inline;
    const beyondSeen = [...known.filter((f) => f.lastLsn > seen), ...(mine === null ? [] : [mine])];
    if (coveredUpTo(beyondSeen, Math.max(seen, o.value.startLsn - 1) + 1) <= o.value.checkpointLsn) return false;
    return t.value.inline === null || (await this.#holdsSameRecords(t.value.inline, known, mine));
  }

  /** Whether every record of `inline` (another writer's) is, byte for byte, in the files we know or our own inline file. */
  async #holdsSameRecords(inline: InlineFile, known: readonly BackupFileEntry[], mine: InlineFile | null): Promise<boolean> {
    const checkpointPath = `${this.location}/${CHECKPOINT_NAME}`;
    const overlaps = (f: { firstLsn: number; lastLsn: number }): boolean => f.firstLsn <= inline.lastLsn && f.lastLsn >= inline.firstLsn;
    const sources = known.filter(overlaps);
    if (coveredUpTo([...sources, ...(mine !== null && overlaps(mine) ? [mine] : [])], inline.firstLsn) <= inline.lastLsn) return false;
    const usable: Array<{ firstLsn: number; lastLsn: number }> = [];
    try {
      const theirs = (await decodeBackupFile(checkpointPath, inline.bytes, inline)).records;
      const same = (records: readonly BodyRecord[]): boolean =>
        records.every((r) => r.lsn < inline.firstLsn || r.lsn > inline.lastLsn || Buffer.compare(r.record, (theirs[r.lsn - inline.firstLsn] as BodyRecord).record) === 0);
      if (mine !== null && overlaps(mine)) {
        if (!same((await decodeBackupFile(checkpointPath, mine.bytes, mine)).records)) return false;
        usable.push(mine);
      }
      for (const f of sources) {
        const records = await this.#recordsIfReadable(f);
        if (records === null) continue; // damaged or deleted since the listing: the others may still cover its LSNs
        if (!same(records)) return false;
        usable.push(f);
      }
    } catch (err) {
      if (err instanceof FlushpointError && err.code === ErrorCode.BACKUP_CORRUPT) return false; // nothing to vouch for them
      throw err;
    }
    return coveredUpTo(usable, inline.firstLsn) > inline.lastLsn;
  }

  /** A known file's records; null when it no longer verifies or is gone (deleted between the listing and this read). */
  async #recordsIfReadable(f: BackupFileEntry): Promise<BodyRecord[] | null> {
    try {
      return (await readBackupFile(this.readFs, this.location, f)).records;
    } catch (err) {
      if ((err instanceof FlushpointError && err.code === ErrorCode.BACKUP_CORRUPT) || (err as NodeJS.ErrnoException)?.code === 'ENOENT') return null;
      throw err;
    }
  }

  stats(): S3TargetStats {
    return { ...this.#stats };
  }

  /**
   * Lets a running materialization end first (if it fails, the file stays in the checkpoint: the next open
   * stores it). Rejects with BACKUP_LOCKED when the inline file is still only in the checkpoint because
   * another object holds its name: the operator must act before readers can read that range (the
   * message says how); a caller must not take a clean close for a backup that readers refuse.
   */
  async close(): Promise<void> {
    await this.settled();
    this.client.destroy();
    if (this.#inlinePending !== null && this.#materializeLocked !== null) throw this.#materializeLocked;
  }
}
