/**
 * AdminTarget: what the admin endpoint needs from the thing it administers. The server (server.ts)
 * speaks HTTP and maps errors to status codes; the target does the work. The Engine implements it
 * (through walAdminTarget in wal-target.ts, over its WAL, backup sink and drain), and so can a test.
 *
 * Errors: a target reports failures by rejecting with a FlushpointError; the server maps its code
 * (FLUSH_IN_PROGRESS 409, FLUSH_TIMEOUT 504, ENGINE_DRAINING/WAL_CLOSED 503, anything else 500).
 */
import type { ForceFlushMode } from '../../backup/index.js';

export interface AdminForceFlushRequest {
  mode: ForceFlushMode;
  /** How long the caller waits for the backup checkpoint, in ms. */
  timeoutMs: number;
}

export interface AdminDrainRequest {
  /** How long the drain may take, in ms. */
  timeoutMs: number;
}

export interface AdminForceFlushResult {
  /** wal.lastLsn when the call was made. */
  targetLsn: number;
  /** The backup checkpoint when the call returned (barrier: >= targetLsn). */
  checkpointLsn: number;
  /** The WAL's durable LSN when the call returned. */
  walDurableLsn: number;
  flushesJoined: number;
  flushesRun: number;
  waitedMs: number;
}

export interface DrainResult {
  /** Every write accepted before the drain is durable in the WAL up to this LSN. */
  walDurableLsn: number;
  /** The backup's checkpoint: >= walDurableLsn (null when there is no backup sink). */
  backupCheckpointLsn: number | null;
  waitedMs: number;
}

/** GET /status: a JSON object. The target decides what it holds; walStatusOf gives the WAL + backup part. */
export type AdminStatus = Record<string, unknown>;

export interface AdminMetrics {
  contentType: string;
  text: string;
}

export interface AdminTarget {
  status(): AdminStatus;
  forceFlush(request: AdminForceFlushRequest): Promise<AdminForceFlushResult>;
  drain(request: AdminDrainRequest): Promise<DrainResult>;
  metrics(): Promise<AdminMetrics>;
}
