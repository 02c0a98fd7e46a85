/**
 * Engine: an abstract-level database on the WAL. The facade of engine/.
 *
 *   write  = encode the operations as ONE WAL record (record.ts) -> wal.append -> LSN
 *   visible: in LSN order. The visible LSN moves over a record once every record before it is visible
 *            and the record is durable ({ sync: true }, the default) or was written with { sync: false }.
 *   ack    = the promise of a write resolves when its record is visible: for sync:true that is after the
 *            fdatasync that covers it (group commit: one for everything appended meanwhile); for
 *            sync:false it is at once, unless an earlier sync:true write is still waiting for its
 *            fdatasync, in which case it becomes visible (and resolves) right after that one.
 *   read   = the visible tree: a reader never sees a sync:true write before it is durable, and never
 *            sees a write without every write before it (every view is the state at one LSN).
 *
 * Checkpoints (checkpoint-file.ts) hold the state at one LSN; after one is durable the WAL drops the
 * segments below the older of the two kept checkpoints, so the older one stays a usable fallback.
 * Open = the newest valid checkpoint + replay of the WAL after it (recovery table in #recover).
 */
import { AbstractLevel, AbstractSnapshot, type AbstractDelOptions, type AbstractPutOptions } from 'abstract-level';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import { fsError, isFileSystemError, makeDirDurable, sweepTempFiles } from '../fs/index.js';
import { SEGMENT_NAME_RE, Wal, type WalStats } from '../wal/index.js';
import type { FileSystem } from '../fs/file-system.js';
import { BackupSink, type BackupStats } from '../backup/index.js';
import { CHECKPOINT_NAME, parseBackupFileName } from '../backup/format.js';
import { CheckpointDamage, checkpointLsnOf, readCheckpoint, writeCheckpoint, type LoadedCheckpoint } from './checkpoint-file.js';
import { EngineIterator, EngineKeyIterator, EngineValueIterator, boundsOf, type RangeOptions } from './iterator.js';
import { keyIn, valueOut, type Format } from './keys.js';
import { ValueSlabs, type Slab, type SlabScan, type ValueSlabStats } from './value-slabs.js';
import { externalMemoryAdjuster, pageTouch, touchPages } from '../fs/page-cache.js';
import { APPLY_YIELD_ENTRIES, AUTO_CHECKPOINT_RETRY_MS, CHECKPOINTS_KEPT_COUNT, NEXT_STATE_APPEND_WRITES_MAX, NEXT_STATE_WRITES_MAX, SLAB_SCAN_DROPPED_MIN } from './limits.js';
import { EngineSublevel, acceptMsgpackByName, resolveEncodingOptions } from './sublevel.js';
import { engineDefaults, type EngineOwnOptions, type ResolvedEngineOptions } from './options.js';
import { applyOps, emptyTree, keysInRange, type Tree } from './ordered-index.js';
import { RecordArena, RecordEncoder, decodeReplayRecord, encodeRecord, type Op } from './record.js';
import { BaseReplay, appendBase, readBaseMarker, writeBaseMarker } from './base.js';
import { EngineAdmin } from './admin/engine-admin.js';
import type { EngineMetricsStats } from './metrics.js';
import type { DrainOptions } from './admin/drain.js';
import type { DrainResult } from './admin/target.js';
import { SyncTimer } from './metrics-fs.js';

/** Constructor options: abstract-level's (encodings, createIfMissing, errorIfExists ...) plus the engine's. */
export interface EngineOptions extends EngineOwnOptions {
  keyEncoding?: unknown;
  valueEncoding?: unknown;
  createIfMissing?: boolean;
  errorIfExists?: boolean;
  passive?: boolean;
}

export interface CheckpointResult {
  /** The state file holds every write up to and including this LSN. */
  lsn: number;
  /** Size of the state file. */
  bytes: number;
  durationMs: number;
}

export interface EngineStats {
  /** Every write up to this LSN is visible to readers. */
  visibleLsn: number;
  /** Writes appended but not yet visible. */
  pendingWrites: number;
  keys: number;
  checkpoints: Array<{ lsn: number; file: string }>;
  checkpointsWritten: number;
  lastCheckpoint: CheckpointResult | null;
  /** The last automatic checkpoint's failure, if it failed (the next one retries). */
  checkpointError: string | null;
  /**
   * Why the WAL refuses to drop the segments checkpoints cover, if it does (a segment could not be freed):
   * checkpoints still succeed, but the log grows until the engine is closed and opened again.
   */
  walTruncationError: string | null;
  /** What the last open found and did. */
  recovery: EngineRecovery;
  /** The index's value slabs since open (engine/value-slabs.ts). */
  valueSlabs: ValueSlabStats;
  /**
   * Writes since open whose index work ran while their commit was on its way (a next state made ahead and
   * swapped in when they became visible); the others were applied to the index when they became visible.
   */
  writesAppliedAhead: number;
  wal: WalStats | null;
  backup: BackupStats | null;
}

export interface EngineRecovery {
  /** LSN of the checkpoint loaded (0: none). */
  checkpointLsn: number;
  /** Checkpoint files refused as damaged, with why. */
  damagedCheckpoints: string[];
  /** Records replayed from the WAL after the checkpoint. */
  recordsReplayed: number;
  durationMs: number;
}

interface PendingWrite {
  lsn: number;
  /** One put (value set) or del (value undefined), held without an ops array: the common write. */
  key: string;
  value: Buffer | undefined;
  /** A batch or a clear: its ops, in order (key and value unused). */
  ops: Op[] | null;
  /**
   * A put whose key and value are still to be read back from its record in this RecordArena buffer
   * (#takeHeld): the key at [keyStart, keyEnd) (keyStart -1: `key` is set already), the value at
   * [valueStart, valueEnd). Null once taken, and for every other write.
   */
  held: Buffer | null;
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
  durable: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const kTree = Symbol('tree');
const CHECKPOINTS_DIR = 'checkpoints';
const WAL_DIR = 'wal';

class EngineSnapshot extends AbstractSnapshot {
  readonly [kTree]: Tree;
  constructor(tree: Tree, options: object) {
    // abstract-level's typings omit the constructor's options argument.
    super(...([options] as unknown as []));
    this[kTree] = tree;
  }
}

/** How the engine stores keys and values underneath the encodings: strings or bytes. */
export type EngineKey = string | Uint8Array;
type Key = EngineKey;
interface FormatOptions {
  keyEncoding: Format;
  valueEncoding: Format;
  snapshot?: EngineSnapshot;
  sync?: boolean;
}

function ignore(): void {}

/** What abstract-level's transcoders offer that the engine's put()/del() use. */
interface Transcoder {
  encode(data: unknown): Key;
}

/** abstract-level's argument checks (LEVEL_INVALID_KEY / LEVEL_INVALID_VALUE), not in its typings. */
interface ArgumentChecks {
  _assertValidKey(key: unknown): void;
  _assertValidValue(value: unknown): void;
}

/**
 * A value as the bytes it holds: a typed array other than a Uint8Array (a custom 'view' or 'buffer'
 * encoding may give one) is viewed as its bytes, not copied element by element (a Uint16Array of 1,024
 * elements filled 1,024 of its 2,048 bytes, the rest being whatever the memory held before).
 */
function asBytes(value: Key): Key {
  return typeof value === 'string' || value instanceof Uint8Array ? value : new Uint8Array((value as ArrayBufferView).buffer, (value as ArrayBufferView).byteOffset, (value as ArrayBufferView).byteLength);
}

/** Options of a put/del called without any (sync: true, the default). */
const DEFAULT_WRITE_OPTIONS: { sync?: boolean } = Object.freeze({});

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A checkpoint's bytes per key (0 for an empty one). */
function bytesPerKey(bytes: number, keys: number): number {
  return keys === 0 ? 0 : bytes / keys;
}

/**
 * Refuses (WRONG_DIRECTORY, before anything is created there) a location with no wal/ that holds WAL
 * segments or a backup: opening it as an engine would start an empty database inside it, beside the
 * data the caller meant to open (restoreBackup writes a WAL directory: restore to <location>/wal).
 */
async function checkEngineKind(fs: FileSystem, location: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(location);
  } catch {
    return; // missing (created on open), or not a directory (the open says so)
  }
  const segment = names.find((n) => SEGMENT_NAME_RE.test(n));
  if (segment !== undefined) {
    throw new FlushpointError(ErrorCode.WRONG_DIRECTORY, `${location} is not an engine's location: it holds WAL segments (${segment}), so it is a WAL directory; an engine keeps its WAL in <location>/wal (restoreBackup({ from, to: '${location}/wal' }) restores one there)`, { file: `${location}/${segment}` });
  }
  const backup = names.find((n) => n === CHECKPOINT_NAME || parseBackupFileName(n) !== null);
  if (backup !== undefined) {
    throw new FlushpointError(ErrorCode.WRONG_DIRECTORY, `${location} is not an engine's location: it holds ${backup}, so it is a backup (restore it with restoreBackup({ from, to: '<location>/wal' }))`, { file: `${location}/${backup}` });
  }
}

function notOpen(location: string): FlushpointError {
  return new FlushpointError(ErrorCode.WAL_CLOSED, `engine at ${location} is not open`);
}

/** Every write takes { sync?: boolean } (default true): false resolves before the fsync (see above). */
export interface WriteOptions {
  sync?: boolean;
}

// The engine's write options, added to abstract-level's signatures (declaration merging).
export interface Engine<K, V> {
  put(key: K, value: V): Promise<void>;
  put<K2 = K, V2 = V>(key: K2, value: V2, options: AbstractPutOptions<K2, V2> & WriteOptions): Promise<void>;
  del(key: K): Promise<void>;
  del<K2 = K>(key: K2, options: AbstractDelOptions<K2> & WriteOptions): Promise<void>;
}

export class Engine<K = string, V = string> extends AbstractLevel<EngineKey, K, V> {
  readonly location: string;
  readonly #o: ResolvedEngineOptions;
  #wal: Wal | null = null;
  #sink: BackupSink | null = null;
  /** Drain, metrics and the admin endpoint (engine/admin/engine-admin.ts); null unless open. */
  #admin: EngineAdmin | null = null;
  #tree: Tree = emptyTree();
  #visibleLsn = 0;
  #pending: PendingWrite[] = [];
  #pendingHead = 0;
  /** The last promise wal.waitDurable() gave a sync:true write; writes handed the same one share its reaction. */
  /**
   * The LSN of the engine's one wait on the WAL (0: none): the oldest pending sync:true write that is
   * not durable yet. One wait per commit, not one per write: a write does not count against the WAL's
   * waitersCountMax (past it, a burst of writes was rejected and the engine failed for good).
   */
  #durableWaitLsn = 0;
  readonly #encoder = new RecordEncoder();
  readonly #arena = new RecordArena();
  /** Where the index's values are copied (value-slabs.ts); made anew at each open. */
  #values = new ValueSlabs(null);
  /** Values replaced or removed in the index since the value slabs were last scanned. */
  readonly #dropped = { count: 0 };
  /** A scan of the value slabs outside a checkpoint is queued (#maybeCompactSlabs). */
  #slabScanQueued = false;
  /** Puts whose key and value are still held in the arena, in LSN order; #takeAllHeld is queued (setImmediate) while any are. */
  #held: PendingWrite[] = [];
  readonly #takeAllHeld = (): void => {
    for (const w of this.#held) this.#takeHeld(w);
    this.#held = [];
    this.#prepareNext();
  };
  /**
   * The state to come, made ahead while a commit is on its way (#prepareNext): a clone of the visible tree
   * with every pending write up to #nextLsn applied. When the writes that become visible reach #nextLsn,
   * #advance makes it the visible tree instead of applying them one by one then. Never read before that.
   */
  #next: Tree | null = null;
  #nextLsn = 0;
  #writesAppliedAhead = 0;
  #failure: unknown = null;
  #checkpoints: Array<{ lsn: number; file: string }> = [];
  #checkpointChain: Promise<unknown> = Promise.resolve();
  #autoCheckpoint: Promise<unknown> | null = null;
  #appendedAtCheckpoint = 0;
  /** Bytes per key of the newest checkpoint file (0: none or empty): the automatic trigger scales with the state's size estimated from it (checkpointStatePercent). */
  #checkpointBytesPerKey = 0;
  /** performance.now() before which no automatic checkpoint starts (after one failed), in ms. */
  #autoCheckpointRetryAtMs = 0;
  #checkpointsWritten = 0;
  #lastCheckpoint: CheckpointResult | null = null;
  #checkpointError: string | null = null;
  #walTruncationError: string | null = null;
  #recovery: EngineRecovery = { checkpointLsn: 0, damagedCheckpoints: [], recordsReplayed: 0, durationMs: 0 };

  constructor(location: string, options: EngineOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { wal, checkpointEveryBytes, checkpointStatePercent, backup, fs, logger, admin, valueSlabBytes, ...forward } = options;
    // Other keys are not refused (a typo such as checkpointEvery passes silently, where wal, backup and
    // admin refuse unknown keys): abstract-level forwards userland options to open() and its postopen
    // hooks, and its shared suite checks that it does.
    const resolved = engineDefaults(location, { wal, checkpointEveryBytes, checkpointStatePercent, backup, fs, logger, admin, valueSlabBytes });
    super(
      {
        seek: true,
        permanence: true,
        implicitSnapshots: true,
        explicitSnapshots: true,
        createIfMissing: true,
        errorIfExists: true,
        has: true,
        getSync: true,
        encodings: { buffer: true, view: true, utf8: true },
        signals: { iterators: false },
      } as never,
      resolveEncodingOptions(forward) as never,
    );
    this.#o = resolved;
    this.location = resolved.location;
  }

  /** @internal abstract-level's hook: a sublevel with its own encodings, 'msgpack' among them. */
  _sublevel(name: string | string[], options: object): EngineSublevel {
    return new EngineSublevel(this, name, options);
  }

  // ---- lifecycle ----

  /** @internal abstract-level's implementation hook. */
  async _open(options: { createIfMissing: boolean; errorIfExists: boolean }): Promise<void> {
    const { fs, location } = this.#o;
    const walDir = `${location}/${WAL_DIR}`;
    this.#values = new ValueSlabs(pageTouch() ? touchPages : null, this.#o.valueSlabBytes, undefined, externalMemoryAdjuster());
    let exists = true;
    try {
      await fs.stat(walDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        // The location (or a parent) is a file: one typed line, not a bare ENOTDIR under abstract-level's error.
        throw new FlushpointError(ErrorCode.WRONG_DIRECTORY, `${location} is not a directory (ENOTDIR): an engine's location is a directory`, { cause: err, file: location });
      }
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      exists = false;
    }
    if (!exists) await checkEngineKind(fs, location);
    if (!exists && !options.createIfMissing) throw fsError('ENOENT', 'open', location, 'database does not exist (createIfMissing is false)');
    if (exists && options.errorIfExists) throw fsError('EEXIST', 'open', location, 'database already exists (errorIfExists is true)');
    // Every directory the engine creates is durable before anything in it is acknowledged.
    await makeDirDurable(fs, `${location}/${CHECKPOINTS_DIR}`).catch((err: NodeJS.ErrnoException) => {
      // A file in its place (ENOTDIR, EEXIST): a typed line naming it, not a bare errno.
      if (err.code === 'ENOTDIR' || err.code === 'EEXIST') {
        throw new FlushpointError(ErrorCode.ENGINE_CORRUPT, `${location}/${CHECKPOINTS_DIR} is not a directory (${err.code}): the engine keeps its checkpoints there`, { cause: err, file: `${location}/${CHECKPOINTS_DIR}` });
      }
      throw err;
    });
    // The fsync histogram is read only through the admin endpoint: without one, the WAL gets the file system itself.
    const syncTimer = this.#o.admin ? new SyncTimer() : undefined;
    const wal = await Wal.open({ ...this.#o.wal, dir: walDir, fs: syncTimer ? syncTimer.wrap(fs) : fs, logger: this.#o.logger });
    try {
      await this.#recover(wal);
      if (this.#o.backup) {
        this.#sink = await BackupSink.open({ fs, logger: this.#o.logger, ...this.#o.backup, wal });
        await this.#ensureBase(wal, this.#sink);
      }
      const sink = this.#sink;
      this.#admin = await EngineAdmin.open({ wal, sink, ...(syncTimer ? { syncTimer } : {}), admin: this.#o.admin, logger: this.#o.logger, status: () => ({ status: this.status, location, visibleLsn: this.#visibleLsn }), engine: () => this.#metricsStats() });
    } catch (err) {
      await this.#sink?.close().catch(() => {});
      this.#sink = null;
      await wal.close().catch(() => {});
      this.#tree = emptyTree();
      this.#next = null;
      throw err;
    }
    this.#wal = wal;
    this.#failure = null;
  }

  /**
   * A backup that begins after LSN 1 needs the state before its first LSN: the engine writes its state
   * into the WAL as a base (engine/base.ts), once per backup, before open completes.
   */
  async #ensureBase(wal: Wal, sink: BackupSink): Promise<void> {
    if (sink.startLsn <= 1) return;
    const dir = `${this.#o.location}/${CHECKPOINTS_DIR}`;
    const marker = await readBaseMarker(this.#o.fs, dir);
    if (marker && marker.backup === sink.dir && marker.startLsn === sink.startLsn) return;
    const started = performance.now();
    const r = await appendBase(wal, this.#tree);
    await writeBaseMarker(this.#o.fs, dir, { backup: sink.dir, startLsn: sink.startLsn, beginLsn: r.beginLsn, endLsn: r.endLsn });
    this.#visibleLsn = wal.lastLsn; // the base's records change nothing in the state
    this.#o.logger?.info({ backup: sink.dir, backupStartLsn: sink.startLsn, ...r, durationMs: performance.now() - started }, 'engine base written for a backup that begins after LSN 1');
  }

  /**
   * Recovery table (newest checkpoint first):
   *   checkpoint valid?  LSN <= WAL end?  WAL reaches LSN+1?  -> action
   *   yes                yes               yes (or nothing after) -> load it, replay the WAL after it
   *   yes                yes               no                 -> ENGINE_CORRUPT (a gap between the two)
   *   yes                no                -                  -> ENGINE_CORRUPT (the WAL lost durable records)
   *   no (damaged)       -                 -                  -> note it, try the next older one
   *   none left: WAL starts at LSN 1 (or is empty) -> replay it all; else ENGINE_CORRUPT naming the files.
   *   Before any of it: a WAL that ends below the newest checkpoint's name (damaged or not: it was
   *   published only once the WAL was durable to that LSN) -> ENGINE_CORRUPT naming that checkpoint.
   *   A WAL that does not reach back to the checkpoint (or to LSN 1) is replayed from nothing instead, and
   *   that is valid only from the end of a complete base in it on (engine/base.ts; a restored backup).
   */
  async #recover(wal: Wal): Promise<void> {
    const started = performance.now();
    const { fs, location } = this.#o;
    const dir = `${location}/${CHECKPOINTS_DIR}`;
    const names = await fs.readdir(dir);
    await sweepTempFiles(fs, dir, names);
    const found = names
      .map((file) => ({ file, lsn: checkpointLsnOf(file) }))
      .filter((c): c is { file: string; lsn: number } => c.lsn !== null)
      .sort((a, b) => b.lsn - a.lsn);
    const damaged: string[] = [];
    let base: LoadedCheckpoint | null = null;
    for (const c of found) {
      try {
        base = await readCheckpoint(fs, `${dir}/${c.file}`, c.lsn, yieldToLoop);
        break;
      } catch (err) {
        // A checkpoint the file system will not read (EISDIR, EIO, ...) is passed over like a damaged one:
        // the older one and the WAL still rebuild the state, and the floor below still holds.
        // Not a resource shortage (EMFILE, ENFILE, EAGAIN, ENOMEM): that is no reason to pass a checkpoint over.
        const unreadable = isFileSystemError(err) && !['EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM', 'EINTR'].includes(err.code);
        if (!(err instanceof CheckpointDamage) && !unreadable) throw err;
        const message = err instanceof CheckpointDamage ? err.message : `checkpoint ${dir}/${c.file} cannot be read: ${(err as Error).message}`;
        damaged.push(message);
        this.#o.logger?.warn({ file: `${dir}/${c.file}`, err }, message);
      }
    }
    const baseLsn = base?.lsn ?? 0;
    const lastLsn = wal.lastLsn;
    // A checkpoint is published (given its name) only once the WAL is durable to its LSN, so the newest
    // name is a floor for the WAL's end even when that file is damaged: before, a damaged newest
    // checkpoint plus a WAL cut below it (a lost last segment, a cut tail) opened silently at the older
    // state.
    const newest = found[0];
    if (newest !== undefined && newest.lsn > lastLsn) {
      const proof = base !== null && base.lsn === newest.lsn ? '' : ' (damaged, but its name proves the WAL was durable to that LSN when it was published)';
      throw new FlushpointError(
        ErrorCode.ENGINE_CORRUPT,
        `checkpoint ${dir}/${newest.file} holds LSN ${newest.lsn}${proof}, but the WAL in ${wal.dir} ends at LSN ${lastLsn}: the WAL lost durable records`,
        { lsn: newest.lsn, file: wal.dir },
      );
    }
    // The WAL does not reach back to the checkpoint (or to LSN 1): replay all of it from nothing; a
    // complete base in it (engine/base.ts: a restored backup that began after LSN 1) makes that valid.
    const fromNothing = baseLsn < lastLsn && wal.firstLsn > baseLsn + 1;
    const corruptNoBase = (): FlushpointError => {
      const what = base
        ? `checkpoint at LSN ${baseLsn}`
        : found.length === 0
          ? `no checkpoint in ${dir}`
          : `no valid checkpoint (${damaged.join('; ')})`;
      return new FlushpointError(
        ErrorCode.ENGINE_CORRUPT,
        `cannot rebuild ${location}: ${what}, and the WAL in ${wal.dir} starts at LSN ${wal.firstLsn}, not ${baseLsn + 1}, and holds no complete base (engine/base.ts) up to its end at LSN ${lastLsn}`,
        { lsn: baseLsn + 1, file: damaged.length > 0 ? `${dir}/${found[0]?.file}` : wal.dir },
      );
    };
    const bases = new BaseReplay(!fromNothing);
    let tree = fromNothing ? emptyTree() : (base?.tree ?? emptyTree());
    let expected = fromNothing ? wal.firstLsn : baseLsn + 1;
    let replayed = 0;
    let replayedBytes = 0;
    let sinceYield = 0;
    if (expected <= lastLsn) {
      for await (const batch of wal.readBatches({ fromLsn: expected })) {
        for (const rec of batch) {
          assert(rec.lsn === expected, `replay is contiguous: LSN ${rec.lsn}, expected ${expected}`);
          const r = decodeReplayRecord(rec.payload, rec.lsn);
          if (r.kind === 'ops') {
            bases.other();
            tree = applyOps(tree, r.ops);
          } else if (r.kind === 'base-begin') bases.begin(rec.lsn);
          else if (r.kind === 'base-chunk') bases.chunk(r.beginLsn, r.ops);
          else if (r.kind === 'base-part') bases.part(r.beginLsn, r.key, r.offsetBytes, r.totalBytes, r.bytes);
          else tree = bases.end(r.beginLsn, r.entries, rec.lsn) ?? tree;
          expected++;
          replayed++;
          replayedBytes += rec.payload.byteLength;
          // A batch is one large read (up to ~100k small records), and reads may complete in microtasks
          // only (a file system in memory): yield by records applied, not by batch.
          if (++sinceYield >= APPLY_YIELD_ENTRIES) {
            sinceYield = 0;
            await yieldToLoop();
          }
        }
      }
    }
    assert(expected === lastLsn + 1 || lastLsn <= baseLsn, `replay reached LSN ${expected - 1}, the WAL ends at ${lastLsn}`);
    if (!bases.complete) throw corruptNoBase();
    this.#tree = tree;
    this.#visibleLsn = Math.max(lastLsn, baseLsn);
    this.#pending = [];
    this.#pendingHead = 0;
    this.#durableWaitLsn = 0;
    this.#next = null;
    this.#writesAppliedAhead = 0;
    this.#checkpoints = found
      .filter((c) => c.lsn <= baseLsn)
      .map((c) => ({ lsn: c.lsn, file: c.file }))
      .reverse();
    // The WAL bytes after the checkpoint count toward the next automatic one.
    this.#appendedAtCheckpoint = -replayedBytes;
    this.#checkpointBytesPerKey = bytesPerKey(base?.bytes ?? 0, base?.entries ?? 0);
    this.#recovery = { checkpointLsn: baseLsn, damagedCheckpoints: damaged, recordsReplayed: replayed, durationMs: performance.now() - started };
    this.#o.logger?.info({ location, ...this.#recovery }, 'engine opened');
  }

  /**
   * Closes as abstract-level does, with one difference once the engine or its WAL has failed (a write,
   * a sync, a foreign record; with only sync: false writes the engine learns it here): _close releases
   * the WAL, its lock and the sink all the same and then reports the failure, so the engine is closed,
   * and the status says so ('closed', and open() reopens), where abstract-level alone would leave it
   * 'open' with nothing open behind it. The failure itself rejects the call (the FlushpointError, not
   * abstract-level's LEVEL_DATABASE_NOT_CLOSED wrapping it): writes made with sync: false may not be
   * durable. A failure met first by close itself (its final
   * sync, the sink's or the WAL's close) gets abstract-level's answer (LEVEL_DATABASE_NOT_CLOSED, the
   * status 'open', writes refused with the failure); a second close() then ends 'closed'. A healthy
   * engine's close() is abstract-level's own call, untouched: its suite checks the order of its events
   * and status changes to the microtask.
   */
  override close(): Promise<void> {
    if (this.#failure === null && this.#wal?.status !== 'failed') return super.close();
    return this.#closeFailed();
  }

  async #closeFailed(): Promise<void> {
    try {
      await super.close();
    } catch (err) {
      if (this.status !== 'open' || this.#wal !== null || (err as { code?: unknown })?.code !== 'LEVEL_DATABASE_NOT_CLOSED') throw err;
      // _close returns at once: nothing is left to release. Its 'closing' was emitted by the first close
      // already: listeners see one 'closing' and one 'closed' (a lifecycle review saw 'closing' twice).
      this.#reclosing = true;
      try {
        await super.close();
      } finally {
        this.#reclosing = false;
      }
      throw (err as Error).cause ?? err;
    }
  }

  /** The second close() of a failed engine is under way (#closeFailed): its 'closing' is not emitted again. */
  #reclosing = false;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    // `#reclosing in this`: abstract-level's constructor emits before this class's fields exist.
    if (event === 'closing' && #reclosing in this && this.#reclosing) return false;
    return super.emit(event, ...args);
  }

  /** @internal abstract-level's implementation hook. */
  async _close(): Promise<void> {
    const wal = this.#wal;
    if (!wal) return;
    // Once the WAL has failed (a full disk, EIO), close reports the failure that failed the engine (that
    // WAL_FAILED, or an earlier one such as ENGINE_CORRUPT), not whatever the sink's close then meets on
    // the same disk (a full-disk review saw BACKUP_FAILED win); the WAL's close would say it only last.
    let error: unknown = wal.status === 'failed' ? this.#failure : null;
    await this.#admin?.close();
    this.#admin = null;
    await this.#checkpointChain.catch(() => {});
    try {
      if (!this.#failure) await wal.sync();
      this.#advance();
    } catch (err) {
      this.#fail(err);
      error = err;
    }
    try {
      // The sink first: its close flushes what the WAL made durable, so close never skips the last backup.
      await this.#sink?.close();
    } catch (err) {
      error ??= err;
    }
    this.#sink = null;
    try {
      await wal.close();
    } catch (err) {
      error ??= err;
    }
    this.#wal = null;
    this.#values.close();
    this.#fail(notOpen(this.location));
    if (error) throw error;
  }

  // ---- writes ----

  /**
   * One write call as one WAL record: a single put (value set) or del (value undefined) by key, or `ops`
   * (a batch or a clear). Resolves when the record is visible (module comment).
   */
  #write(key: string, value: Buffer | undefined, ops: Op[] | null, options: { sync?: boolean }): Promise<void> {
    const wal = this.#wal;
    const refused = this.#refusal();
    if (refused !== null || wal === null) return Promise.reject(refused ?? notOpen(this.location));
    let lsn: number;
    try {
      // append throws (RECORD_TOO_LARGE, WAL_FAILED) before anything is staged: nothing is written then.
      // It copies the record at once, so the encoder's reused buffer is free again when it returns.
      lsn = wal.append(ops !== null ? this.#encodeOps(ops) : value === undefined ? this.#encoder.del(key) : this.#encoder.put(key, value));
    } catch (err) {
      return Promise.reject(err);
    }
    const durable = options.sync !== false;
    const w: PendingWrite = { lsn, key, value, ops, held: null, keyStart: -1, keyEnd: 0, valueStart: 0, valueEnd: 0, durable, resolve: ignore, reject: ignore };
    return this.#pend(wal, w);
  }

  /**
   * Why a write is refused now (the engine failed, is not open, or drains), or null. Checked before a
   * write's value is copied for the index (#own): a refused write keeps nothing, where a drained engine
   * whose clients retry used to fill value slabs with the values of writes it refused.
   */
  #refusal(): unknown {
    // The failure first: after a close that failed (the status still 'open') it says why.
    if (this.#failure) return this.#failure;
    if (!this.#wal) return notOpen(this.location);
    if (this.#admin?.draining) return this.#admin.drainingError(this.location);
    return null;
  }

  /** A write appended as `w`: pending until visible (#advance). */
  #pend(wal: Wal, w: PendingWrite): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      w.resolve = resolve;
      w.reject = reject;
    });
    this.#pending.push(w);
    if (w.durable) {
      // With no wait armed, every earlier pending write is visible or durable: this one is the oldest not durable.
      if (this.#durableWaitLsn === 0) this.#waitDurable(wal, w.lsn);
    } else this.#advance();
    this.#maybeAutoCheckpoint(wal);
    return done;
  }

  /**
   * A sync:true put of the caller's value bytes (and key, latin1 or bytes): its record is encoded from them
   * into the arena and appended at once; its index form (the key's latin1 string, an owned copy of the
   * value) is read back from the record afterwards, in a setImmediate queued behind the one that starts
   * the WAL's commit, so that work runs while the commit is on its way instead of before it starts. The
   * caller may change its buffers once put() returns: the record is already a copy. #advance takes a
   * write that is still held before it makes it visible. Null if the record is too large for the arena.
   */
  #putHeld(wal: Wal, key: string | Uint8Array, value: Uint8Array): Promise<void> | null {
    const arena = this.#arena;
    const record = arena.put(key, value);
    if (record === null) return null;
    let lsn: number;
    try {
      lsn = wal.append(record);
    } catch (err) {
      arena.release(arena.buffer);
      return Promise.reject(err);
    }
    const keyStart = typeof key === 'string' ? -1 : arena.keyStart;
    const w: PendingWrite = {
      lsn,
      key: typeof key === 'string' ? key : '',
      value: undefined,
      ops: null,
      held: arena.buffer,
      keyStart,
      keyEnd: keyStart + (typeof key === 'string' ? 0 : key.byteLength),
      valueStart: arena.valueStart,
      valueEnd: arena.valueStart + value.byteLength,
      durable: true,
      resolve: ignore,
      reject: ignore,
    };
    if (this.#held.length === 0) setImmediate(this.#takeAllHeld);
    this.#held.push(w);
    return this.#pend(wal, w);
  }

  /** `tree` with write `w` applied (a whole clear makes a new tree): what the tree returned holds. */
  #apply(tree: Tree, w: PendingWrite): Tree {
    if (w.held !== null) this.#takeHeld(w);
    if (w.ops !== null) return applyOps(tree, w.ops, this.#dropped);
    if (w.value !== undefined) {
      if (!tree.set(w.key, w.value, true)) this.#dropped.count++;
    } else if (tree.delete(w.key)) this.#dropped.count++;
    return tree;
  }

  /** Reads a held put's key and value back from its record (see #putHeld); a no-op once done. */
  #takeHeld(w: PendingWrite): void {
    const buffer = w.held;
    if (buffer === null) return;
    if (w.keyStart >= 0) w.key = buffer.toString('latin1', w.keyStart, w.keyEnd);
    w.value = this.#values.copy(w.key, buffer.subarray(w.valueStart, w.valueEnd));
    w.held = null;
    this.#arena.release(buffer);
  }

  #encodeOps(ops: Op[]): Uint8Array {
    for (const op of ops) if (op.type === 'clear') return encodeRecord(ops);
    return this.#encoder.ops(ops);
  }

  /**
   * Waits until `lsn` is durable, then makes visible every pending write that may be, and waits again
   * for the oldest that is left (it rides a later commit). A failure of the WAL fails the engine.
   */
  #waitDurable(wal: Wal, lsn: number): void {
    this.#durableWaitLsn = lsn;
    wal.waitDurable(lsn).then(
      () => {
        if (this.#wal !== wal) return; // closed meanwhile
        this.#durableWaitLsn = 0;
        try {
          this.#advance();
          const head = this.#pending[this.#pendingHead];
          if (head && !this.#failure) this.#waitDurable(wal, head.lsn);
        } catch (err) {
          // Nothing here may throw; if it did, no wait would be armed again and every later write would
          // hang: the engine fails instead, with the error.
          this.#fail(err);
        }
      },
      (err: unknown) => {
        if (this.#wal === wal) this.#fail(err);
      },
    );
  }

  /**
   * Runs in the setImmediate queued by a held put, behind the one that starts the WAL's commit: makes the
   * next state from every write pending now, unless one is made already (its writes are still on their
   * way; a second would apply theirs again) or more than NEXT_STATE_WRITES_MAX are pending (up to
   * NEXT_STATE_APPEND_WRITES_MAX if they are all appends: #appendsOnly). With closed-loop writers (all of a
   * turn's writes ride the commit started right before) that commit covers exactly these writes, so
   * #advance then only swaps the tree: the index work of a put is done while its fdatasync runs.
   */
  #prepareNext(): void {
    const pending = this.#pending;
    const count = pending.length - this.#pendingHead;
    if (this.#next !== null || count === 0) return;
    if (count > NEXT_STATE_WRITES_MAX && !(count <= NEXT_STATE_APPEND_WRITES_MAX && this.#appendsOnly())) return;
    let tree = this.#tree.clone();
    for (let i = this.#pendingHead; i < pending.length; i++) tree = this.#apply(tree, pending[i] as PendingWrite);
    this.#next = tree;
    this.#nextLsn = (pending[pending.length - 1] as PendingWrite).lsn;
  }

  /**
   * Whether every pending write is a put of a key above the visible index's largest: in a clone they copy
   * only the B-tree's right edge, however many they are. Held puts have their key read back first (a no-op
   * for those #takeAllHeld took).
   */
  #appendsOnly(): boolean {
    const max = this.#tree.maxKey();
    const pending = this.#pending;
    for (let i = this.#pendingHead; i < pending.length; i++) {
      const w = pending[i] as PendingWrite;
      if (w.ops !== null) return false;
      this.#takeHeld(w);
      if (w.value === undefined || (max !== undefined && w.key <= max)) return false;
    }
    return true;
  }

  /** Makes visible, in LSN order, every pending write that may be: see the module comment. */
  #advance(): void {
    const wal = this.#wal;
    if (!wal) return;
    const durableLsn = wal.durableLsn;
    const pending = this.#pending;
    const first = this.#pendingHead;
    let head = first;
    while (head < pending.length) {
      const w = pending[head] as PendingWrite;
      if (w.durable && w.lsn > durableLsn) break;
      const expected = this.#visibleLsn + (head - first) + 1;
      if (w.lsn !== expected) {
        // Records the engine did not write (appended through db.wal): its state no longer follows its log.
        this.#fail(
          new FlushpointError(
            ErrorCode.ENGINE_CORRUPT,
            `the WAL in ${wal.dir} holds LSN ${expected}${w.lsn - 1 > expected ? `-${w.lsn - 1}` : ''}, not written by the engine at ${this.location} (an append through db.wal?): the engine refuses writes until reopened, and reopening fails on that record`,
            { lsn: expected, file: wal.dir },
          ),
        );
        return;
      }
      head++;
    }
    if (head === first) return;
    const lastLsn = (pending[head - 1] as PendingWrite).lsn;
    let from = first;
    if (this.#next !== null && lastLsn >= this.#nextLsn) {
      // The next state holds exactly the writes up to #nextLsn, all of which become visible now.
      assert(this.#nextLsn > this.#visibleLsn, `the next state (LSN ${this.#nextLsn}) is ahead of the visible one (${this.#visibleLsn})`);
      from += this.#nextLsn - this.#visibleLsn;
      this.#writesAppliedAhead += this.#nextLsn - this.#visibleLsn;
      this.#tree = this.#next;
      this.#next = null;
    }
    for (let i = from; i < head; i++) this.#tree = this.#apply(this.#tree, pending[i] as PendingWrite);
    this.#visibleLsn = lastLsn;
    if (this.#dropped.count >= SLAB_SCAN_DROPPED_MIN || this.#values.scanDue()) this.#maybeCompactSlabs(wal);
    for (let i = first; i < head; i++) (pending[i] as PendingWrite).resolve();
    if (head === pending.length) {
      this.#pending = [];
      this.#pendingHead = 0;
    } else if (head > 1024 && head * 2 > pending.length) {
      this.#pending = pending.slice(head);
      this.#pendingHead = 0;
    } else this.#pendingHead = head;
  }

  /** The WAL failed (sticky): every pending write is rejected with its error, and later ones too. */
  #fail(err: unknown): void {
    this.#failure ??= err;
    const pending = this.#pending;
    for (let i = this.#pendingHead; i < pending.length; i++) (pending[i] as PendingWrite).reject(this.#failure);
    this.#pending = [];
    this.#pendingHead = 0;
    this.#next = null;
  }

  // ---- abstract-level's put() and del(), on their common path ----
  // abstract-level's put() and del() are async functions that await _put()/_del(): a promise and two
  // microtask turns per write between the write's resolution and its caller. On the common path (the
  // database open, no prewrite hook, no 'write' listener, no encoding given per call) they do nothing
  // else than validate the arguments, encode them with the default encodings and call the hook; the
  // engine does that here and hands back the write's own promise. Every other case (opening: deferred;
  // closed: its error; hooks, listeners, per-call encodings, options that are not an object) goes to
  // abstract-level's own code. The shared suite runs every case through both.

  #plainWrite(options: unknown): boolean {
    if (this.status !== 'open' || !(this.hooks.prewrite as unknown as { noop: boolean }).noop || this.listenerCount('write') !== 0) return false;
    if (options === undefined) return true;
    if (typeof options !== 'object' || options === null) return false;
    const o = options as { keyEncoding?: unknown; valueEncoding?: unknown };
    return o.keyEncoding === undefined && o.valueEncoding === undefined;
  }

  /** The default key and value encodings (fixed at construction), as abstract-level's transcoders. */
  #encodings: { key: Transcoder; value: Transcoder } | null = null;

  #defaultEncodings(): { key: Transcoder; value: Transcoder } {
    return (this.#encodings ??= { key: this.keyEncoding() as Transcoder, value: this.valueEncoding() as Transcoder });
  }

  override put(key: unknown, value: unknown, options?: unknown): Promise<void> {
    if (!this.#plainWrite(options)) return super.put(key as K, value as V, options as never);
    try {
      const self = this as unknown as ArgumentChecks;
      self._assertValidKey(key);
      self._assertValidValue(value);
      const e = this.#defaultEncodings();
      return this._put(e.key.encode(key), e.value.encode(value), (options ?? DEFAULT_WRITE_OPTIONS) as FormatOptions);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  override del(key: unknown, options?: unknown): Promise<void> {
    if (!this.#plainWrite(options)) return super.del(key as K, options as never);
    try {
      (this as unknown as ArgumentChecks)._assertValidKey(key);
      return this._del(this.#defaultEncodings().key.encode(key), (options ?? DEFAULT_WRITE_OPTIONS) as FormatOptions);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // _put and _del return #write's promise itself (not wrapped in an async function's): abstract-level
  // awaits it either way, and the wrapper cost a promise and three microtasks per write.

  /** @internal abstract-level's implementation hook. */
  _put(key: Key, value: Key, options: FormatOptions): Promise<void> {
    value = asBytes(value);
    // Refused before anything is copied (#refusal); past it the WAL is there.
    const refused = this.#refusal();
    if (refused !== null) return Promise.reject(refused);
    // A sync:true put of bytes: the held path (#putHeld); anything else as before.
    if (typeof value !== 'string' && options.sync !== false) {
      const held = this.#putHeld(this.#wal as Wal, typeof key === 'string' ? keyIn(key) : key, value);
      if (held !== null) return held;
    }
    const k = keyIn(key);
    return this.#write(k, this.#own(k, value), null, options);
  }

  /** The index's own copy of a value (a string is encoded as utf8). */
  #own(key: string, value: Key): Buffer {
    return typeof value === 'string' ? this.#values.copyString(key, value) : this.#values.copy(key, value);
  }

  /** @internal abstract-level's implementation hook. */
  _del(key: Key, options: FormatOptions): Promise<void> {
    return this.#write(keyIn(key), undefined, null, options);
  }

  /** @internal abstract-level's implementation hook. */
  async _batch(operations: Array<{ type: 'put' | 'del'; key: Key; value?: Key }>, options: FormatOptions): Promise<void> {
    if (operations.length === 0) return;
    const refused = this.#refusal();
    if (refused !== null) throw refused;
    const ops: Op[] = [];
    for (const op of operations) {
      if (op.type === 'put') {
        const key = keyIn(op.key);
        ops.push({ type: 'put', key, value: this.#own(key, asBytes(op.value as Key)) });
      }
      else ops.push({ type: 'del', key: keyIn(op.key) });
    }
    return this.#write('', undefined, ops, options);
  }

  /** @internal abstract-level's implementation hook. */
  async _clear(options: RangeOptions & { snapshot?: EngineSnapshot; sync?: boolean }): Promise<void> {
    const b = boundsOf(options);
    const limit = Number.isFinite(options.limit) && options.limit >= 0 ? options.limit : -1;
    const range = { ...b, limit, reverse: !!options.reverse };
    const snapshot = options.snapshot?.[kTree];
    if (snapshot) {
      // Clear what the snapshot holds in the range (also where the current state changed since).
      const keys = keysInRange(snapshot, range);
      if (keys.length === 0) return;
      return this.#write(
        '',
        undefined,
        keys.map((key) => ({ type: 'del', key })),
        options,
      );
    }
    return this.#write('', undefined, [{ type: 'clear', range }], options);
  }

  // ---- reads ----

  #treeFor(options: { snapshot?: EngineSnapshot } | undefined): Tree {
    return options?.snapshot?.[kTree] ?? this.#tree;
  }

  /** @internal abstract-level's implementation hook. */
  async _get(key: Key, options: FormatOptions): Promise<Key | undefined> {
    return this._getSync(key, options);
  }

  /** @internal abstract-level's implementation hook. */
  _getSync(key: Key, options: FormatOptions): Key | undefined {
    const v = this.#treeFor(options).get(keyIn(key));
    return v === undefined ? undefined : valueOut(v, options.valueEncoding);
  }

  /** @internal abstract-level's implementation hook. */
  async _getMany(keys: Key[], options: FormatOptions): Promise<Array<Key | undefined>> {
    const tree = this.#treeFor(options);
    return keys.map((key) => {
      const v = tree.get(keyIn(key));
      return v === undefined ? undefined : valueOut(v, options.valueEncoding);
    });
  }

  /** @internal abstract-level's implementation hook. */
  async _has(key: Key, options: FormatOptions): Promise<boolean> {
    return this.#treeFor(options).has(keyIn(key));
  }

  /** @internal abstract-level's implementation hook. */
  async _hasMany(keys: Key[], options: FormatOptions): Promise<boolean[]> {
    const tree = this.#treeFor(options);
    return keys.map((key) => tree.has(keyIn(key)));
  }

  // Each iterator reads a snapshot: an explicit one's tree, or (implicit) a clone of the tree now.
  #iterTree(options: { snapshot?: EngineSnapshot }): Tree {
    return options.snapshot?.[kTree] ?? this.#tree.clone();
  }

  /** @internal abstract-level's implementation hook. */
  _iterator(options: RangeOptions & { snapshot?: EngineSnapshot }): EngineIterator {
    return new EngineIterator(this as never, this.#iterTree(options), options);
  }

  /** @internal abstract-level's implementation hook. */
  _keys(options: RangeOptions & { snapshot?: EngineSnapshot }): EngineKeyIterator {
    return new EngineKeyIterator(this as never, this.#iterTree(options), options);
  }

  /** @internal abstract-level's implementation hook. */
  _values(options: RangeOptions & { snapshot?: EngineSnapshot }): EngineValueIterator {
    return new EngineValueIterator(this as never, this.#iterTree(options), options);
  }

  /** @internal abstract-level's implementation hook. */
  _snapshot(options: object): EngineSnapshot {
    return new EngineSnapshot(this.#tree.clone(), options);
  }

  // ---- checkpoints ----

  /**
   * Writes the state at the visible LSN to a checkpoint file (streamed from a snapshot: writers go on),
   * waits until the WAL is durable up to that LSN, publishes the file durably, removes checkpoints older
   * than the previous one, and lets the WAL drop the segments the previous one covers. One at a time:
   * a call made while one runs waits for it and then writes its own.
   */
  async checkpoint(): Promise<CheckpointResult> {
    if (this.status === 'opening') await new Promise<void>((resolve) => this.defer(() => resolve()));
    if (this.status !== 'open' || !this.#wal) throw notOpen(this.location);
    const run = this.#checkpointChain.then(
      () => this.#checkpoint(),
      () => this.#checkpoint(),
    );
    this.#checkpointChain = run.catch(() => {});
    return run;
  }

  async #checkpoint(): Promise<CheckpointResult> {
    const wal = this.#wal;
    if (!wal) throw notOpen(this.location);
    const started = performance.now();
    const lsn = this.#visibleLsn;
    const snapshot = this.#tree.clone();
    const appendedBefore = this.#appendedAtCheckpoint;
    this.#appendedAtCheckpoint = wal.appendedBytes;
    try {
      return await this.#checkpointAt(wal, lsn, snapshot, started);
    } catch (err) {
      // A failed checkpoint leaves the WAL as long as before: the automatic one tries again soon.
      this.#appendedAtCheckpoint = appendedBefore;
      const published = this.#checkpoints[this.#checkpoints.length - 1]?.lsn === lsn;
      throw checkpointFailure(err, lsn, this.location, published);
    }
  }

  async #checkpointAt(wal: Wal, lsn: number, snapshot: Tree, started: number): Promise<CheckpointResult> {
    const { fs, location } = this.#o;
    const dir = `${location}/${CHECKPOINTS_DIR}`;
    const newest = this.#checkpoints[this.#checkpoints.length - 1];
    if (newest && newest.lsn === lsn) {
      const { sizeBytes } = await fs.stat(`${dir}/${newest.file}`);
      return { lsn, bytes: sizeBytes, durationMs: performance.now() - started };
    }
    const scan = this.#beginSlabScan(wal);
    const written = await writeCheckpoint(fs, dir, snapshot, lsn, this.#o.wal.syncMethod ?? 'fdatasync', async () => {
      // Never publish a state the WAL could lose: the checkpoint may hold sync:false writes.
      if (lsn > 0) await wal.waitDurable(lsn);
    }, yieldToLoop, scan.visit);
    this.#checkpoints.push({ lsn, file: written.name });
    while (this.#checkpoints.length > CHECKPOINTS_KEPT_COUNT) {
      const old = this.#checkpoints.shift() as { lsn: number; file: string };
      try {
        await fs.unlink(`${dir}/${old.file}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    await fs.syncDir(dir);
    // Keep the WAL back to the older kept checkpoint: it is the fallback if the newest is damaged. With
    // one checkpoint only (the first), the fallback is the WAL from its start: nothing is dropped.
    const oldest = this.#checkpoints[0] as { lsn: number };
    if (this.#checkpoints.length >= CHECKPOINTS_KEPT_COUNT && this.#wal === wal && wal.status === 'open') await this.#truncateWal(wal, oldest.lsn + 1);
    const result = { lsn, bytes: written.bytes, durationMs: performance.now() - started };
    this.#checkpointsWritten++;
    this.#checkpointBytesPerKey = bytesPerKey(result.bytes, snapshot.size);
    this.#lastCheckpoint = result;
    this.#o.logger?.info({ location, ...result }, 'engine checkpoint');
    await scan.finish();
    return result;
  }

  /**
   * Drops the WAL's segments below `lsn` after a checkpoint was published. A failure here does not fail
   * the checkpoint (it is durable and will be loaded): the WAL refuses truncation from then until it is
   * reopened (wal/retention.ts: freeing a later segment could leave a gap on disk), so the log grows until
   * the engine is closed and opened again. Said once in the log at error level, and in stats() as
   * walTruncationError (cleared by a truncation that succeeds).
   */
  async #truncateWal(wal: Wal, lsn: number): Promise<void> {
    try {
      await wal.truncateBefore(lsn);
      this.#walTruncationError = null;
    } catch (err) {
      if (this.#wal !== wal || wal.status !== 'open') return; // closing or failed: close reports it
      const message = (err as Error)?.message ?? String(err);
      if (this.#walTruncationError === null) this.#o.logger?.error({ err, location: this.location }, 'WAL truncation after a checkpoint failed; the log grows until the engine is reopened');
      this.#walTruncationError = message;
    }
  }

  /** Calls `visit` with the key and value of every put not visible yet whose value the index owns already (not a held one's). */
  #eachPendingPut(visit: (key: string, value: Buffer) => void): void {
    for (let i = this.#pendingHead; i < this.#pending.length; i++) {
      const w = this.#pending[i] as PendingWrite;
      if (w.ops !== null) {
        for (const op of w.ops) if (op.type === 'put') visit(op.key, op.value);
      } else if (w.value !== undefined) visit(w.key, w.value);
    }
  }

  /** The keys of the puts not visible yet (their values may be in a slab already, not in any state). */
  #pendingPutKeys(): Set<string> {
    const keys = new Set<string>();
    this.#eachPendingPut((key) => keys.add(key));
    return keys;
  }

  /** The value slabs holding a value of a pending put (a held put's value is not in one yet). */
  #pendingValueSlabs(): Set<Slab> {
    const slabs = new Set<Slab>();
    this.#eachPendingPut((_, value) => {
      const slab = this.#values.slabOf(value);
      if (slab !== undefined) slabs.add(slab);
    });
    return slabs;
  }

  /**
   * Starts a scan of the value slabs: `visit` counts each value of the state scanned (a snapshot taken
   * now); `finish` relocates the sparse slabs and tells V8 of the ones the index dropped (#releaseSlabs).
   */
  #beginSlabScan(wal: Wal): { visit: (value: Uint8Array) => void; finish: () => Promise<void> } {
    this.#dropped.count = 0;
    const pendingAtScan = this.#pendingValueSlabs();
    const scan = this.#values.scan();
    return {
      visit: scan.visit,
      finish: async () => {
        await this.#relocate(wal, scan.sparse());
        this.#releaseSlabs(wal, scan, pendingAtScan);
      },
    };
  }

  /**
   * Once more values were replaced or removed since the last scan of the value slabs than the index
   * holds keys (and at least SLAB_SCAN_DROPPED_MIN), or enough shared slabs were filled since
   * (ValueSlabs.scanDue), scans a snapshot of the state, relocates the sparse slabs and tells V8 of the
   * dropped ones, without waiting for a checkpoint: a state emptied by deletes writes little WAL, so no
   * automatic checkpoint would come, and checkpoints may be rare or off. Queued behind the checkpoints
   * (one scan at a time).
   */
  #maybeCompactSlabs(wal: Wal): void {
    if (this.#slabScanQueued || (this.#dropped.count < this.#tree.size && !this.#values.scanDue())) return;
    this.#slabScanQueued = true;
    this.#checkpointChain = this.#checkpointChain.then(async () => {
      try {
        if (this.#wal !== wal) return;
        const scan = this.#beginSlabScan(wal);
        let visited = 0;
        for (const [, value] of this.#tree.clone().entries()) {
          scan.visit(value);
          if (++visited % APPLY_YIELD_ENTRIES === 0) {
            await yieldToLoop();
            if (this.#wal !== wal) return;
          }
        }
        await scan.finish();
      } finally {
        this.#slabScanQueued = false;
      }
      // Values dropped while it ran were not in its snapshot: the writes that dropped them may all be
      // done by now, so nothing else would look again.
      if (this.#wal === wal && (this.#dropped.count >= SLAB_SCAN_DROPPED_MIN || this.#values.scanDue())) this.#maybeCompactSlabs(wal);
    }).catch(() => {});
  }

  /**
   * Tells V8 of the value slabs the index no longer holds after `scan` and its relocation (value-slabs.ts),
   * but for those holding the value of a put not visible when the scan began (`pendingAtScan`: it may be
   * visible now, outside the scanned state) or now.
   */
  #releaseSlabs(wal: Wal, scan: SlabScan, pendingAtScan: Set<Slab>): void {
    if (this.#wal !== wal) return; // closed meanwhile: close told V8 of every slab
    for (const slab of this.#pendingValueSlabs()) pendingAtScan.add(slab);
    scan.released(pendingAtScan, this.#tree.size);
  }

  /**
   * Copies the values still live in each of `slabs` (value slabs less than half live when the checkpoint
   * scanned its state) into the current slab, in the visible state and in the next one if made, one slab
   * per turn of the event loop; an old slab is then freed once no snapshot holds it (value-slabs.ts).
   * The values are the same bytes: no reader can tell.
   */
  async #relocate(wal: Wal, slabs: Slab[]): Promise<void> {
    let moved = 0;
    for (const slab of slabs) {
      if (this.#wal !== wal) return;
      const trees = this.#next === null ? [this.#tree] : [this.#tree, this.#next];
      const pending = this.#pendingPutKeys();
      moved += this.#values.relocate(slab, trees, (key) => pending.has(key));
      await yieldToLoop();
    }
    if (slabs.length > 0) this.#o.logger?.info({ location: this.location, slabs: slabs.length, values: moved }, 'engine value slabs relocated');
  }

  /**
   * An automatic checkpoint starts once the WAL appended since the last one reaches checkpointEveryBytes
   * and a share of the state's size now, estimated as the newest checkpoint's bytes per key times the
   * keys the index holds (so a state that shrank, by deletes or a clear, lowers the threshold at once).
   * Runs on every write: the common case returns on the first comparison.
   */
  #maybeAutoCheckpoint(wal: Wal): void {
    if (this.#autoCheckpoint) return;
    const sinceBytes = wal.appendedBytes - this.#appendedAtCheckpoint;
    if (sinceBytes < this.#o.checkpointEveryBytes) return;
    if (sinceBytes < (this.#checkpointBytesPerKey * this.#tree.size * this.#o.checkpointStatePercent) / 100) return;
    if (this.#autoCheckpointRetryAtMs > performance.now()) return;
    this.#autoCheckpoint = this.checkpoint().then(
      () => {
        this.#checkpointError = null;
        this.#autoCheckpointRetryAtMs = 0;
      },
      (err: unknown) => {
        // The first write past the threshold after AUTO_CHECKPOINT_RETRY_MS tries again (the threshold
        // still counts from the last checkpoint that succeeded); the failure is in stats() and the log.
        this.#autoCheckpointRetryAtMs = performance.now() + AUTO_CHECKPOINT_RETRY_MS;
        this.#checkpointError = (err as Error)?.message ?? String(err);
        this.#o.logger?.error({ err, location: this.location }, 'automatic checkpoint failed');
      },
    ).finally(() => {
      this.#autoCheckpoint = null;
    });
  }

  // ---- introspection ----

  /**
   * The WAL under <location>/wal (null unless open): for its state, stats, reads and holds (the admin
   * endpoint, drain, tests). Never append or truncate through it: a record the engine did not write fails
   * the engine (ENGINE_CORRUPT), and the engine truncates the log itself after each checkpoint.
   */
  get wal(): Wal | null {
    return this.#wal;
  }

  /** The backup sink, if the backup option was given and the engine is open. */
  get backup(): BackupSink | null {
    return this.#sink;
  }

  /** Every write up to this LSN is visible to readers. */
  get visibleLsn(): number {
    return this.#visibleLsn;
  }

  /**
   * The rolling-restart step: refuse new writes (ENGINE_DRAINING), let accepted ones finish, make the WAL
   * durable and run a barrier forceFlush on the backup. Resolves { walDurableLsn, backupCheckpointLsn,
   * waitedMs } with backupCheckpointLsn >= walDurableLsn; FLUSH_TIMEOUT carries the LSNs reached. Writes
   * stay refused until resume() or close. Concurrent drains share one result.
   */
  async drain(options: DrainOptions = {}): Promise<DrainResult> {
    if (this.status === 'opening') await new Promise<void>((resolve) => this.defer(() => resolve()));
    if (!this.#admin) throw notOpen(this.location);
    return await this.#admin.drain(options);
  }

  /** Accepts writes again after a drain. */
  resume(): void {
    this.#admin?.resume();
  }

  /** New writes are refused (a drain ran and resume() was not called). */
  get draining(): boolean {
    return this.#admin?.draining ?? false;
  }

  /** The engine's part of GET /metrics. */
  #metricsStats(): EngineMetricsStats {
    return { keys: this.#tree.size, checkpointsWritten: this.#checkpointsWritten, walTruncationFailed: this.#walTruncationError !== null, valueSlabs: this.#values.stats() };
  }

  stats(): EngineStats {
    return {
      visibleLsn: this.#visibleLsn,
      pendingWrites: this.#pending.length - this.#pendingHead,
      keys: this.#tree.size,
      checkpoints: this.#checkpoints.map((c) => ({ ...c })),
      checkpointsWritten: this.#checkpointsWritten,
      lastCheckpoint: this.#lastCheckpoint,
      checkpointError: this.#checkpointError,
      walTruncationError: this.#walTruncationError,
      recovery: this.#recovery,
      valueSlabs: this.#values.stats(),
      writesAppliedAhead: this.#writesAppliedAhead,
      wal: this.#wal?.stats() ?? null,
      backup: this.#sink?.stats() ?? null,
    };
  }
}

// The built-in 'msgpack' encoding by name everywhere an encoding is (engine/sublevel.ts, acceptMsgpackByName).
acceptMsgpackByName(Engine.prototype);

/**
 * A checkpoint's failure as the caller gets it: the file system's error (a full disk, EIO) becomes
 * ENGINE_CHECKPOINT_FAILED naming the file, with that error as its cause; the WAL's own (WAL_FAILED,
 * WAL_CLOSED) and every other FlushpointError pass as they are.
 */
function checkpointFailure(err: unknown, lsn: number, location: string, published: boolean): unknown {
  if (!isFileSystemError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  // Published: the new file is in place (it is loaded at the next open); removing the oldest one or
  // syncing the directory failed after it, and the WAL was not truncated.
  const what = published ? `was published, but the steps after it failed (the WAL keeps its segments)` : 'failed';
  return new FlushpointError(ErrorCode.ENGINE_CHECKPOINT_FAILED, `checkpoint of ${location} at LSN ${lsn} ${what}: ${e.message}`, { cause: err, file: e.path, lsn });
}
