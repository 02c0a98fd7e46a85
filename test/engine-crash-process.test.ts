/**
 * The engine in a real process that is SIGKILLed: a child (test/fixtures/engine-child.mjs, on the built
 * dist) runs 16 concurrent writers (puts, dels, array and chained batches, each a pure function of
 * round/writer/seq: test/fixtures/engine-ops.mjs) with automatic checkpoints every 64 KiB of WAL, and
 * prints `ack <writer> <seq>` after each acknowledged write. The parent kills it at a random moment,
 * again and again on one location (each child recovers what the last left), and after each kill opens
 * the engine itself and checks, per writer, that its keys hold exactly the state after its writes
 * 1..s with s its last acknowledged seq or the one after (one write in flight per writer): nothing
 * acknowledged lost, batches whole, nothing invented; and every earlier round's keys unchanged.
 *
 * FLUSHPOINT_KILLS=<n> runs more rounds (npm run test:campaign); FLUSHPOINT_SEED=<n> picks the same
 * kill moments again (the child's timing is the machine's).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { NodeFileSystem } from '../fs/index.js';
import { seededRandom } from '../core/random.js';
import { replayHint, seedList } from './helpers/seeds.js';
import { applyWrites } from './fixtures/engine-ops.mjs';

const TEST_FILE = 'test/engine-crash-process.test.ts';
const CHILD = fileURLToPath(new URL('./fixtures/engine-child.mjs', import.meta.url));
const KILLS = Math.max(20, Number(process.env.FLUSHPOINT_KILLS ?? 22));
const WRITERS = 16;
const CHECKPOINT_EVERY_BYTES = 64 * 1024;

const alive = new Set<ChildProcess>();
afterEach(() => {
  for (const c of alive) c.kill('SIGKILL');
});

/** Runs the child until `stop` resolves, then SIGKILLs it; returns its complete stdout lines. */
async function runChild(args: string[], killAt: (lines: string[], wait: (re: RegExp) => Promise<void>) => Promise<void>): Promise<{ lines: string[]; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  alive.add(child);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let watchers: Array<() => void> = [];
  const exited = new Promise<string | null>((resolve) =>
    child.on('close', (_code, signal) => {
      alive.delete(child);
      for (const w of watchers) w();
      resolve(signal);
    }),
  );
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    const ws = watchers;
    watchers = [];
    for (const w of ws) w();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => {
    stderr += c;
  });
  const wait = (re: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (lines.some((l) => re.test(l))) resolve();
        else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`child exited before ${re}; stderr: ${stderr}`));
        else watchers.push(check);
      };
      check();
    });
  await killAt(lines, wait);
  child.kill('SIGKILL');
  const signal = await exited;
  return { lines, signal, stderr };
}

describe('engine in a process that is SIGKILLed', () => {
  const name = `a child with ${WRITERS} concurrent writers and automatic checkpoints, SIGKILLed ${KILLS} times: every acknowledged write recovered, batches whole`;
  it(name, async () => {
    const [seed] = seedList(1, 20_261_203);
    const rng = seededRandom(seed as number);
    const location = await mkdtemp(join(tmpdir(), 'flushpoint-engine-crash-'));
    const ackDir = await mkdtemp(join(tmpdir(), 'flushpoint-engine-crash-acks-'));
    const fs = new NodeFileSystem();
    const expected = new Map<string, string>();
    const summary: string[] = [];
    let acksTotal = 0;
    let checkpointsSeen = 0;
    try {
      for (let round = 1; round <= KILLS; round++) {
        let moment = '';
        const ackFile = join(ackDir, `acks-${round}`);
        const { signal, stderr } = await runChild([location, String(round), String(WRITERS), String(CHECKPOINT_EVERY_BYTES), ackFile], async (_lines, wait) => {
          const pick = rng.int(5);
          if (pick === 0) {
            const ms = rng.int(300);
            moment = `${ms} ms after spawn`;
            await sleep(ms);
            return;
          }
          await wait(/^ready /);
          await wait(/^ack /);
          const ms = rng.int(pick === 1 ? 50 : 400);
          moment = `${ms} ms after the first ack`;
          await sleep(ms);
        });
        expect(signal, `round ${round}: the child must die by SIGKILL; stderr: ${stderr}`).toBe('SIGKILL');
        const acked = new Array<number>(WRITERS).fill(0);
        // Counted from the child's ack file (synchronous writes), not stdout: a full pipe loses lines at SIGKILL.
        const lines = (await readFile(ackFile, 'utf8').catch(() => '')).split('\n');
        for (const l of lines) {
          const m = /^ack (\d+) (\d+)$/.exec(l);
          if (!m) continue;
          const w = Number(m[1]);
          const s = Number(m[2]);
          expect(s, `round ${round}: writer ${w} acknowledged out of order`).toBe((acked[w] as number) + 1);
          acked[w] = s;
          acksTotal++;
        }
        const db = new Engine(location, { fs, wal: { segmentSizeBytes: 256 * 1024 } });
        try {
          await db.open();
          if (db.stats().recovery.checkpointLsn > 0) checkpointsSeen++;
          const all = new Map(await db.iterator().all());
          const prefix = `r${String(round).padStart(3, '0')}/`;
          for (let w = 0; w < WRITERS; w++) {
            const wp = `${prefix}w${String(w).padStart(2, '0')}/`;
            const got = [...all].filter(([k]) => k.startsWith(wp)).sort();
            const a = acked[w] as number;
            let match: number | null = null;
            for (const s of [a, a + 1]) {
              const want = [...applyWrites(new Map(), round, w, s)].sort();
              if (JSON.stringify(want) === JSON.stringify(got)) {
                match = s;
                break;
              }
            }
            expect(match, `round ${round} (killed ${moment}): writer ${w} acknowledged ${a}, recovered ${JSON.stringify(got).slice(0, 300)}`).not.toBeNull();
            applyWrites(expected, round, w, match as number);
          }
          expect([...all].sort(), `round ${round}: the whole database (earlier rounds included)`).toEqual([...expected].sort());
          summary.push(`#${round} ${moment}: ${acked.reduce((x, y) => x + y, 0)} acks, lsn ${db.visibleLsn}, ckpt ${db.stats().recovery.checkpointLsn}`);
        } finally {
          await db.close();
        }
      }
    } catch (err) {
      console.error(`engine crash-process seed ${seed} failed; ${replayHint(seed as number, TEST_FILE, name)}; location ${location} kept`);
      throw err;
    } finally {
      await fs.dispose();
    }
    await rm(location, { recursive: true, force: true });
    await rm(ackDir, { recursive: true, force: true });
    console.log(`engine crash-process seed ${seed}: ${summary.join('; ')}`);
    expect(acksTotal).toBeGreaterThan(KILLS * 20);
    expect(checkpointsSeen).toBeGreaterThan(0);
  }, 60_000 + KILLS * 4_000);
});
