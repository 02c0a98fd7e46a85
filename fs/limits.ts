/**
 * The fs layer's limits, in one place, each named with its unit. Reaching one pushes back (a copy, a
 * queue), never grows without bound.
 */

/** iovecs one commit request carries to a commit worker; a commit with more buffers is copied into one. */
export const COMMIT_IOVECS_COUNT_MAX = 256;

/**
 * Shared buffers a commit worker keeps registered at once (the least recently used one not needed by
 * the request being sent is forgotten first). Greater than COMMIT_IOVECS_COUNT_MAX, so that every
 * buffer of one request is always registered when the request runs.
 */
export const COMMIT_WORKER_BUFFERS_COUNT_MAX = 512;

/** Commit workers a NodeFileSystem starts at most (independent logs commit in parallel up to this). */
export const COMMIT_WORKERS_COUNT_MAX = 4;

/** Initial size of a commit worker's scratch buffer, for commits not in shared memory, in bytes (it grows to the largest commit). */
export const COMMIT_SCRATCH_BYTES_INITIAL = 64 * 1024;

/**
 * How often, in milliseconds, a busy commit worker's answer is checked in shared memory by a timer, besides
 * the Atomics.waitAsync wake-up: a commit whose answer has been there for a whole interval with no wake-up
 * is answered by the timer. Node 20's waitAsync has been seen to lose a wake-up (the worker done, the main
 * thread asleep in epoll forever; docs/decisions.md "A lost Atomics.waitAsync wake-up"), so this bounds
 * that stall at about two intervals.
 */
export const COMMIT_WAKE_CHECK_INTERVAL_MS = 10;

/**
 * CommitWait 'auto': a commit sent within this many milliseconds of the previous commit's answer (the
 * log busy: writers waiting, a closed loop) is waited for by polling; one sent after a longer idle gap
 * sleeps. Bounds the CPU polling spends to logs that commit back to back (docs/decisions.md, "A commit
 * thread that stays awake while the log is busy").
 */
export const COMMIT_POLL_IDLE_MS_MAX = 1;

/**
 * CommitWait 'auto' polls only while commits are quick: not while they take longer than this many
 * milliseconds on average (the commit thread's own writev + sync time, a moving average; the
 * NodeFileSystem option commitPollAverageMsMax changes this bound), and a poll that reaches it goes
 * to sleep (Atomics.waitAsync) for the rest of its commit. Polling saves one thread wake-up (~30-40 us
 * here); on a disk whose syncs take milliseconds that is little, and a loop kept polling through them
 * would look saturated (eventLoopUtilization 1.0).
 */
export const COMMIT_POLL_MS_MAX = 1;

/**
 * How long, in microseconds, the commit worker checks for the next request before it sleeps, after
 * answering a polled commit that was itself sent within this long of the answer before it (the next
 * request is then likely to come sooner than a sleeping thread could be woken: ~30-40 us here). 0 turns
 * the wait off. A sleeping commit ('sleep', or 'auto' after an idle gap) never makes the worker spin.
 */
export const COMMIT_WORKER_SPIN_US = 100;

/**
 * Waits, in milliseconds, between tries of a call that failed for want of a file descriptor (EMFILE,
 * ENFILE: such a call did not run), before its error is thrown: about 0.9 s in all. A process that
 * opens many files at once elsewhere (a burst) must not fail a log for good; one at its limit for longer
 * gets the error.
 */
export const DESCRIPTOR_RETRY_DELAYS_MS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500];
