/**
 * installShutdownHandlers(db, { timeoutMs }): on SIGTERM or SIGINT, drain the database (WAL durable,
 * backup barrier), close it, and exit: 0 only when the drain and the close both succeeded, 1 otherwise.
 * The close has its own deadline (closeTimeoutMs, default the larger of timeoutMs and 60 s: a close
 * waits for a running checkpoint, which may take longer than a drain): a close that hangs (a backup
 * target whose calls never return: the sink's final flush waits for them) exits 1 when it runs out,
 * instead of leaving the process up until the orchestrator kills it. A write acknowledged before is
 * durable in the WAL either way (acknowledged means fdatasync returned).
 * A second signal while that runs exits 130 at once (the operator insisted). Returns the uninstaller.
 */
import type { Logger } from '../../core/logger.js';
import type { DrainOptions } from './drain.js';
import type { DrainResult } from './target.js';

export interface Drainable {
  drain(options: DrainOptions): Promise<DrainResult>;
  close(): Promise<void>;
}

export interface ShutdownOptions {
  /** How long the drain may take, in ms. */
  timeoutMs: number;
  /** How long the close after it may take, in ms; then the process exits 1. Default the larger of timeoutMs and SHUTDOWN_CLOSE_TIMEOUT_MS_DEFAULT. */
  closeTimeoutMs?: number;
  /** Default ['SIGTERM', 'SIGINT']. */
  signals?: readonly NodeJS.Signals[];
  logger?: Logger;
  /** Default process.exit (tests pass their own). */
  exit?: (code: number) => void;
}

export const SHUTDOWN_EXIT_OK = 0;
export const SHUTDOWN_EXIT_FAILED = 1;
export const SHUTDOWN_EXIT_FORCED = 130;
/** The least the close after a drain is given by default, in ms (it waits for a running checkpoint). */
export const SHUTDOWN_CLOSE_TIMEOUT_MS_DEFAULT = 60_000;

export function installShutdownHandlers(db: Drainable, options: ShutdownOptions): () => void {
  if (db === null || typeof db !== 'object' || typeof db.drain !== 'function' || typeof db.close !== 'function') throw new TypeError('db must have drain() and close()');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { timeoutMs, logger } = options;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) throw new RangeError(`timeoutMs must be a whole number of ms >= 0, got ${String(timeoutMs)}`);
  const closeTimeoutMs = options.closeTimeoutMs ?? Math.max(timeoutMs, SHUTDOWN_CLOSE_TIMEOUT_MS_DEFAULT);
  if (!Number.isSafeInteger(closeTimeoutMs) || closeTimeoutMs < 0) throw new RangeError(`closeTimeoutMs must be a whole number of ms >= 0, got ${String(closeTimeoutMs)}`);
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let running = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (running) {
      logger?.warn({ signal }, 'second signal during shutdown: exiting now');
      exit(SHUTDOWN_EXIT_FORCED);
      return;
    }
    running = true;
    void (async () => {
      let code = SHUTDOWN_EXIT_OK;
      try {
        const r = await db.drain({ timeoutMs });
        logger?.info({ signal, ...r }, 'drained on signal');
      } catch (err) {
        code = SHUTDOWN_EXIT_FAILED;
        logger?.error({ signal, err }, 'drain on signal failed');
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        const closed = await Promise.race([
          db.close().then(() => true),
          new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.min(closeTimeoutMs, 2 ** 31 - 1)))),
        ]);
        if (!closed) {
          code = SHUTDOWN_EXIT_FAILED;
          logger?.error({ signal, closeTimeoutMs }, `close on signal did not finish within ${closeTimeoutMs} ms: exiting`);
        }
      } catch (err) {
        code = SHUTDOWN_EXIT_FAILED;
        logger?.error({ signal, err }, 'close on signal failed');
      } finally {
        clearTimeout(timer);
      }
      exit(code);
    })();
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}
