/**
 * The sink's process SIGKILLed mid-upload, for real: a child (test/fixtures/s3-sink-child.mjs, on the
 * built package) runs a WAL and a BackupSink on the S3 target under 4 writers. Each round the parent arms
 * the child for its next data PUT or its next checkpoint PUT; the child stops right before sending it;
 * the parent pauses radosgw (SIGSTOP), lets the child send, waits until the request's bytes sit in
 * radosgw's socket (ss: Recv-Q > 0; the upload is provably in flight), SIGKILLs the child, resumes radosgw
 * and waits until radosgw has dealt with the dead connection (the killed sink's last request landed or
 * was dropped). Then it reopens a sink on the same WAL and prefix, and checks:
 *   - the open succeeds (no BACKUP_LOCKED: an S3 prefix has no lock to go stale; the conditional
 *     checkpoint's ETag is read at open, so the killed sink's last checkpoint is simply continued);
 *   - nothing lies beyond the checkpoint (what the killed upload left was adopted or removed), and a data
 *     object the killed upload landed is adopted;
 *   - restore from the bucket equals the WAL byte for byte up to the checkpoint;
 *   - forceFlush brings the checkpoint to the WAL's durable LSN, every LSN in exactly one verified
 *     object; after the last round, restore equals the whole WAL.
 * The rounds alternate data and checkpoint PUTs, on one WAL and one prefix.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../backup/format.js';
import { S3Target } from '../../backup/s3-target.js';
import { BackupSink } from '../../backup/sink.js';
import { verifyBackup } from '../../backup/verify.js';
import { Wal } from '../../wal/index.js';
import { cluster, newBucket, rawClient, targetOptions, until } from './cluster.js';
import { expectRestoreEqualsWal } from './sink-fixtures.js';

const c = cluster();
const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.resolve(here, '../fixtures/s3-sink-child.mjs');
const ROUNDS = Number(process.env.FLUSHPOINT_S3_KILLS ?? 4);
const rgwPort = Number(new URL(c.endpoint).port);
let bucket = '';
let tmp = '';

beforeAll(async () => {
  bucket = await newBucket(c, 'kill');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-s3-kill-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** radosgw's side of its TCP connections (not the listener): state and bytes received but not yet read. */
function rgwConnections(): Array<{ state: string; recvQBytes: number }> {
  const r = spawnSync('ss', ['-tanH', `( sport = :${rgwPort} )`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ss failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 5 && f[0] !== 'LISTEN')
    .map((f) => ({ state: f[0] as string, recvQBytes: Number(f[1]) }));
}

type ChildMessage =
  | { type: 'ready'; checkpointLsn: number }
  | { type: 'flush'; toLsn: number }
  | { type: 'sending'; kind: 'data' | 'checkpoint'; key: string; bytes: number; checkpointLsn: number; durableLsn: number };

class Child {
  readonly proc: ChildProcess;
  readonly messages: ChildMessage[] = [];
  stderr = '';
  exited = false;

  constructor(walDir: string, s3: object) {
    this.proc = fork(child, [walDir], { cwd: path.resolve(here, '../..'), env: { ...process.env, FLUSHPOINT_S3_TARGET: JSON.stringify(s3) }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.proc.on('message', (m: ChildMessage) => this.messages.push(m));
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.proc.on('exit', () => (this.exited = true));
  }

  async next<T extends ChildMessage['type']>(type: T, what: string): Promise<Extract<ChildMessage, { type: T }>> {
    await until(async () => {
      if (this.exited) throw new Error(`the child exited while waiting for ${what}: ${this.stderr}`);
      return this.messages.some((m) => m.type === type);
    }, what);
    return this.messages.find((m) => m.type === type) as Extract<ChildMessage, { type: T }>;
  }

  flushes(): number {
    return this.messages.filter((m) => m.type === 'flush').length;
  }

  async kill(): Promise<void> {
    this.proc.kill('SIGKILL');
    await until(async () => this.exited, 'the child to exit after SIGKILL');
  }
}

describe('a sink SIGKILLed mid-upload to S3', () => {
  it(`reopens on the same prefix, adopts or removes what the killed upload left, and restores the WAL byte for byte (${ROUNDS} rounds, data and checkpoint PUTs)`, async () => {
    const walDir = path.join(tmp, 'wal');
    const s3 = targetOptions(c, bucket, 'killed');
    const reader = new S3Target(s3);
    const raw = rawClient(c);
    const log: string[] = [];
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const kind = round % 2 === 1 ? 'data' : 'checkpoint';
        const ch = new Child(walDir, s3);
        let sending: Extract<ChildMessage, { type: 'sending' }>;
        try {
          await ch.next('ready', 'the child to open its sink');
          await until(async () => ch.flushes() >= 3, 'three flushes in the child');
          ch.proc.send({ type: 'arm', kind });
          sending = await ch.next('sending', `the child's next ${kind} PUT`);
          c.pauseRgw();
          try {
            ch.proc.send({ type: 'go' });
            // The request's bytes are in radosgw's socket: the upload is in flight, and stays so.
            await until(async () => rgwConnections().some((s) => s.recvQBytes > 0), 'the PUT to reach the paused radosgw');
            await ch.kill();
          } finally {
            c.resumeRgw();
          }
        } finally {
          if (!ch.exited) await ch.kill();
        }
        const tKilled = Date.now();
        // radosgw has read and answered (or dropped) everything the dead sink sent.
        await until(async () => rgwConnections().every((s) => s.recvQBytes === 0 && s.state !== 'CLOSE-WAIT'), 'radosgw to finish with the dead connection');
        const settledMs = Date.now() - tKilled;
        const landed = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: sending.key })).then(
          () => true,
          () => false,
        );

        const stored = decodeCheckpoint(await reader.getFile('CHECKPOINT').then((b) => b ?? new Uint8Array(0)));
        const storedWhat = stored.ok ? `${stored.value.checkpointLsn}${stored.value.inline ? ` carrying ${stored.value.inline.name}` : ''}` : stored.reason;
        const wal = await Wal.open({ dir: walDir, segmentSizeBytes: 1024 * 1024 });
        try {
          const sink = await BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 });
          const opened = sink.stats();
          log.push(
            `#${round} ${kind} PUT ${sending.key.split('/').pop()} (${sending.bytes} B) killed in flight, ${landed ? 'landed' : 'did not land'}; bucket's checkpoint ${storedWhat}; ` +
              `checkpoint ${sending.checkpointLsn} -> ${opened.checkpointLsn} at reopen (adopted ${opened.adoptedOnOpen}, removed ${opened.removedOnOpen}), WAL durable ${wal.durableLsn}; radosgw done with the dead connection after ${settledMs} ms`,
          );
          expect(opened.checkpointLsn).toBeGreaterThanOrEqual(sending.checkpointLsn);
          if (kind === 'data' && landed) expect(opened.adoptedOnOpen, 'the landed data object continues the WAL: adopted').toBeGreaterThanOrEqual(1);
          // Nothing beyond the checkpoint: every object the killed flush left was adopted or removed.
          const atOpen = await verifyBackup(reader.location, { fs: reader.readFs });
          expect(atOpen.problems).toEqual([]);
          expect(atOpen).toMatchObject({ ok: true, checkpointLsn: opened.checkpointLsn });
          await expectRestoreEqualsWal(reader, wal, path.join(tmp, `restore-${round}`), opened.checkpointLsn);

          const r = await sink.forceFlush();
          expect(r.checkpointLsn).toBe(wal.durableLsn);
          expect(sink.checkpointLsn).toBe(wal.durableLsn);
          await sink.close();
          const after = await verifyBackup(reader.location, { fs: reader.readFs });
          expect(after.problems).toEqual([]);
          expect(after).toMatchObject({ ok: true, firstLsn: 1, lastLsn: wal.durableLsn, checkpointLsn: wal.durableLsn, records: wal.durableLsn });
          if (round === ROUNDS) await expectRestoreEqualsWal(reader, wal, path.join(tmp, 'restore-last'), wal.durableLsn);
        } finally {
          await wal.close();
        }
      }
    } finally {
      console.log(`s3 sigkill: ${log.join('; ')}`);
      raw.destroy();
      await reader.close();
    }
  }, 600_000);
});

