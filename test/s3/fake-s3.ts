/**
 * A tiny in-process S3 look-alike on loopback, for the S3 target's decision logic in `npm test` (no Ceph):
 * path-style PUT/GET/HEAD/DELETE of objects with If-None-Match / If-Match and Content-MD5, ListObjectsV2,
 * an empty ListMultipartUploads. No auth, no multipart: the real radosgw tests (test:s3) cover the rest.
 *
 *   bareIfMatchOnly   compare If-Match with the bare ETag only, as radosgw 16 does
 *   stall()           hold every request from now on; release() applies them and answers (a client that
 *                     timed out meanwhile gets nothing, but its write lands: a paused gateway waking up)
 *   holdWhere(fn)     the same for the requests fn(method, key) picks only; the others are served
 *   drop()            the held requests are never applied: their connections are cut (a writer killed
 *                     before its request reached the store), and nothing is held from now on
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

interface StoredObject {
  bytes: Buffer;
  etag: string;
}

const xmlError = (code: string): string => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`;
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export class FakeS3 {
  readonly buckets = new Map<string, Map<string, StoredObject>>();
  readonly requests: string[] = [];
  /** Each request as it arrived (held ones too): method, key, headers, the client's port (the same port: the same kept-alive connection). */
  readonly seen: Array<{ method: string; key: string; headers: http.IncomingHttpHeaders; clientPort: number }> = [];
  bareIfMatchOnly = false;
  #server: http.Server;
  /** Resolves true (apply the held requests) or false (drop them). */
  #gate: Promise<boolean> | null = null;
  #openGate: ((apply: boolean) => void) | null = null;
  #holds: ((method: string, key: string) => boolean) | null = null;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(): Promise<FakeS3> {
    let fake: FakeS3 | null = null;
    const server = http.createServer((req, res) => void fake!.#handle(req, res));
    fake = new FakeS3(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  stall(): void {
    this.#holds = null;
    this.#gate ??= new Promise<boolean>((resolve) => (this.#openGate = resolve));
  }

  holdWhere(holds: (method: string, key: string) => boolean): void {
    this.stall();
    this.#holds = holds;
  }

  release(): void {
    this.#open(true);
  }

  drop(): void {
    this.#open(false);
  }

  #open(apply: boolean): void {
    this.#openGate?.(apply);
    this.#gate = null;
    this.#openGate = null;
    this.#holds = null;
  }

  object(bucket: string, key: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.get(key);
  }

  put(bucket: string, key: string, bytes: Buffer): void {
    this.buckets.get(bucket)!.set(key, { bytes, etag: createHash('md5').update(bytes).digest('hex') });
  }

  async close(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://x');
    const [, bucketName = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    this.seen.push({ method: req.method ?? '', key: key || bucketName, headers: req.headers, clientPort: req.socket.remotePort ?? 0 });
    if (this.#gate && (this.#holds === null || this.#holds(req.method ?? '', key)) && !(await this.#gate)) {
      req.socket.destroy();
      return;
    }
    this.requests.push(`${req.method} ${key || bucketName}${req.headers['if-match'] ? ' if-match' : ''}${req.headers['if-none-match'] ? ' if-none-match' : ''}`);
    const send = (status: number, payload = '', headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/xml', ...headers });
      res.end(req.method === 'HEAD' ? undefined : payload);
    };
    if (key === '') {
      if (req.method === 'PUT') {
        this.buckets.set(bucketName, new Map());
        return send(200);
      }
      const bucket = this.buckets.get(bucketName);
      if (!bucket) return send(404, xmlError('NoSuchBucket'));
      if (url.searchParams.has('uploads')) return send(200, `<?xml version="1.0"?><ListMultipartUploadsResult><Bucket>${bucketName}</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`);
      const prefix = url.searchParams.get('prefix') ?? '';
      const keys = [...bucket.keys()].filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).sort();
      const contents = keys.map((k) => `<Contents><Key>${esc(k)}</Key><Size>${bucket.get(k)!.bytes.length}</Size><ETag>"${bucket.get(k)!.etag}"</ETag></Contents>`).join('');
      return send(200, `<?xml version="1.0"?><ListBucketResult><Name>${bucketName}</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`);
    }
    const bucket = this.buckets.get(bucketName);
    if (!bucket) return send(404, xmlError('NoSuchBucket'));
    const existing = bucket.get(key);
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (!existing) return send(404, xmlError('NoSuchKey'));
      res.writeHead(200, { etag: `"${existing.etag}"`, 'content-length': String(existing.bytes.length), 'content-type': 'application/octet-stream' });
      return void res.end(req.method === 'HEAD' ? undefined : existing.bytes);
    }
    if (req.method === 'DELETE') {
      bucket.delete(key);
      return send(204);
    }
    if (req.method === 'PUT') {
      const md5 = createHash('md5').update(body);
      const digest = md5.digest();
      if (req.headers['content-md5'] !== undefined && req.headers['content-md5'] !== digest.toString('base64')) return send(400, xmlError('BadDigest'));
      const ifNoneMatch = req.headers['if-none-match'];
      const ifMatch = req.headers['if-match'];
      if (ifNoneMatch === '*' && existing) return send(412, xmlError('PreconditionFailed'));
      if (ifMatch !== undefined) {
        const wanted = this.bareIfMatchOnly ? ifMatch : ifMatch.replace(/^"|"$/g, '');
        if (!existing || wanted !== existing.etag) return send(412, xmlError('PreconditionFailed'));
      }
      bucket.set(key, { bytes: body, etag: digest.toString('hex') });
      return send(200, '', { etag: `"${digest.toString('hex')}"` });
    }
    send(405, xmlError('MethodNotAllowed'));
  }
}
