/**
 * Crashes of a real process on the real disk: a child (test/fixtures/wal-child.mjs, on the built dist)
 * appends with 32 concurrent writers, each awaiting waitDurable and then printing `ack <lsn>`; the
 * payload of every record is payloadForLsn(lsn). The parent SIGKILLs it at random moments (sometimes
 * before it has even opened the log, mostly while it writes), again and again on the same directory,
 * so that each child recovers what the last one left (recovery after recovery). After every kill the
 * parent opens the WAL itself and checks: every LSN the child reported is there, byte for byte, and
 * the log is contiguous from LSN 1 with every record exactly payloadForLsn(lsn).
 *
 * The kill moments come from a seeded random source (FLUSHPOINT_SEED=<n> picks the same moments again;
 * the timing of the child itself is the machine's).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { NodeFileSystem } from '../fs/index.js';
import { seededRandom } from '../core/random.js';
import { killChildren, WalChild } from './helpers/child.js';
import { payloadForLsn } from './helpers/payload.js';
import { replayHint, seedList } from './helpers/seeds.js';
import { verifyLog } from './helpers/wal-log.js';

const TEST_FILE = 'test/wal-crash-process.test.ts';
/** SIGKILLs per run; FLUSHPOINT_KILLS raises it for the crash campaign (npm run test:campaign). */
const KILLS = Number(process.env.FLUSHPOINT_KILLS ?? 24);
const WRITERS = 32;
/** Small segments: the child rolls into preallocated segments many times a second. */
const SEGMENT_BYTES = 64 * 1024;

afterEach(killChildren);

interface Round {
  round: number;
  moment: string;
  acks: number;
  lastLsn: number;
  tornTail: boolean;
}

describe('WAL in a process that is SIGKILLed', () => {
  const name = `a child with ${WRITERS} concurrent awaited writers, SIGKILLed ${KILLS} times on one directory: every LSN it reported is recovered byte for byte, the log is contiguous`;
  it(name, async () => {
    const [seed] = seedList(1, 20_251_101);
    const rng = seededRandom(seed as number);
    const fs = new NodeFileSystem();
    const dir = await mkdtemp(join(tmpdir(), 'flushpoint-crash-'));
    const rounds: Round[] = [];
    try {
      let lastLsn = 0;
      for (let round = 1; round <= KILLS; round++) {
        // The children take turns with the three commitWait modes: 'auto' (the default: polled while
        // busy, the worker kept awake between back-to-back commits), 'poll', 'sleep'.
        const child = new WalChild(['append', dir, String(SEGMENT_BYTES), String(WRITERS), (['auto', 'poll', 'sleep'] as const)[round % 3] as string]);
        // A kill lands anywhere from start-up (loading, locking, recovering) on (one in five), early in
        // the first commits (one in five), or while the child is acknowledging writes (the rest).
        const pick = rng.int(5);
        let moment: string;
        if (pick === 0) {
          const ms = rng.int(300);
          moment = `${ms} ms after spawn`;
          await sleep(ms);
        } else {
          const ready = await child.waitForLine(/^ready /);
          // The child recovered exactly what the parent saw last (the parent appended nothing).
          expect(ready, `round ${round}`).toBe(`ready ${lastLsn}`);
          const ms = pick === 1 ? rng.int(100) : rng.int(250);
          moment = `${ms} ms after ${pick === 1 ? 'ready' : 'the first ack'}`;
          if (pick > 1) await child.waitForLine(/^ack /);
          await sleep(ms);
        }
        const exit = await child.kill();
        expect(exit.signal, `round ${round}: the child must die by SIGKILL, not on its own; stderr: ${child.stderr}`).toBe('SIGKILL');

        const acked = child.lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
        for (const lsn of acked) {
          expect(Number.isSafeInteger(lsn) && lsn > lastLsn, `round ${round}: reported LSN ${lsn} after recovered ${lastLsn}`).toBe(true);
        }
        expect(new Set(acked).size, `round ${round}: an LSN was reported twice`).toBe(acked.length);
        const ackedMax = acked.reduce((a, b) => Math.max(a, b), 0);

        const wal = await Wal.open({ dir, segmentSizeBytes: SEGMENT_BYTES, fs });
        try {
          const recovered = await verifyLog(wal, payloadForLsn, { mustSurviveLsn: Math.max(lastLsn, ackedMax), lastAppendedLsn: Number.MAX_SAFE_INTEGER });
          rounds.push({ round, moment, acks: acked.length, lastLsn: recovered, tornTail: wal.recovery.tornTail !== null });
          lastLsn = recovered;
        } catch (err) {
          throw new Error(`round ${round} (killed ${moment}, ${acked.length} acks up to LSN ${ackedMax}): ${(err as Error).message}`, { cause: err });
        } finally {
          await wal.close();
        }
      }
    } catch (err) {
      console.error(`crash-process seed ${seed} failed; ${replayHint(seed as number, TEST_FILE, name)}; dir ${dir} kept`);
      throw err;
    } finally {
      await fs.dispose();
    }
    await rm(dir, { recursive: true, force: true });
    console.log(`crash-process seed ${seed}: ${rounds.map((r) => `#${r.round} ${r.moment}: ${r.acks} acks, lastLsn ${r.lastLsn}${r.tornTail ? ', torn tail cut' : ''}`).join('; ')}`);
    expect(rounds).toHaveLength(KILLS);
    // Most kills landed while the child was acknowledging writes: the test checked real acknowledgements.
    const killedWhileAcking = rounds.filter((r) => r.moment.endsWith('the first ack'));
    expect(killedWhileAcking.length).toBeGreaterThanOrEqual(Math.floor(KILLS * 0.4)); // 3 in 5 are aimed there
    for (const r of killedWhileAcking) expect(r.acks, `round ${r.round}`).toBeGreaterThan(0);
    expect(rounds.reduce((n, r) => n + r.acks, 0)).toBeGreaterThan(KILLS * 20);
  }, 30_000 + KILLS * 2_500);
});
