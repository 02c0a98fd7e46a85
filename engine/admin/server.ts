/**
 * AdminServer: HTTP (node:http) on a Unix socket created with mode 0600 (socket.ts).
 *
 *   GET  /status        200 target.status()
 *   POST /force-flush   { mode?, timeoutMs? } -> 200 target.forceFlush(...)
 *   POST /drain         { timeoutMs? }        -> 200 target.drain(...)
 *   GET  /metrics       200 Prometheus text
 *
 * Every answer is JSON (but /metrics) and carries the `x-flushpoint-admin` header. Errors answer
 * `{ error: { code, message, ...details } }` with a status code chosen by the error's code (statusOf).
 * A request is checked whole before the target sees it: a malformed one (bad JSON, unknown fields, a
 * wrong type or value, a body over ADMIN_BODY_BYTES_MAX) is answered 400/413 and never reaches it.
 * A client that does not send its whole request within requestTimeoutMs is answered 408 and dropped.
 */
import http from 'node:http';
import { ErrorCode, FlushpointError, assert } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import {
  ADMIN_BODY_BYTES_MAX,
  ADMIN_CLOSE_ANSWER_MS,
  ADMIN_CONNECTIONS_COUNT_MAX,
  ADMIN_HEADER,
  ADMIN_HEADERS_TIMEOUT_MS_DEFAULT,
  ADMIN_KEEP_ALIVE_TIMEOUT_MS,
  ADMIN_OPERATION_TIMEOUT_MS_DEFAULT,
  ADMIN_OPERATION_TIMEOUT_MS_MAX,
  ADMIN_PROTOCOL_VERSION,
  ADMIN_REQUEST_TIMEOUT_MS_DEFAULT,
} from './limits.js';
import { checkSocketPath, listenOnUnixSocket, removeSocket, type SocketIdentity } from './socket.js';
import type { AdminTarget } from './target.js';

export interface AdminServerOptions {
  /** Path of the Unix socket (mode 0600). A stale socket there is replaced; a live one is refused. */
  socketPath: string;
  /** Time a client has to send its whole request, in ms. Default 10000. */
  requestTimeoutMs?: number;
  /** timeoutMs of a force-flush or drain request that gives none, in ms. Default 60000. */
  operationTimeoutMsDefault?: number;
  /** Optional pino-style logger: requests that failed, and the server's start and stop. */
  logger?: Logger;
}

/** A request the server refuses before the target sees it: its HTTP status and the error's code. */
class BadRequest extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status for an error a target rejected with. */
export function statusOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case ErrorCode.FLUSH_IN_PROGRESS:
      return 409;
    case ErrorCode.FLUSH_TIMEOUT:
      return 504;
    case ErrorCode.BACKUP_NOT_FOUND:
      return 404; // force-flush on an engine that runs no backup: nothing there, not a server failure
    case 'ENGINE_DRAINING':
    case 'ENGINE_CLOSED':
    case ErrorCode.WAL_CLOSED:
      return 503;
    default:
      return 500;
  }
}

/** The JSON body for an error: its code, its first message line, and the LSNs it carries. */
function errorBody(err: unknown): { error: Record<string, unknown> } {
  const e = err as Partial<FlushpointError> & { walDurableLsn?: number; backupCheckpointLsn?: number | null };
  const code = typeof e?.code === 'string' ? e.code : 'INTERNAL';
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  const body: Record<string, unknown> = { code, message };
  for (const key of ['lsn', 'reachedLsn', 'walDurableLsn', 'backupCheckpointLsn', 'file'] as const) {
    if (e[key] !== undefined) body[key] = e[key];
  }
  return { error: body };
}

const FORCE_FLUSH_MODES = new Set(['barrier', 'join', 'reject']);

function parseBody(text: string, allowed: readonly string[]): Record<string, unknown> {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequest(400, 'BAD_REQUEST', 'the body is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BadRequest(400, 'BAD_REQUEST', 'the body must be a JSON object');
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new BadRequest(400, 'BAD_REQUEST', `unknown field '${key}' (allowed: ${allowed.join(', ')})`);
  }
  return value as Record<string, unknown>;
}

function timeoutOf(body: Record<string, unknown>, fallbackMs: number): number {
  const t = body.timeoutMs;
  if (t === undefined) return fallbackMs;
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0 || t > ADMIN_OPERATION_TIMEOUT_MS_MAX) {
    throw new BadRequest(400, 'BAD_REQUEST', `timeoutMs must be a whole number of ms in [0, ${ADMIN_OPERATION_TIMEOUT_MS_MAX}], got ${JSON.stringify(t)}`);
  }
  return t;
}

export class AdminServer {
  readonly socketPath: string;
  readonly #server: http.Server;
  readonly #target: AdminTarget;
  readonly #logger: Logger | undefined;
  readonly #operationTimeoutMs: number;
  #socket: SocketIdentity | null = null;
  #closing: Promise<void> | null = null;
  /** Requests not answered yet: answered 503 at close (see #close). */
  readonly #inFlight = new Set<http.ServerResponse>();

  private constructor(target: AdminTarget, o: AdminServerOptions, socketPath: string) {
    this.#target = target;
    this.socketPath = socketPath;
    this.#logger = o.logger;
    this.#operationTimeoutMs = o.operationTimeoutMsDefault ?? ADMIN_OPERATION_TIMEOUT_MS_DEFAULT;
    const requestTimeoutMs = o.requestTimeoutMs ?? ADMIN_REQUEST_TIMEOUT_MS_DEFAULT;
    this.#server = http.createServer(
      {
        requestTimeout: requestTimeoutMs,
        headersTimeout: Math.min(ADMIN_HEADERS_TIMEOUT_MS_DEFAULT, requestTimeoutMs),
        keepAliveTimeout: ADMIN_KEEP_ALIVE_TIMEOUT_MS,
        connectionsCheckingInterval: Math.max(100, Math.min(1000, requestTimeoutMs / 4)),
      },
      (req, res) => {
        this.#inFlight.add(res);
        res.once('close', () => this.#inFlight.delete(res));
        void this.#handle(req, res);
      },
    );
    this.#server.maxConnections = ADMIN_CONNECTIONS_COUNT_MAX;
    // A garbage request: answer 400 if the socket can still take it, then drop the connection.
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') {
        const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
        socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      }
      socket.destroy();
    });
  }

  /** Starts the server on options.socketPath. ADMIN_SOCKET_IN_USE if a live server (or a non-socket) is there. */
  static async listen(target: AdminTarget, options: AdminServerOptions): Promise<AdminServer> {
    if (options === null || typeof options !== 'object') throw new TypeError('admin options must be an object');
    for (const name of ['requestTimeoutMs', 'operationTimeoutMsDefault'] as const) {
      const v = options[name];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 1 || v > ADMIN_OPERATION_TIMEOUT_MS_MAX)) throw new RangeError(`${name} must be a whole number of ms >= 1`);
    }
    const socketPath = checkSocketPath(options.socketPath);
    const server = new AdminServer(target, options, socketPath);
    server.#socket = await listenOnUnixSocket(server.#server, socketPath);
    options.logger?.info({ socketPath }, 'admin endpoint listening');
    return server;
  }

  /** Stops accepting, ends every connection, and removes the socket file (if it is still ours). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Stops accepting, answers every request not answered yet 503 WAL_CLOSED (its operation may still
   * finish inside the engine's close, which flushes all it can), lets those answers leave for up to
   * ADMIN_CLOSE_ANSWER_MS, then ends every connection. Before, a drain or force-flush in flight got a
   * connection reset, which the CLI reads as an unreachable socket (exit 10) instead of a refusal (exit 7).
   */
  async #close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const answered: Array<Promise<void>> = [];
    for (const res of this.#inFlight) {
      answered.push(new Promise<void>((resolve) => res.once('close', () => resolve())));
      send(res, 503, { error: { code: ErrorCode.WAL_CLOSED, message: 'the engine is closing: this request was not finished (its operation may still complete as the engine closes; ask status after the restart)' } }, undefined, true);
    }
    // Only answers in flight are waited for (a connection that sent nothing, a health checker's, must not
    // hold close for the whole grace).
    if (answered.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(answered), new Promise<void>((resolve) => (timer = setTimeout(resolve, ADMIN_CLOSE_ANSWER_MS)))]);
      clearTimeout(timer);
    }
    this.#server.closeAllConnections();
    await closed;
    if (this.#socket) await removeSocket(this.#socket);
    this.#logger?.info({ socketPath: this.socketPath }, 'admin endpoint closed');
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const route = `${req.method} ${(req.url ?? '').split('?')[0]}`;
      const known = ['GET /status', 'POST /force-flush', 'POST /drain', 'GET /metrics'];
      if (!known.includes(route)) {
        await discardBody(req);
        const pathKnown = known.some((k) => k.endsWith(` ${(req.url ?? '').split('?')[0]}`));
        throw pathKnown ? new BadRequest(405, 'METHOD_NOT_ALLOWED', `${route} is not a route (${known.join(', ')})`) : new BadRequest(404, 'NOT_FOUND', `no route ${route}`);
      }
      const text = await readBody(req);
      switch (route) {
        case 'GET /status':
          parseBody(text, []);
          return send(res, 200, this.#target.status());
        case 'GET /metrics': {
          parseBody(text, []);
          const m = await this.#target.metrics();
          return send(res, 200, m.text, m.contentType);
        }
        case 'POST /force-flush': {
          const body = parseBody(text, ['mode', 'timeoutMs']);
          const mode = body.mode ?? 'barrier';
          if (typeof mode !== 'string' || !FORCE_FLUSH_MODES.has(mode)) throw new BadRequest(400, 'BAD_REQUEST', `mode must be 'barrier', 'join' or 'reject', got ${JSON.stringify(mode)}`);
          const timeoutMs = timeoutOf(body, this.#operationTimeoutMs);
          return send(res, 200, await this.#target.forceFlush({ mode: mode as 'barrier' | 'join' | 'reject', timeoutMs }));
        }
        case 'POST /drain': {
          const body = parseBody(text, ['timeoutMs']);
          const timeoutMs = timeoutOf(body, this.#operationTimeoutMs);
          const result = await this.#target.drain({ timeoutMs });
          assert(result.backupCheckpointLsn === null || result.backupCheckpointLsn >= result.walDurableLsn, `drain answered checkpoint ${result.backupCheckpointLsn} below the durable LSN ${result.walDurableLsn}`);
          return send(res, 200, result);
        }
      }
    } catch (err) {
      if (err instanceof BadRequest) {
        send(res, err.status, { error: { code: err.code, message: err.message } }, undefined, err.status === 413);
        return;
      }
      const status = statusOf(err);
      if (status === 500) this.#logger?.error({ err, url: req.url }, 'admin request failed');
      send(res, status, errorBody(err));
    }
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, contentType?: string, closeAfter = false): void {
  if (res.headersSent || res.destroyed) return;
  const text = contentType === undefined ? JSON.stringify(body) + '\n' : String(body);
  res.writeHead(status, {
    'content-type': contentType ?? 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    [ADMIN_HEADER]: ADMIN_PROTOCOL_VERSION,
    ...(closeAfter ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** The request body as text, at most ADMIN_BODY_BYTES_MAX bytes (413 past that, the rest never read). */
function readBody(req: http.IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > ADMIN_BODY_BYTES_MAX) return Promise.reject(new BadRequest(413, 'BODY_TOO_LARGE', `the body is ${declared} bytes; at most ${ADMIN_BODY_BYTES_MAX}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > ADMIN_BODY_BYTES_MAX) {
        req.pause();
        reject(new BadRequest(413, 'BODY_TOO_LARGE', `the body is over ${ADMIN_BODY_BYTES_MAX} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
    req.once('aborted', () => reject(new BadRequest(400, 'BAD_REQUEST', 'the client went away')));
  });
}

async function discardBody(req: http.IncomingMessage): Promise<void> {
  await readBody(req).catch(() => {});
}
