/**
 * EngineAdmin: what the Engine holds for drain, metrics and its admin endpoint, so that the Engine's
 * own hunks stay small: one open after the sink, one close before it, a flag check in the write path,
 * and drain()/resume() forwarding here.
 *
 *   drain(o)   sets `draining` (the engine refuses new writes with ENGINE_DRAINING from then on), then
 *              runs the Drainer: writes stay refused after it returns, or after it fails, until resume()
 *   resume()   accepts writes again
 */
import { ErrorCode, FlushpointError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { BackupSink } from '../../backup/index.js';
import type { Wal } from '../../wal/index.js';
import { createEngineMetrics, type EngineMetrics, type EngineMetricsStats } from '../metrics.js';
import type { SyncTimer } from '../metrics-fs.js';
import { checkDrainOptions, Drainer, type DrainOptions } from './drain.js';
import { AdminServer } from './server.js';
import type { DrainResult } from './target.js';
import { walAdminTarget } from './wal-target.js';

/** The engine's `admin` option. */
export interface EngineAdminOptions {
  /** Path of the admin endpoint's Unix socket (created mode 0600; a stale one is replaced, a live one refused). */
  socketPath: string;
  /** Time a client has to send its whole request, in ms. Default 10000. */
  requestTimeoutMs?: number;
}

export interface EngineAdminSources {
  wal: Wal;
  sink: BackupSink | null;
  /** The timer wrapped around the WAL's file system (for the fsync histogram), if any. */
  syncTimer?: SyncTimer;
  /** The admin endpoint; none when undefined (drain and metrics still work). */
  admin?: EngineAdminOptions;
  logger?: Logger;
  /** The engine's own part of GET /status. */
  status: () => Record<string, unknown>;
  /** The engine's own figures for GET /metrics. */
  engine?: () => EngineMetricsStats;
}

export class EngineAdmin {
  readonly drainer: Drainer;
  /**
   * The Prometheus metrics, read only through the admin endpoint (GET /metrics): null without one, so an
   * engine without an endpoint does no metrics work per commit (a 'durable' listener and its histogram).
   */
  readonly metrics: EngineMetrics | null;
  #server: AdminServer | null = null;
  #draining = false;
  #closed = false;
  readonly #logger: Logger | undefined;

  private constructor(s: EngineAdminSources) {
    this.#logger = s.logger;
    this.drainer = new Drainer({ wal: s.wal, sink: s.sink });
    this.metrics = s.admin === undefined ? null : createEngineMetrics({ wal: s.wal, sink: s.sink, drainer: this.drainer, ...(s.syncTimer ? { syncTimer: s.syncTimer } : {}), ...(s.engine ? { engine: s.engine } : {}) });
  }

  static async open(s: EngineAdminSources): Promise<EngineAdmin> {
    const a = new EngineAdmin(s);
    if (s.admin !== undefined) {
      const target = walAdminTarget({
        sources: () => (a.#closed ? null : { wal: s.wal, sink: s.sink }),
        drain: (o) => a.drain(o),
        metrics: () => (a.#closed ? null : a.metrics),
        status: () => ({ ...s.status(), draining: a.#draining }),
        ...(s.logger ? { logger: s.logger } : {}),
      });
      try {
        a.#server = await AdminServer.listen(target, { ...s.admin, ...(s.logger ? { logger: s.logger } : {}) });
      } catch (err) {
        a.metrics?.close();
        throw err;
      }
    }
    return a;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** The admin socket's path, or null when there is no endpoint. */
  get socketPath(): string | null {
    return this.#server?.socketPath ?? null;
  }

  /** The error a write gets while draining. */
  drainingError(location: string): FlushpointError {
    return new FlushpointError(ErrorCode.ENGINE_DRAINING, `engine at ${location} is draining: writes are refused until resume() or restart`);
  }

  /** Refuses new writes from now on, then waits until every accepted write is durable in the WAL and the backup. */
  async drain(options: DrainOptions = {}): Promise<DrainResult> {
    if (this.#closed) throw new FlushpointError(ErrorCode.WAL_CLOSED, 'the engine is closed');
    checkDrainOptions(options); // wrong arguments leave the engine as it was, taking writes
    this.#draining = true;
    const started = performance.now();
    try {
      const r = await this.drainer.drain(options);
      this.#logger?.info({ ...r }, 'drained');
      return r;
    } catch (err) {
      this.#logger?.warn({ err, waitedMs: performance.now() - started }, 'drain failed; writes stay refused until resume()');
      throw err;
    }
  }

  resume(): void {
    this.#draining = false;
  }

  /** Closes the endpoint (first, so no request reaches a closing engine) and the metrics' subscriptions. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#server?.close();
    this.metrics?.close();
  }
}
