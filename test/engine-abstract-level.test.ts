/**
 * abstract-level's own shared suite (tape), run in full against the Engine on the real disk by
 * test/abstract-level/run.mjs in a child process (it imports the build: npm test builds first).
 * The child ends with "N passed, N failed"; any failure fails this test and its lines are shown.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

it('passes abstract-level/test in full (permanence, snapshots, seek, has, encodings ...)', () => {
  const child = spawnSync(process.execPath, [path.join(root, 'test/abstract-level/run.mjs')], { cwd: root, encoding: 'utf8', timeout: 240_000 });
  const lines = child.stdout.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const m = /^(\d+) passed, (\d+) failed$/.exec(last);
  expect(m, `last line was: ${last}\n${child.stdout.slice(-4000)}\n${child.stderr.slice(-2000)}`).not.toBeNull();
  const [passed, failed] = [Number(m?.[1]), Number(m?.[2])];
  expect(failed, child.stdout.slice(-8000)).toBe(0);
  // The full suite (run twice: on the database and on a sublevel) asserts several thousand things.
  expect(passed).toBeGreaterThan(4000);
  expect(child.status).toBe(0);
}, 300_000);
