/**
 * The `flushpoint` command as a script or a cron job meets it: every error path in one table, each row
 * checked for the documented exit code, one line on stderr naming what was wrong (a usage error then
 * prints the usage), and no stack trace. Then --help and --version everywhere, the exit-code table in
 * --help and the README, and the real process: a closed stdout pipe ends quietly.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, exitCodeOf, exitCodesHelp } from '../cli/exit-codes.js';
import { main } from '../cli/main.js';
import { captureIo, writeSmallBackup } from './helpers/cli-fixtures.js';
import { ErrorCode, FlushpointError } from '../core/errors.js';
import { NodeFileSystem } from '../fs/index.js';
import { RESTORE_LOCK_NAME } from '../backup/restore.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mainJs = path.join(root, 'dist', 'cli', 'main.js');

let base: string;
beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'flushpoint-cli-errors-'));
  await writeSmallBackup(base);
  fs.cpSync(path.join(base, 'bk'), path.join(base, 'damaged'), { recursive: true });
  const files = fs.readdirSync(path.join(base, 'damaged')).filter((f) => f.endsWith('.fpb')).sort();
  fs.writeFileSync(path.join(base, 'damaged', files[1] as string), 'garbage');
  fs.writeFileSync(path.join(base, 'a-file'), 'not a directory');
  fs.mkdirSync(path.join(base, 'empty'));
  fs.mkdirSync(path.join(base, 'full'));
  fs.writeFileSync(path.join(base, 'full', 'x'), 'x');
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

interface Row {
  args: string[];
  exit: number;
  /** The first line of stderr. */
  line: RegExp;
}

const rows: Row[] = [
  // usage (2): what was wrong, then the usage
  { args: [], exit: 2, line: /^flushpoint: give a command$/ },
  { args: ['frobnicate'], exit: 2, line: /^flushpoint: unknown command 'frobnicate'$/ },
  { args: ['backup'], exit: 2, line: /^flushpoint backup: give an action: verify or restore$/ },
  { args: ['backup', 'frob'], exit: 2, line: /^flushpoint backup: unknown action 'frob' \(verify or restore\)$/ },
  { args: ['backup', 'verify'], exit: 2, line: /^flushpoint backup verify: give the backup directory to verify$/ },
  { args: ['backup', 'verify', 'bk', 'bk'], exit: 2, line: /^flushpoint backup verify: one backup directory, got 2: bk bk$/ },
  { args: ['backup', 'verify', '--frob', 'bk'], exit: 2, line: /^flushpoint backup verify: unknown flag '--frob'$/ },
  { args: ['backup', 'verify', '--json=yes', 'bk'], exit: 2, line: /^flushpoint backup verify: --json takes no value$/ },
  { args: ['backup', 'restore'], exit: 2, line: /^flushpoint backup restore: --from DIR is required$/ },
  { args: ['backup', 'restore', '--from', 'bk'], exit: 2, line: /^flushpoint backup restore: --to DIR is required$/ },
  { args: ['backup', 'restore', '--from'], exit: 2, line: /^flushpoint backup restore: --from needs a value$/ },
  { args: ['backup', 'restore', '--from', 'bk', '--to', 'r', 'extra'], exit: 2, line: /^flushpoint backup restore: unexpected argument 'extra'$/ },
  { args: ['backup', 'restore', '--from', 'bk', '--to', 'r', '--until-lsn', '-5'], exit: 2, line: /^flushpoint backup restore: --until-lsn must be a whole number >= 1, got '-5'$/ },
  { args: ['backup', 'restore', '--from', 'bk', '--to', 'r', '--until-lsn', '0'], exit: 2, line: /^flushpoint backup restore: --until-lsn must be a whole number >= 1, got '0'$/ },
  { args: ['backup', 'restore', '--from', 'bk', '--to', 'r', '--until-lsn', 'ten'], exit: 2, line: /^flushpoint backup restore: --until-lsn must be a whole number >= 1, got 'ten'$/ },
  { args: ['backup', 'restore', '--from', 'bk', '--to', 'r', '--until-lsn', '9999'], exit: 2, line: /^flushpoint backup restore: --until-lsn 9999 is beyond the backup's checkpoint 120: it holds LSNs 1..120$/ },
  { args: ['backup', 'restore', '--from', 'bk', '--to', 'a-file'], exit: 2, line: /^flushpoint backup restore: --to .*a-file exists and is not a directory$/ },
  { args: ['backup', 'restore', '--from', 'bk', '--to', 'full'], exit: 2, line: /^flushpoint backup restore: --to .*full is not empty: restore writes a new WAL directory$/ },
  { args: ['bench', '--fast'], exit: 2, line: /^flushpoint bench: unknown flag '--fast'$/ },
  { args: ['bench', 'extra'], exit: 2, line: /^flushpoint bench: unexpected argument 'extra'$/ },
  { args: ['bench', '--dir'], exit: 2, line: /^flushpoint bench: --dir needs a value$/ },
  { args: ['bench', '--endpoint', 'not a url', '--bucket', 'b1b'], exit: 2, line: /^flushpoint bench: --endpoint must be a URL, got not a url$/ },
  { args: ['bench', '--endpoint', 'ftp://127.0.0.1/', '--bucket', 'b1b'], exit: 2, line: /^flushpoint bench: --endpoint must be http\(s\), got ftp:\/\/127.0.0.1\/$/ },
  { args: ['bench', '--endpoint', 'http://127.0.0.1:1'], exit: 2, line: /^flushpoint bench: --endpoint needs --bucket NAME \(an existing bucket\)$/ },
  { args: ['bench', '--endpoint', 'http://127.0.0.1:1', '--bucket', 'B!'], exit: 2, line: /^flushpoint bench: --bucket must be a valid bucket name, got B!$/ },
  { args: ['bench', '--endpoint', 'http://127.0.0.1:1', '--bucket', 'b1b'], exit: 2, line: /^flushpoint bench: --endpoint needs the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY$/ },
  { args: ['bench', '--bucket', 'b1b'], exit: 2, line: /^flushpoint bench: --bucket and --prefix go with --endpoint URL$/ },
  // not found (3): one line with the errno code
  { args: ['backup', 'verify', '/nonexistent/x'], exit: 3, line: /^flushpoint backup verify: ENOENT: backup directory \/nonexistent\/x does not exist$/ },
  { args: ['backup', 'verify', 'a-file/x'], exit: 3, line: /^flushpoint backup verify: ENOTDIR: backup directory .*a-file\/x cannot be read: not a directory, stat '.*a-file\/x'$/ },
  { args: ['backup', 'verify', 'a-file'], exit: 3, line: /^flushpoint backup verify: ENOTDIR: backup directory .*a-file is not a directory$/ },
  { args: ['backup', 'restore', '--from', '/nonexistent', '--to', 'r'], exit: 3, line: /^flushpoint backup restore: ENOENT: backup directory \/nonexistent does not exist$/ },
  { args: ['inspect', '/nonexistent/x'], exit: 3, line: /^flushpoint inspect: ENOENT: \/nonexistent\/x does not exist$/ },
  { args: ['inspect', 'a-file'], exit: 3, line: /^flushpoint inspect: ENOTDIR: .*a-file is not a directory$/ },
  { args: ['inspect', 'empty'], exit: 3, line: /^flushpoint inspect: WRONG_DIRECTORY: .*empty is not a WAL, engine or backup directory/ },
  { args: ['backup', 'verify', 'empty'], exit: 3, line: /^flushpoint backup verify: BACKUP_NOT_FOUND: no backup at .*empty: the directory holds no CHECKPOINT and no backup file$/ },
  { args: ['backup', 'restore', '--from', 'empty', '--to', 'r'], exit: 3, line: /^flushpoint backup restore: BACKUP_NOT_FOUND: no backup at .*empty: / },
  // damaged (1)
  { args: ['backup', 'restore', '--from', 'damaged', '--to', 'r2'], exit: 1, line: /^flushpoint backup restore: BACKUP_CORRUPT: / },
];

describe('every error path: the documented exit code, one line on stderr, no stack trace', () => {
  for (const row of rows) {
    it(`flushpoint ${row.args.join(' ')} -> ${row.exit}`, async () => {
      const c = captureIo(base);
      expect(await main(row.args, c)).toBe(row.exit);
      const lines = c.err().split('\n');
      expect(lines[0]).toMatch(row.line);
      expect(c.err()).not.toMatch(/^\s+at /m);
      if (row.exit === ExitCode.usage) {
        expect(lines[1], 'a blank line, then the usage').toBe('');
        expect(lines[2]).toMatch(/^usage: flushpoint/);
      } else {
        expect(lines.length, `one line: ${JSON.stringify(c.err())}`).toBe(2);
        expect(lines[1]).toBe('');
      }
      expect(c.out()).toBe('');
    });
  }

  it('a restore into a target another restore holds: exit 4 (locked), one line naming the lock', async () => {
    const temp = path.join(base, 'busy.restore.tmp');
    fs.mkdirSync(temp);
    const lock = await new NodeFileSystem().lock(path.join(temp, RESTORE_LOCK_NAME));
    try {
      const c = captureIo(base);
      expect(await main(['backup', 'restore', '--from', 'bk', '--to', 'busy'], c)).toBe(ExitCode.locked);
      const lines = c.err().split('\n');
      expect(lines[0]).toMatch(/^flushpoint backup restore: WAL_LOCKED: another restore into .*busy is running/);
      expect(lines.length).toBe(2);
      expect(fs.existsSync(path.join(base, 'busy'))).toBe(false);
    } finally {
      await lock.release();
    }
  });

  it('--until-lsn 0 and -5 create nothing', async () => {
    expect(fs.existsSync(path.join(base, 'r'))).toBe(false);
  });

  it('a damaged backup: verify exits 1 and says what and where on stdout; stderr stays empty', async () => {
    const c = captureIo(base);
    expect(await main(['backup', 'verify', 'damaged'], c)).toBe(ExitCode.damaged);
    expect(c.out()).toMatch(/^FAILED: .*damaged\n/);
    expect(c.out()).toContain('BACKUP_CORRUPT');
    expect(c.err()).toBe('');
  });

  it('each error code maps to its documented exit code', () => {
    const coded = (code: string): Error => Object.assign(new Error('x'), { code });
    const table: Array<[unknown, number]> = [
      [new FlushpointError(ErrorCode.BACKUP_CORRUPT, 'x'), 1],
      [new FlushpointError(ErrorCode.BACKUP_GAP, 'x'), 1],
      [new FlushpointError(ErrorCode.WAL_CORRUPT, 'x'), 1],
      [new RangeError('x'), 2],
      [new TypeError('x'), 2],
      [coded('ENOENT'), 3],
      [coded('EACCES'), 3],
      [coded('EIO'), 3],
      [coded('ENOSPC'), 3],
      [new FlushpointError(ErrorCode.WAL_FAILED, 'x'), 3],
      [new FlushpointError(ErrorCode.BACKUP_FAILED, 'x'), 3],
      [coded('BACKUP_NOT_FOUND'), 3],
      [new FlushpointError(ErrorCode.WAL_LOCKED, 'x'), 4],
      [new FlushpointError(ErrorCode.BACKUP_LOCKED, 'x'), 4],
      [new FlushpointError(ErrorCode.FLUSH_TIMEOUT, 'x'), 5],
      [new FlushpointError(ErrorCode.FLUSH_IN_PROGRESS, 'x'), 6],
      [new FlushpointError(ErrorCode.WAL_CLOSED, 'x'), 7],
      [coded('ENGINE_DRAINING'), 7],
      [new FlushpointError(ErrorCode.LOCK_UNAVAILABLE, 'x'), 8],
      [new FlushpointError(ErrorCode.RECORD_TOO_LARGE, 'x'), 9],
      [new Error('a bug'), 70],
    ];
    const name = (err: unknown): string => String((err as { code?: unknown }).code ?? (err as Error).name);
    expect(table.map(([err]) => [name(err), exitCodeOf(err)])).toEqual(table.map(([err, exit]) => [name(err), exit]));
    const documented = [...exitCodesHelp.matchAll(/^ {2}(\d+) /gm)].map((m) => Number(m[1]));
    expect(documented).toEqual(Object.values(ExitCode));
  });
});

describe('--help and --version', () => {
  const helps: string[][] = [['--help'], ['-h'], ['help'], ['help', 'backup'], ['help', 'bench'], ['backup', '--help'], ['backup', 'help'], ['backup', 'verify', '--help'], ['backup', 'restore', '--help'], ['backup', 'restore', '-h'], ['bench', '--help']];
  for (const args of helps) {
    it(`flushpoint ${args.join(' ')} prints the usage on stdout and exits 0`, async () => {
      const c = captureIo(base);
      expect(await main(args, c)).toBe(0);
      expect(c.out()).toMatch(/^usage: flushpoint/);
      expect(c.err()).toBe('');
    });
  }

  it('--help lists the exit codes, and the README lists the same', async () => {
    const c = captureIo(base);
    await main(['--help'], c);
    expect(c.out()).toContain(exitCodesHelp);
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    for (const line of exitCodesHelp.split('\n').slice(1).filter(Boolean)) expect(readme).toContain(line);
  });

  it('--version prints the package version', async () => {
    const c = captureIo(base);
    expect(await main(['--version'], c)).toBe(0);
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    expect(c.out()).toBe(`${manifest.version}\n`);
  });
});

describe('the real process (dist/cli/main.js)', () => {
  it('an error is one line on stderr with its code and the exit code, no stack', () => {
    const r = spawnSync(process.execPath, [mainJs, 'backup', 'verify', '/nonexistent/x'], { encoding: 'utf8' });
    expect(r.status).toBe(ExitCode.io);
    expect(r.stderr).toBe('flushpoint backup verify: ENOENT: backup directory /nonexistent/x does not exist\n');
    expect(r.stdout).toBe('');
  });

  it('a stdout pipe closed by its reader (| head) ends quietly, with the exit code of the command', async () => {
    const child = spawn(process.execPath, [mainJs, 'backup', 'verify', path.join(base, 'damaged')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the first line is written: every write gets EPIPE
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(ExitCode.damaged);
  });
});
