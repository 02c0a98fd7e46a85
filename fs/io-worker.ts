/**
 * The commit thread: a worker that runs writev + fdatasync back to back with the synchronous system
 * calls, so a log commit costs one trip off the event loop instead of two.
 *
 * Where the hops go (measured on these machines, 4 KiB overwrite + fdatasync, interleaved slices):
 *   synchronous pair on the event loop        1.00x  (not allowed: it blocks the loop)
 *   async writev + async fdatasync (libuv)    ~0.76x (two thread-pool trips)
 *   worker, request by postMessage            ~0.78x (structured clone of every request and reply)
 *   worker, request in shared memory          ~0.82x (this file)
 *   the same, the worker spinning 0.3 ms for the next request before it sleeps: ~0.65x (the spinning
 *   thread takes the CPU the kernel needs to complete the I/O on a 2-core machine: not done so)
 * What is left is two thread wake-ups per commit (request, reply), ~30-40 us each here; the WAL's
 * syncMode 'inline' avoids both by running the two calls on the event loop's thread (which then blocks).
 * CommitWait 'poll' (and 'auto' while the log is busy) avoids both without blocking: the main thread
 * checks for the answer once per event-loop turn instead of sleeping, and, when its requests come back
 * to back, asks the worker (the SPIN word) to look for the next request for COMMIT_WORKER_SPIN_US
 * before it sleeps. A spin only while the main thread is awake costs no wake-up of either thread:
 * one writer of 128 B 1.6-1.9x, 64 writers 1.2-1.4x the commits per second of 'sleep' here (the spin
 * alone, with the main thread asleep, lost: the line above).
 * Measured per commit on the main thread (issue 12): Atomics.notify of the sleeping worker 9-14 us idle,
 * 48-71 us under load (the worker is woken onto this CPU and runs first); Atomics.waitAsync 5-9 us.
 *
 * Protocol, one request at a time per worker, all in one SharedArrayBuffer `ctl`:
 *   main: writes fd, sync method, position and the iovecs (buffer id, offset, length), then bumps
 *         ctl[REQ_SEQ] and notifies; the worker sleeps in Atomics.wait on that word.
 *   worker: runs writevSync + fdatasyncSync, stores the result, bumps ctl[DONE_SEQ] and notifies; the
 *         main thread waits with Atomics.waitAsync, so the event loop never blocks.
 * Buffers are identified by the SharedArrayBuffer they live in, registered with the worker once by
 * message (the WAL's staging chunks are recycled, so there are few). The main thread owns the registry:
 * it holds at most COMMIT_WORKER_BUFFERS_COUNT_MAX ids, and to make room it tells the worker to forget
 * the least recently used id that the request being sent does not name. That bound exceeds the iovecs
 * of one request, so every buffer a request names is registered when it runs (the worker never drops
 * a buffer on its own: it once cleared its registry at 64 while a request could name 256, and a commit
 * over 64..256 buffers re-registered and resent forever). A buffer that is not in shared memory is
 * copied into a scratch SharedArrayBuffer first. Error details come back on a MessagePort
 * read synchronously. The worker's source is inline (eval): the same from the sources and from dist.
 * It starts with its own flags (none by default), never the host's, and its source runs as CommonJS or
 * as an ES module alike: a host started as `node --input-type=module -e ...` (or with that flag in
 * NODE_OPTIONS, which reaches workers whatever execArgv says) made it an ES module, where `require` failed.
 * The worker says "ready" once its source has run; `ready` rejects if it errors or exits first, so a
 * worker that cannot start fails whoever warms it up (Wal.open), not the first commit.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { assert } from '../core/errors.js';
import { fsError, type CommitWait, type SyncMethod } from './file-system.js';
import {
  COMMIT_IOVECS_COUNT_MAX,
  COMMIT_POLL_IDLE_MS_MAX,
  COMMIT_POLL_MS_MAX,
  COMMIT_SCRATCH_BYTES_INITIAL,
  COMMIT_WAKE_CHECK_INTERVAL_MS,
  COMMIT_WORKER_BUFFERS_COUNT_MAX,
  COMMIT_WORKER_SPIN_US,
  COMMIT_WORKERS_COUNT_MAX,
} from './limits.js';

const REQ_SEQ = 0;
const DONE_SEQ = 1;
const RESULT = 2; // 0 ok, 1 error (details on the port), 2 an unknown buffer id (a protocol bug)
const FD = 3;
const SYNC = 4; // 0 fdatasync, 1 fsync
const IOV_COUNT = 5;
const MISSING_ID = 6;
const SPIN = 7; // microseconds the worker checks for the next request after answering this one (0: sleep at once)
const PICKED_AWAKE = 10; // requests the worker found while it was still checking for them (it counts them)
const COMMIT_US = 11; // the answered request's writev + sync time on the worker, in microseconds
const POSITION_BYTE = 32;
const IOV_BASE_WORD = 12;
const IOV_COUNT_MAX = COMMIT_IOVECS_COUNT_MAX;
assert(COMMIT_WORKER_BUFFERS_COUNT_MAX > IOV_COUNT_MAX, 'a request always fits the worker registry');

// Written to run as CommonJS or as an ES module (NODE_OPTIONS=--input-type=module reaches workers too):
// no require, no top-level await; dynamic import() works in both.
const WORKER_SOURCE = `
(async () => {
const { workerData, receiveMessageOnPort, parentPort } = await import('node:worker_threads');
const fs = await import('node:fs');
const { sab, port, firstSeq } = workerData;
parentPort.postMessage('ready');
const ctl = new Int32Array(sab);
const pos = new Float64Array(sab, ${POSITION_BYTE}, 1);
const buffers = new Map();
function drain() {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const msg = m.message;
    if (msg.forget !== undefined) buffers.delete(msg.forget);
    if (msg.register !== undefined) buffers.set(msg.register, new Uint8Array(msg.sab));
  }
}
let seen = firstSeq; // REQ_SEQ as created: a request may already be posted when this runs
for (;;) {
  Atomics.wait(ctl, ${REQ_SEQ}, seen);
  const seq = Atomics.load(ctl, ${REQ_SEQ});
  if (seq === seen) continue;
  seen = seq;
  drain();
  let result = 0;
  const started = performance.now();
  try {
    const iovs = [];
    const count = ctl[${IOV_COUNT}];
    for (let i = 0; i < count; i++) {
      const at = ${IOV_BASE_WORD} + i * 3;
      const buf = buffers.get(ctl[at]);
      if (buf === undefined) { result = 2; ctl[${MISSING_ID}] = ctl[at]; break; }
      iovs.push(buf.subarray(ctl[at + 1], ctl[at + 1] + ctl[at + 2]));
    }
    if (result === 0) {
      let position = pos[0];
      let rest = iovs;
      while (rest.length > 0) {
        let n = fs.writevSync(ctl[${FD}], rest, position);
        position += n;
        const next = [];
        for (const b of rest) {
          if (n >= b.byteLength) { n -= b.byteLength; continue; }
          next.push(n > 0 ? b.subarray(n) : b);
          n = 0;
        }
        rest = next;
      }
      if (ctl[${SYNC}] === 1) fs.fsyncSync(ctl[${FD}]); else fs.fdatasyncSync(ctl[${FD}]);
    }
  } catch (e) {
    result = 1;
    port.postMessage({ seq, code: e.code || 'EIO', syscall: e.syscall || 'commit', message: String(e.message) });
  }
  ctl[${RESULT}] = result;
  ctl[${COMMIT_US}] = Math.min(2147483647, Math.round((performance.now() - started) * 1000));
  const spinUs = ctl[${SPIN}]; // this request's: the main thread may write the next one's once DONE_SEQ moves
  Atomics.store(ctl, ${DONE_SEQ}, seq);
  Atomics.notify(ctl, ${DONE_SEQ});
  if (spinUs > 0) {
    // The main thread is polling and its requests come back to back: look for the next one a moment
    // before sleeping, since waking a sleeping thread costs more than this here. Atomics.wait above
    // returns at once if REQ_SEQ moved in between, so no request is missed either way.
    const until = performance.now() + spinUs / 1000;
    while (Atomics.load(ctl, ${REQ_SEQ}) === seen && performance.now() < until);
    if (Atomics.load(ctl, ${REQ_SEQ}) !== seen) Atomics.add(ctl, ${PICKED_AWAKE}, 1);
  }
}
})();
`;

export interface IoWorkerOptions {
  /** Node flags of the commit worker. Default none: the host's own flags are never passed on. */
  execArgv?: readonly string[];
  /**
   * The request sequence number to start from (default 0). For tests: sequence numbers live in int32
   * words and wrap from 2^31 - 1 to -2^31, which a test reaches by starting near it.
   */
  firstSeq?: number;
  /**
   * CommitWait 'auto' polls while the commits' average time on the worker (writev + sync) is at most
   * this many ms (default COMMIT_POLL_MS_MAX). Lifted by a test that checks which commits are polled
   * whatever this disk's sync times are that moment, or by a user who wants polling on a slower disk.
   */
  pollAverageMsMax?: number;
  /** How long, in ms, 'auto' polls one commit before it sleeps for the rest (default COMMIT_POLL_MS_MAX). For tests. */
  pollMsMax?: number;
  /** How long the worker looks for the next request after a polled commit, in us (default COMMIT_WORKER_SPIN_US). For tests. */
  spinUs?: number;
}

interface Request {
  fd: number;
  path: string;
  buffers: readonly Uint8Array[];
  position: number;
  syncMethod: SyncMethod;
  wait: CommitWait;
  resolve: () => void;
  reject: (err: Error) => void;
}

let nextBufferId = 1;
/** Ids of shared buffers, the same for every worker (each worker learns them on first use). */
const bufferIds = new WeakMap<SharedArrayBuffer, number>();

function idOf(sab: SharedArrayBuffer): number {
  let id = bufferIds.get(sab);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(sab, id);
  }
  return id;
}

export class IoWorker {
  readonly #worker: Worker | null;
  readonly #ctl: Int32Array;
  readonly #position: Float64Array;
  readonly #port: MessagePort;
  /** Buffer ids this worker holds, least recently used first (the worker mirrors it exactly). */
  readonly #registered = new Set<number>();
  readonly #queue: Request[] = [];
  #scratch: Uint8Array = new Uint8Array(new SharedArrayBuffer(COMMIT_SCRATCH_BYTES_INITIAL));
  #busy = false;
  /** Kept in int32 range (| 0), as ctl's words hold it: compared with Atomics.load of DONE_SEQ. */
  #seq = 0;
  /** The request sent as #seq, until its answer is handled (by the wake-up or by the wake check). */
  #inFlight: Request | null = null;
  /** The wake check's timer, running while the worker is busy (it stops itself at the first idle tick). */
  #wakeCheck: NodeJS.Timeout | null = null;
  /** #seq as the previous wake check saw it answered but not handled; null when it saw nothing so. */
  #answeredUnhandledSeq: number | null = null;
  #lostWakeupsCount = 0;
  /** performance.now() when the last answer was handled: how long the log sat idle before the next request. */
  #answeredAt = -Infinity;
  /** How long commits take on the worker (writev + sync, its own clock), in ms: a moving average (1/8 per commit), so one slow sync does not stop the polling. */
  #commitMsAverage = 0;
  readonly #pollAverageMsMax: number;
  readonly #pollMsMax: number;
  readonly #spinUs: number;
  #polledCount = 0;
  #pollsCutCount = 0;
  #earlyWakeupsCount = 0;
  #spinAskedCount = 0;
  #dead: Error | null = null;
  /** terminate() was called: commits are refused, and the one in flight waits for the thread to stop. */
  #terminating: Error | null = null;
  /** Resolves once the worker runs its loop; rejects if it could not start. */
  readonly ready: Promise<void>;
  #started = false;

  constructor(options: IoWorkerOptions = {}) {
    const sab = new SharedArrayBuffer(4 * (IOV_BASE_WORD + 3 * IOV_COUNT_MAX));
    this.#ctl = new Int32Array(sab);
    this.#seq = (options.firstSeq ?? 0) | 0;
    this.#pollAverageMsMax = options.pollAverageMsMax ?? COMMIT_POLL_MS_MAX;
    this.#pollMsMax = options.pollMsMax ?? COMMIT_POLL_MS_MAX;
    this.#spinUs = options.spinUs ?? COMMIT_WORKER_SPIN_US;
    this.#ctl[REQ_SEQ] = this.#seq;
    this.#ctl[DONE_SEQ] = this.#seq;
    this.#position = new Float64Array(sab, POSITION_BYTE, 1);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const execArgv = [...(options.execArgv ?? [])];
    const startError = (cause: unknown): Error => {
      const e = fsError('ECOMMITWORKER', 'worker', 'flushpoint-commit', `flushpoint commit worker could not start (execArgv ${JSON.stringify(execArgv)}): ${String((cause as Error)?.message ?? cause)}`);
      e.cause = cause;
      return e;
    };
    let worker: Worker | null = null;
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true, execArgv, name: 'flushpoint-commit', workerData: { sab, port: port2, firstSeq: this.#seq }, transferList: [port2] });
    } catch (err) {
      // Refused at once (e.g. a flag a worker may not take): this worker is dead from the start.
      this.#dead = startError(err);
    }
    this.#worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      if (worker === null) {
        reject(this.#dead);
        return;
      }
      // Until it is ready the start-up keeps the process alive (someone may await `ready`); after
      // that, only a pending commit does.
      worker.once('message', () => {
        this.#started = true;
        if (!this.#busy) worker.unref();
        resolve();
      });
      const fail = (err: Error): void => {
        const e = this.#started ? err : startError(err);
        if (!this.#started) reject(e);
        this.#failAll(e);
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(this.#terminating ?? new Error(`flushpoint commit worker exited with code ${code}`)));
    });
    this.ready.catch(() => {}); // a pool worker nobody warmed up reports through its commits instead
  }

  /** The worker runs its loop (`ready` resolved). */
  get started(): boolean {
    return this.#started;
  }

  /** Answers the wake check handled because Atomics.waitAsync never woke the event loop for them. */
  get lostWakeupsCount(): number {
    return this.#lostWakeupsCount;
  }

  /** Commits whose answer the event loop waited for by polling ('poll', or 'auto' with the log busy). */
  get polledCount(): number {
    return this.#polledCount;
  }

  /** Polls that reached COMMIT_POLL_MS_MAX ('auto') and slept for the rest of their commit. */
  get pollsCutCount(): number {
    return this.#pollsCutCount;
  }

  /** Wake-ups of a sleeping commit before its answer (another commit's late notify): each waited again. */
  get earlyWakeupsCount(): number {
    return this.#earlyWakeupsCount;
  }

  /** Commits after whose answer the worker was asked to look for the next request before sleeping. */
  get spinAskedCount(): number {
    return this.#spinAskedCount;
  }

  /** Requests the worker found while it was still looking for them (so it never slept for them). */
  get pickedAwakeCount(): number {
    return Atomics.load(this.#ctl, PICKED_AWAKE);
  }

  /** True once the worker failed, exited or was terminated: every commit it is given rejects. */
  get dead(): boolean {
    return this.#dead !== null;
  }

  /** Commits sent or queued and not yet answered. */
  get pendingCount(): number {
    return this.#queue.length + (this.#busy ? 1 : 0);
  }

  commit(fd: number, path: string, buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod, wait: CommitWait = 'sleep'): Promise<void> {
    const refused = this.#dead ?? this.#terminating;
    if (refused) return Promise.reject(refused);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ fd, path, buffers, position, syncMethod, wait, resolve, reject });
      if (!this.#busy) this.#next();
    });
  }

  /**
   * Stops the worker. New commits are refused at once, and queued ones rejected; the commit in flight is
   * settled only once the thread has stopped (answered as usual if it answers first, else rejected):
   * until then the thread may still be inside writev or fdatasync on the commit's descriptor, which the
   * caller closes once its commit settles, and a descriptor number closed too early can be another
   * file's by the time the thread's call returns.
   */
  async terminate(): Promise<void> {
    const err = (this.#terminating ??= new Error('flushpoint commit worker terminated'));
    for (const r of this.#queue.splice(0)) r.reject(err);
    await this.#worker?.terminate();
    this.#failAll(err);
    this.#stopWakeCheck();
    this.#port.close();
  }

  #next(): void {
    const req = this.#queue.shift();
    if (req === undefined) {
      this.#busy = false;
      this.#worker?.unref();
      return;
    }
    if (!this.#busy) {
      this.#busy = true;
      // While a commit is pending the worker keeps the process alive: a commit must not be abandoned.
      this.#worker?.ref();
      this.#startWakeCheck();
    }
    this.#send(req);
  }

  /**
   * Atomics.waitAsync's wake-up is a task V8 posts to the event loop, and on Node 20 one has been seen
   * never to arrive: the worker had answered (DONE_SEQ = REQ_SEQ in shared memory) and the main thread
   * slept in epoll with the commit, and every writer behind it, pending forever. A timer is a libuv
   * handle, not a V8 task, so it does not share that fate: every interval it looks at DONE_SEQ, and an
   * answer it finds there unhandled twice in a row (a whole interval, while a wake-up takes
   * microseconds) is handled by it. Unref'd: the busy worker's ref keeps the process alive, not this.
   */
  #startWakeCheck(): void {
    if (this.#wakeCheck !== null) return;
    this.#answeredUnhandledSeq = null;
    this.#wakeCheck = setInterval(() => this.#checkWake(), COMMIT_WAKE_CHECK_INTERVAL_MS);
    this.#wakeCheck.unref();
  }

  #stopWakeCheck(): void {
    if (this.#wakeCheck !== null) clearInterval(this.#wakeCheck);
    this.#wakeCheck = null;
  }

  #checkWake(): void {
    const req = this.#inFlight;
    if (req === null) {
      if (!this.#busy || this.#dead) this.#stopWakeCheck();
      return;
    }
    if (this.#dead) {
      // #failAll's notify is a wake-up too: never leave the commit in flight waiting on it.
      this.#done(req, this.#seq);
      this.#stopWakeCheck();
      return;
    }
    const seq = this.#seq;
    if (Atomics.load(this.#ctl, DONE_SEQ) !== seq) {
      this.#answeredUnhandledSeq = null;
      return;
    }
    if (this.#answeredUnhandledSeq !== seq) {
      this.#answeredUnhandledSeq = seq; // answered: give the wake-up one interval to arrive
      return;
    }
    this.#lostWakeupsCount++;
    this.#done(req, seq);
  }

  #send(req: Request): void {
    const ctl = this.#ctl;
    // Taken first: registering a new buffer below is not idle time.
    const idleMs = performance.now() - this.#answeredAt;
    ctl[IOV_COUNT] = this.#iovecs(req.buffers);
    ctl[FD] = req.fd;
    ctl[SYNC] = req.syncMethod === 'fsync' ? 1 : 0;
    this.#position[0] = req.position;
    // 'auto': poll a busy log's commits while they are quick (see COMMIT_POLL_MS_MAX).
    const poll = req.wait === 'poll' || (req.wait === 'auto' && idleMs <= COMMIT_POLL_IDLE_MS_MAX && this.#commitMsAverage <= this.#pollAverageMsMax);
    // The next request will likely follow as quickly as this one did: if that is sooner than the
    // spin, the worker waits for it awake (only while polling: a sleeping loop's request comes late).
    const spin = poll && idleMs * 1000 <= this.#spinUs ? this.#spinUs : 0;
    ctl[SPIN] = spin;
    if (poll) this.#polledCount++;
    if (spin > 0) this.#spinAskedCount++;
    const seq = (this.#seq = (this.#seq + 1) | 0);
    this.#inFlight = req;
    Atomics.store(ctl, REQ_SEQ, seq);
    Atomics.notify(ctl, REQ_SEQ);
    const done = (): void => this.#done(req, seq);
    if (poll) {
      // One check per event-loop turn (setImmediate lets the loop poll its I/O, with no wait, between
      // checks): the loop never sleeps, so no wake-up follows the answer. It stops once the commit is
      // answered or handled elsewhere (the worker died: #failAll, or the wake check); in 'auto', also
      // once it has polled COMMIT_POLL_MS_MAX, sleeping for the rest (waitAsync returns at once if the
      // answer came meanwhile; #done runs once whoever calls it).
      const pollUntil = req.wait === 'auto' ? performance.now() + this.#pollMsMax : Infinity;
      const check = (): void => {
        if (Atomics.load(ctl, DONE_SEQ) === seq || this.#inFlight !== req || this.#seq !== seq || this.#dead !== null) done();
        else if (performance.now() < pollUntil) setImmediate(check);
        else {
          this.#pollsCutCount++;
          // The loop goes to sleep: the worker need not stay awake for a request that will come late
          // (if it read the word already, it looks for 100 us at most).
          Atomics.store(ctl, SPIN, 0);
          this.#sleepUntilDone(seq, done);
        }
      };
      setImmediate(check);
      return;
    }
    this.#sleepUntilDone(seq, done);
  }

  /** Waits for the answer to request `seq` with Atomics.waitAsync (the loop sleeps), then calls `done`. */
  #sleepUntilDone(seq: number, done: () => void): void {
    const waited = Atomics.waitAsync(this.#ctl, DONE_SEQ, (seq - 1) | 0);
    if (waited.async) waited.value.then(done, done);
    else queueMicrotask(done);
  }

  /**
   * Writes the (id, offset, length) triples of the buffers into ctl's iovec words and returns how many,
   * registering new shared buffers and copying the rest. Allocates nothing when every buffer is shared
   * and registered already (the steady state: staging recycles its chunks): it runs once per commit.
   */
  #iovecs(buffers: readonly Uint8Array[]): number {
    const ctl = this.#ctl;
    let shared = buffers.length <= IOV_COUNT_MAX;
    for (let i = 0; shared && i < buffers.length; i++) shared = (buffers[i] as Uint8Array).buffer instanceof SharedArrayBuffer;
    if (shared) {
      let at = IOV_BASE_WORD;
      for (const b of buffers) {
        ctl[at] = this.#register(b.buffer as SharedArrayBuffer, buffers);
        ctl[at + 1] = b.byteOffset;
        ctl[at + 2] = b.byteLength;
        at += 3;
      }
      return buffers.length;
    }
    // Not all in shared memory (or too many pieces): copy them into the scratch buffer, in order.
    let total = 0;
    for (const b of buffers) total += b.byteLength;
    if (this.#scratch.byteLength < total) this.#scratch = new Uint8Array(new SharedArrayBuffer(Math.max(total, this.#scratch.byteLength * 2)));
    let at = 0;
    for (const b of buffers) {
      this.#scratch.set(b, at);
      at += b.byteLength;
    }
    const scratch = this.#scratch.buffer as SharedArrayBuffer;
    ctl[IOV_BASE_WORD] = this.#register(scratch, [this.#scratch]);
    ctl[IOV_BASE_WORD + 1] = 0;
    ctl[IOV_BASE_WORD + 2] = total;
    return 1;
  }

  /**
   * Makes sure the worker holds `sab` when the next request runs, forgetting (in the worker too) the
   * least recently used id that no buffer of the request (`request`) lives in if the registry is full.
   */
  #register(sab: SharedArrayBuffer, request: readonly Uint8Array[]): number {
    const id = idOf(sab);
    if (this.#registered.delete(id)) {
      this.#registered.add(id); // now the most recently used
      return id;
    }
    let forget: number | undefined;
    if (this.#registered.size >= COMMIT_WORKER_BUFFERS_COUNT_MAX) {
      const needed = new Set<number>();
      for (const b of request) if (b.buffer instanceof SharedArrayBuffer) needed.add(idOf(b.buffer));
      for (const old of this.#registered) {
        if (needed.has(old)) continue;
        forget = old;
        break;
      }
      assert(forget !== undefined, 'the registry holds more ids than one request names');
      this.#registered.delete(forget);
    }
    this.#registered.add(id);
    assert(this.#registered.size <= COMMIT_WORKER_BUFFERS_COUNT_MAX, 'commit worker registry within its bound');
    this.#port.postMessage({ register: id, sab, forget });
    return id;
  }

  #done(req: Request, seq: number): void {
    // Handled already (by the wake check, or by this wake-up arriving after the wake check): once only.
    if (this.#inFlight !== req || this.#seq !== seq) return;
    if (this.#dead) {
      this.#inFlight = null;
      req.reject(this.#dead);
      return;
    }
    if (Atomics.load(this.#ctl, DONE_SEQ) !== seq) {
      // Woken early: the worker stores an answer before it notifies, so a loop that saw answer N by
      // polling, sent N + 1 and slept for it (a poll cut) is woken by N's late notify. Wait again.
      this.#earlyWakeupsCount++;
      const waited = Atomics.waitAsync(this.#ctl, DONE_SEQ, Atomics.load(this.#ctl, DONE_SEQ));
      const again = (): void => this.#done(req, seq);
      if (waited.async) waited.value.then(again, again);
      else queueMicrotask(again);
      return;
    }
    this.#inFlight = null;
    this.#answeredAt = performance.now();
    this.#commitMsAverage += ((this.#ctl[COMMIT_US] as number) / 1000 - this.#commitMsAverage) / 8;
    const result = this.#ctl[RESULT];
    if (result === 2) {
      // The registry is mirrored exactly, so this is a bug: fail the commit (never resend in a loop).
      req.reject(new Error(`flushpoint assertion failed: commit worker does not hold buffer id ${this.#ctl[MISSING_ID]} (${req.path})`));
    } else if (result === 1) {
      const m = receiveMessageOnPort(this.#port)?.message as { code?: string; syscall?: string; message?: string } | undefined;
      req.reject(fsError(m?.code ?? 'EIO', m?.syscall ?? 'commit', req.path, m?.message));
    } else req.resolve();
    this.#next();
  }

  #failAll(err: Error): void {
    this.#dead ??= err;
    for (const r of this.#queue.splice(0)) r.reject(err);
    // A commit in flight waits on DONE_SEQ: wake it, so it sees the worker is dead and rejects.
    Atomics.notify(this.#ctl, DONE_SEQ);
    // And settle it directly too: that notify is a waitAsync wake-up, which can be lost, and
    // terminate() has stopped the wake check. #done is once-only, so the wake-up arriving later is a no-op.
    const req = this.#inFlight;
    const seq = this.#seq;
    if (req !== null) queueMicrotask(() => this.#done(req, seq));
  }
}

/**
 * Up to `workersCountMax` commit workers, started on demand. A commit goes to an idle worker, or to the
 * least busy one when all are busy, so independent logs (the WAL, a backup sink) never queue behind each
 * other's fdatasync. One log's commits are single flight anyway, so they keep their order.
 */
export class IoWorkerPool {
  readonly #workers: IoWorker[] = [];
  readonly #workersCountMax: number;
  readonly #options: IoWorkerOptions;
  readonly #createWorker: (options: IoWorkerOptions) => IoWorker;

  /** `createWorker` is for tests (a worker they can kill); default `new IoWorker(options)`. */
  constructor(workersCountMax = COMMIT_WORKERS_COUNT_MAX, options: IoWorkerOptions = {}, createWorker = (o: IoWorkerOptions) => new IoWorker(o)) {
    this.#workersCountMax = workersCountMax;
    this.#options = options;
    this.#createWorker = createWorker;
  }

  /**
   * Sends the commit to the started worker with the fewest pending, starting one more (up to the
   * maximum) when that one is busy. A worker started for the pool's growth takes commits only once it
   * runs: until then this one queues behind a live worker, so a worker that cannot start (EMFILE, ENOMEM:
   * a process short of descriptors) fails no commit and no log, it is only dropped (an EMFILE review saw
   * a healthy WAL fail for good when its commit went to such a worker). Only with no live worker at all
   * does a commit wait for a new one, and its failure to start fail the commit.
   */
  commit(fd: number, path: string, buffers: readonly Uint8Array[], position: number, syncMethod: SyncMethod, wait: CommitWait = 'sleep'): Promise<void> {
    this.#dropDead();
    let best: IoWorker | undefined;
    let starting: IoWorker | undefined;
    for (const w of this.#workers) {
      if (!w.started) starting ??= w;
      else if (best === undefined || w.pendingCount < best.pendingCount) best = w;
    }
    if (best === undefined) {
      // None runs yet: the first worker (or every started one died). The commit waits for it.
      best = starting ?? this.#grow();
    } else if (best.pendingCount > 0 && starting === undefined && this.#workers.length < this.#workersCountMax) {
      this.#grow(); // used from a later commit, once it runs
    }
    return best.commit(fd, path, buffers, position, syncMethod, wait);
  }

  /** Starts one more worker; one that cannot start is dropped from the pool. */
  #grow(): IoWorker {
    const w = this.#createWorker(this.#options);
    this.#workers.push(w);
    w.ready.catch(() => {
      const at = this.#workers.indexOf(w);
      if (at >= 0) this.#workers.splice(at, 1);
      void w.terminate().catch(() => {});
    });
    return w;
  }

  /**
   * A dead worker (it crashed, exited or was terminated) stays dead: drop it, so the process's later
   * commits (a WAL reopened after the failure) go to a new one instead of being rejected forever.
   */
  #dropDead(): void {
    for (let i = this.#workers.length - 1; i >= 0; i--) {
      const w = this.#workers[i] as IoWorker;
      if (!w.dead) continue;
      this.#workers.splice(i, 1);
      void w.terminate().catch(() => {}); // its port and thread, if anything is left of them
    }
  }

  // Counts summed over the workers in the pool now (a dropped worker's counts are lost): see IoWorker's getters.
  get polledCount(): number {
    return this.#sum((w) => w.polledCount);
  }

  get pollsCutCount(): number {
    return this.#sum((w) => w.pollsCutCount);
  }

  get earlyWakeupsCount(): number {
    return this.#sum((w) => w.earlyWakeupsCount);
  }

  #sum(count: (w: IoWorker) => number): number {
    let sum = 0;
    for (const w of this.#workers) sum += count(w);
    return sum;
  }

  /** Starts one worker if none runs, and waits until it is ready; rejects if it cannot start. */
  async warmUp(): Promise<void> {
    this.#dropDead();
    const first = this.#workers[0] ?? this.#grow();
    try {
      await first.ready;
    } catch (err) {
      // #grow's handler has dropped it from the pool: the next warmUp (or commit) starts a new one.
      await first.terminate();
      throw err;
    }
  }

  async terminate(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
