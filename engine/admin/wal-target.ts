/**
 * walAdminTarget: the AdminTarget over a WAL and its backup sink. The Engine builds one from its own
 * WAL, sink, drain and metrics; tests build one from a bare Wal + BackupSink.
 */
import { ErrorCode, FlushpointError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { BackupSink } from '../../backup/index.js';
import type { Wal } from '../../wal/index.js';
import type { EngineMetrics } from '../metrics.js';
import type { DrainOptions } from './drain.js';
import type { AdminForceFlushRequest, AdminForceFlushResult, AdminStatus, AdminTarget, DrainResult } from './target.js';

export interface WalAdminSources {
  /** The WAL and the sink, or null once closed (requests then answer 503 WAL_CLOSED). */
  sources: () => { wal: Wal; sink: BackupSink | null } | null;
  /** The drain to run (the engine's: it refuses new writes first, then runs its Drainer). */
  drain: (options: DrainOptions) => Promise<DrainResult>;
  metrics: () => EngineMetrics | null;
  /** Extra fields for GET /status (the engine's own status, draining flag...). */
  status?: () => Record<string, unknown>;
  /** Logs force-flushes that waited for a flush (with mode and waitedMs) and those that failed. */
  logger?: Logger;
}

/** GET /status's WAL and backup part: LSNs, lag, status, last error. */
export function walStatusOf(wal: Wal, sink: BackupSink | null): AdminStatus {
  const w = wal.stats();
  const b = sink?.stats() ?? null;
  return {
    wal: { status: w.status, firstLsn: w.firstLsn, lastLsn: w.lastLsn, durableLsn: w.durableLsn, pendingRecords: w.pendingRecords, segments: w.segments, failure: w.failure },
    backup:
      b === null || sink === null
        ? null
        : { dir: sink.dir, status: b.status, paused: b.paused, flushing: b.flushing, checkpointLsn: b.checkpointLsn, lag: b.lag, flushes: b.flushes, flushFailures: b.flushFailures, lastError: b.lastError },
  };
}

function closed(): FlushpointError {
  return new FlushpointError(ErrorCode.WAL_CLOSED, 'the engine is closed');
}

export function walAdminTarget(o: WalAdminSources): AdminTarget {
  return {
    status() {
      const s = o.sources();
      if (s === null) return { status: 'closed', ...o.status?.() };
      return { ...o.status?.(), ...walStatusOf(s.wal, s.sink) };
    },
    async forceFlush(request: AdminForceFlushRequest): Promise<AdminForceFlushResult> {
      const s = o.sources();
      if (s === null) throw closed();
      if (s.sink === null) throw new FlushpointError(ErrorCode.BACKUP_NOT_FOUND, 'this engine runs no backup sink: nothing to force-flush');
      const started = performance.now();
      try {
        const r = await s.sink.forceFlush({ mode: request.mode, timeoutMs: request.timeoutMs });
        if (r.flushesJoined + r.flushesRun > 0) o.logger?.info({ mode: request.mode, ...r }, 'admin force-flush waited');
        return { ...r, walDurableLsn: s.wal.durableLsn };
      } catch (err) {
        o.logger?.warn({ mode: request.mode, err, waitedMs: performance.now() - started }, 'admin force-flush failed');
        throw err;
      }
    },
    async drain(request) {
      if (o.sources() === null) throw closed();
      return await o.drain({ timeoutMs: request.timeoutMs });
    },
    async metrics() {
      const m = o.metrics();
      if (m === null) throw closed();
      return await m.text();
    },
  };
}
