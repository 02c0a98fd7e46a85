/**
 * Interleaved A/B of the engine's durable puts between builds, in turns: one child process per build and
 * store runs at a time, for a short block (--block-ms), then the next, round robin (the order reversed
 * every other cycle), so every store sees the disk as it is at that moment and no child's heap, GC or
 * threads are shared with another's. Figures are taken inside the blocks only; the first block of each
 * child is its warm-up. Children of one round start fresh (a new directory, a new process).
 *
 *   node dist/bench/engine-turns.js --builds A=OLD/dist,B=dist [--stores engine,wal] [--sizes 128,4096]
 *        [--writers 1,64] [--rounds 4] [--blocks 12] [--block-ms 250] [--dir data/turns] [--trace]
 *
 * Stores: engine (Engine.put of the payload under a fresh 8-byte key, 'buffer' encodings), wal (the
 * same build's WAL alone: waitDurable(append(payload + 15 bytes)), the size of the engine's record);
 * the peers better-sqlite3 as bench section 7 runs it, sqlite (one row per transaction) and
 * sqlite-batched (one transaction per drain of the queue), run once, with the first build's row.
 * Per child: ops/s (acknowledgements inside the blocks / the blocks' time), put latency p50 and mean,
 * and the main thread's time on a CPU per put (/proc/thread-self/schedstat; NaN where absent).
 * --trace (1 writer only) adds each put's stages from timestamps: put() call -> wal.append -> commit
 * (the file system's writev + fdatasync, as the main thread sees it) -> the WAL's wait settles -> the
 * caller resumes. The summary has, per row and store, the median of each figure over the rounds and the
 * median of the per-round ratios of each build to the first (same store), to the wal of its build, and to
 * the first peer listed in --stores.
 * Not part of npm test: a tool for A/B tables in commit messages and docs/decisions.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { betterSqlite3BatchedPeer, betterSqlite3Peer } from './peers/better-sqlite3.js';

type Store = 'engine' | 'wal' | 'sqlite' | 'sqlite-batched';
const PEER_STORES: readonly Store[] = ['sqlite', 'sqlite-batched'];
const STAGES = ['call->append', 'append', 'append->commit', 'commit', 'commit->wal', 'wal->caller', 'outside commit'] as const;
/** Bytes the engine's record adds to a put's value (8-byte key): array headers, version, op, two bin headers. */
const ENGINE_RECORD_EXTRA_BYTES = 15;

interface ChildSpec {
  build: string;
  distDir: string;
  store: Store;
  sizeBytes: number;
  writersCount: number;
  dir: string;
  trace: boolean;
}

interface BlockResult {
  ops: number;
  elapsedMs: number;
  cpuNs: number;
}

interface ChildSummary {
  opsPerSec: number;
  p50Us: number;
  meanUs: number;
  cpuUsPerOp: number;
  /** Stage -> [p50, mean] in us (--trace only). */
  stages: Record<string, [number, number]>;
}

function argOf(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The main thread's time on a CPU so far, in ns (the kernel's per-thread schedstat; NaN where absent). */
function threadCpuNs(): number {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]);
  } catch {
    return Number.NaN;
  }
}

// ---- child ----

type Write = () => Promise<unknown>;

interface Trace {
  appendInMs: number;
  appendOutMs: number;
  commitStartMs: number;
  commitEndMs: number;
  waitDoneMs: number;
}

/** Wraps a file system so the trace sees each commit start and settle (a Proxy keeps the handle's own `this`). */
function tracedFs(inner: object, t: Trace): object {
  const handle = (h: object): object =>
    new Proxy(h, {
      get(target, p) {
        const v = Reflect.get(target, p) as unknown;
        if (p === 'commit') {
          return (...a: unknown[]) => {
            t.commitStartMs = performance.now();
            const pr = (v as (...x: unknown[]) => Promise<void>).apply(target, a);
            pr.then(() => (t.commitEndMs = performance.now()), () => {});
            return pr;
          };
        }
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
      },
    });
  return new Proxy(inner, {
    get(target, p) {
      const v = Reflect.get(target, p) as unknown;
      if (p === 'open') return async (...a: unknown[]) => handle(await (v as (...x: unknown[]) => Promise<object>).apply(target, a));
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
}

interface WalLike {
  append(payload: Uint8Array): number;
  waitDurable(lsn: number): Promise<number>;
  close(): Promise<void>;
}

function traceWal(wal: WalLike, t: Trace): void {
  const append = wal.append.bind(wal);
  const waitDurable = wal.waitDurable.bind(wal);
  wal.append = (payload) => {
    t.appendInMs = performance.now();
    const lsn = append(payload);
    t.appendOutMs = performance.now();
    return lsn;
  };
  wal.waitDurable = (lsn) => {
    const p = waitDurable(lsn);
    p.then(() => (t.waitDoneMs = performance.now()), () => {});
    return p;
  };
}

function key(n: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  k.writeUInt32BE(n >>> 0, 4);
  return k;
}

async function openChildStore(spec: ChildSpec, t: Trace): Promise<{ write: Write; close: () => Promise<void> }> {
  const dist = path.resolve(spec.distDir);
  const { Engine } = (await import(`${dist}/engine/index.js`)) as typeof import('../engine/index.js');
  const { Wal } = (await import(`${dist}/wal/index.js`)) as typeof import('../wal/index.js');
  const { nodeFileSystem } = (await import(`${dist}/fs/index.js`)) as typeof import('../fs/index.js');
  const fsOption = spec.trace ? { fs: tracedFs(nodeFileSystem, t) as typeof nodeFileSystem } : {};
  fs.rmSync(spec.dir, { recursive: true, force: true });
  fs.mkdirSync(spec.dir, { recursive: true });
  if (spec.store === 'sqlite' || spec.store === 'sqlite-batched') {
    const open = await (spec.store === 'sqlite' ? betterSqlite3Peer : betterSqlite3BatchedPeer).load();
    return open(spec.dir, crypto.randomBytes(spec.sizeBytes));
  }
  if (spec.store === 'wal') {
    const payload = crypto.randomBytes(spec.sizeBytes + ENGINE_RECORD_EXTRA_BYTES);
    const wal = (await Wal.open({ dir: spec.dir, ...fsOption })) as unknown as WalLike;
    if (spec.trace) traceWal(wal, t);
    return { write: () => wal.waitDurable(wal.append(payload)), close: () => wal.close() };
  }
  const payload = crypto.randomBytes(spec.sizeBytes);
  const db = new Engine<Buffer, Buffer>(spec.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', checkpointEveryBytes: 1024 * 1024 * 1024, ...fsOption });
  await db.open();
  if (spec.trace) traceWal(db.wal as unknown as WalLike, t);
  let next = 0;
  return { write: () => db.put(key(next++), payload), close: () => db.close() };
}

async function child(spec: ChildSpec): Promise<void> {
  const t: Trace = { appendInMs: 0, appendOutMs: 0, commitStartMs: 0, commitEndMs: 0, waitDoneMs: 0 };
  const store = await openChildStore(spec, t);
  const latenciesUs: number[] = [];
  const stages: number[][] = STAGES.map(() => []);
  let measuring = false;
  let blocks = 0;
  const runBlock = async (blockMs: number): Promise<BlockResult> => {
    measuring = blocks++ > 0; // the first block warms up
    let ops = 0;
    let running = true;
    const startMs = performance.now();
    const cpu0 = threadCpuNs();
    const writer = async (): Promise<void> => {
      while (running) {
        const t0 = performance.now();
        await store.write();
        const t1 = performance.now();
        if (!running) return; // acknowledged after the block closed: not counted
        ops++;
        if (!measuring) continue;
        latenciesUs.push((t1 - t0) * 1000);
        if (spec.trace) {
          const commitMs = t.commitEndMs - t.commitStartMs;
          const st = [t.appendInMs - t0, t.appendOutMs - t.appendInMs, t.commitStartMs - t.appendOutMs, commitMs, t.waitDoneMs - t.commitEndMs, t1 - t.waitDoneMs, t1 - t0 - commitMs];
          st.forEach((x, i) => (stages[i] as number[]).push(x * 1000));
        }
      }
    };
    const writers = Array.from({ length: spec.writersCount }, () => writer());
    await new Promise((resolve) => setTimeout(resolve, blockMs));
    running = false;
    const elapsedMs = performance.now() - startMs;
    const cpuNs = threadCpuNs() - cpu0;
    await Promise.all(writers);
    return { ops, elapsedMs, cpuNs };
  };
  const results: BlockResult[] = [];
  process.on('message', (m: { cmd: 'run'; blockMs: number } | { cmd: 'end' }) => {
    void (async () => {
      if (m.cmd === 'run') {
        const r = await runBlock(m.blockMs);
        if (blocks > 1) results.push(r);
        process.send?.({ cmd: 'done' });
        return;
      }
      await store.close();
      fs.rmSync(spec.dir, { recursive: true, force: true });
      const ops = results.reduce((s, r) => s + r.ops, 0);
      const ms = results.reduce((s, r) => s + r.elapsedMs, 0);
      const cpuNs = results.reduce((s, r) => s + r.cpuNs, 0);
      const sorted = [...latenciesUs].sort((a, b) => a - b);
      const summary: ChildSummary = {
        opsPerSec: (ops / ms) * 1000,
        p50Us: sorted[sorted.length >> 1] ?? Number.NaN,
        meanUs: latenciesUs.reduce((s, x) => s + x, 0) / latenciesUs.length,
        cpuUsPerOp: cpuNs / 1000 / ops,
        stages: {},
      };
      if (spec.trace) {
        STAGES.forEach((name, i) => {
          const xs = stages[i] as number[];
          summary.stages[name] = [median(xs), xs.reduce((s, x) => s + x, 0) / xs.length];
        });
      }
      process.send?.({ cmd: 'summary', summary }, () => process.exit(0));
    })();
  });
  process.send?.({ cmd: 'ready' });
}

// ---- parent ----

function message(c: ChildProcess, cmd: string): Promise<{ cmd: string; summary?: ChildSummary }> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { cmd: string; summary?: ChildSummary }): void => {
      if (m.cmd !== cmd) return;
      c.off('message', onMessage);
      c.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null): void => reject(new Error(`child exited (${code}) before '${cmd}'`));
    c.on('message', onMessage);
    c.once('exit', onExit);
  });
}

async function round(specs: ChildSpec[], blocks: number, blockMs: number): Promise<ChildSummary[]> {
  const self = fileURLToPath(import.meta.url);
  const children = specs.map((spec) => fork(self, ['--child', JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await Promise.all(children.map((c) => message(c, 'ready')));
  for (let b = 0; b < blocks; b++) {
    const order = b % 2 === 0 ? children : [...children].reverse();
    for (const c of order) {
      c.send({ cmd: 'run', blockMs });
      await message(c, 'done');
    }
  }
  const summaries: ChildSummary[] = [];
  for (const c of children) {
    const done = message(c, 'summary');
    c.send({ cmd: 'end' });
    summaries.push((await done).summary as ChildSummary);
  }
  return summaries;
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

async function parent(): Promise<void> {
  const builds = argOf('builds', `B=${path.dirname(path.dirname(fileURLToPath(import.meta.url)))}`)
    .split(',')
    .map((s) => {
      const [name, dir] = s.split('=') as [string, string | undefined];
      if (!dir) throw new RangeError(`--builds takes NAME=DIST pairs, got ${s}`);
      return { name, distDir: path.resolve(dir) };
    });
  const stores = argOf('stores', 'engine,wal').split(',') as Store[];
  for (const s of stores) if (s !== 'engine' && s !== 'wal' && !PEER_STORES.includes(s)) throw new RangeError(`unknown store ${s}`);
  const sizes = argOf('sizes', '128').split(',').map(Number);
  const writers = argOf('writers', '1').split(',').map(Number);
  const rounds = Number(argOf('rounds', '4'));
  const blocks = Number(argOf('blocks', '12'));
  const blockMs = Number(argOf('block-ms', '250'));
  const trace = process.argv.includes('--trace');
  const dir = path.resolve(argOf('dir', 'data/turns'));
  const loadAverage = (): string => fs.readFileSync('/proc/loadavg', 'latin1').split(' ')[0] ?? '?';
  for (const sizeBytes of sizes) {
    for (const writersCount of writers) {
      const labels: string[] = [];
      const specs: ChildSpec[] = [];
      for (const b of builds) {
        for (const store of stores) {
          if (PEER_STORES.includes(store) && b !== builds[0]) continue; // a peer is the same in every build
          labels.push(`${b.name}:${store}`);
          specs.push({ build: b.name, distDir: b.distDir, store, sizeBytes, writersCount, dir: path.join(dir, `${b.name}-${store}`), trace: trace && writersCount === 1 && !PEER_STORES.includes(store) });
        }
      }
      const all: ChildSummary[][] = [];
      for (let r = 0; r < rounds; r++) {
        const load = loadAverage();
        const s = await round(specs, blocks, blockMs);
        all.push(s);
        console.log(`${sizeBytes} B x ${writersCount} round ${r + 1} (load ${load}): ` + s.map((x, i) => `${labels[i]} ${fmt(x.opsPerSec, 0)}/s p50 ${fmt(x.p50Us)} mean ${fmt(x.meanUs)} cpu ${fmt(x.cpuUsPerOp, 2)}`).join(' | '));
      }
      console.log(`\n${sizeBytes} B x ${writersCount} writers, ${rounds} rounds x ${blocks - 1} blocks of ${blockMs} ms: medians over rounds`);
      console.log(['store'.padEnd(14), 'ops/s', 'p50 us', 'mean us', 'cpu us/put', 'vs 1st build', 'vs wal', 'vs 1st peer'].map((h) => h.padStart(13)).join(''));
      specs.forEach((spec, i) => {
        const col = (f: (x: ChildSummary) => number): number => median(all.map((r) => f(r[i] as ChildSummary)));
        const first = specs.findIndex((s) => s.store === spec.store);
        const wal = specs.findIndex((s) => s.build === spec.build && s.store === 'wal');
        const peer = specs.findIndex((s) => PEER_STORES.includes(s.store));
        const ratio = (j: number): string => (j < 0 ? '-' : fmt(median(all.map((r) => (r[i] as ChildSummary).opsPerSec / (r[j] as ChildSummary).opsPerSec)), 3));
        console.log([(labels[i] as string).padEnd(14), fmt(col((x) => x.opsPerSec), 0), fmt(col((x) => x.p50Us)), fmt(col((x) => x.meanUs)), fmt(col((x) => x.cpuUsPerOp), 2), ratio(first), ratio(wal), ratio(peer)].map((c) => c.padStart(13)).join(''));
      });
      if (specs.some((s) => s.trace)) {
        console.log(`\nstages, us (median over rounds of each child's p50 / mean):`);
        console.log(['stage'.padEnd(16), ...labels.map((l) => l.padStart(20))].join(''));
        for (const st of STAGES) {
          const cells = specs.map((spec, i) =>
            !spec.trace
              ? '-'
              : `${fmt(median(all.map((r) => (r[i] as ChildSummary).stages[st]?.[0] ?? Number.NaN)))} / ${fmt(median(all.map((r) => (r[i] as ChildSummary).stages[st]?.[1] ?? Number.NaN)))}`);
          console.log([st.padEnd(16), ...cells.map((c) => c.padStart(20))].join(''));
        }
      }
      console.log('');
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === '--child') await child(JSON.parse(process.argv[3] as string) as ChildSpec);
else await parent();
