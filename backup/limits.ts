/**
 * Every limit of the backup layer, named with its unit. Options that a user may set have their bounds
 * here too (options.ts applies them); the rest are fixed.
 */

/** Retry of a locked backup directory while open waits (lockWaitMs), in ms. */
export const LOCK_RETRY_INTERVAL_MS = 100;
/** The host-disk lock's holder refreshes it at least this often (and at least every lockStaleMs / 2), in ms. */
export const LOCK_REFRESH_MS_MIN = 1000;
