/**
 * `flushpoint admin status|force-flush|drain --socket PATH [--timeout MS] [--mode barrier|join|reject]`:
 * talks to a running engine's admin endpoint (HTTP on its Unix socket), prints the answer as JSON on
 * stdout, and exits 0 only when what it asked for is durable (force-flush barrier: the backup checkpoint
 * reached the WAL's last LSN at the call; drain: the WAL is durable and the backup checkpoint is at or
 * past it). Any other outcome is one line on stderr, `flushpoint admin <action>: CODE: message`, and an
 * exit code of the table below (the numbers of cli/exit-codes.ts).
 * When the endpoint answered, its JSON (an error's too, with the LSNs reached) is still printed on stdout.
 */
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { ADMIN_HEADER, ADMIN_OPERATION_TIMEOUT_MS_MAX } from '../engine/index.js';
import { ExitCode } from './exit-codes.js';
import { parseCommandLine, UsageError, type CliIo, type Subcommand } from './subcommand.js';

/** The admin command's exit codes: those of cli/exit-codes.ts (10, unreachable, is the admin socket's own). */
export const AdminExitCode = {
  ok: ExitCode.ok,
  usage: ExitCode.usage,
  /** The flush or drain failed (BACKUP_FAILED, WAL_FAILED: the table's I/O failure): nothing is claimed durable. */
  failed: ExitCode.io,
  timeout: ExitCode.timeout,
  flushInProgress: ExitCode.flushInProgress,
  refused: ExitCode.refused,
  other: ExitCode.failed,
  unreachable: ExitCode.unreachable,
} as const;

const exitCodesText = `exit codes:
  0   what was asked for is durable (status: the endpoint answered)
  2   usage: an unknown action or flag, a bad value
  3   the flush or drain failed (BACKUP_FAILED, WAL_FAILED): nothing is claimed durable
  5   timed out before it was durable (FLUSH_TIMEOUT), or no answer in time (ADMIN_NO_ANSWER)
  6   a flush was in progress and --mode reject does not wait (FLUSH_IN_PROGRESS)
  7   refused: the engine is closed or draining (WAL_CLOSED, ENGINE_DRAINING)
  9   any other error the endpoint answered
  10  the socket is unreachable: missing, not a socket, nobody listening, or not flushpoint's
`;

export const adminUsage = `usage: flushpoint admin status      --socket PATH [--timeout MS]
       flushpoint admin force-flush --socket PATH [--timeout MS] [--mode barrier|join|reject]
       flushpoint admin drain       --socket PATH [--timeout MS]

  talk to a running engine's admin endpoint (the Unix socket of its admin: { socketPath } option);
  prints the answer as JSON on stdout; exits 0 only when what was asked for is durable

  status        the WAL's and the backup's LSNs, the lag, the state and the last error
  force-flush   make the backup catch up: barrier (default) waits until the backup checkpoint reaches
                the WAL's last LSN at the call; join waits for the running flush; reject fails at
                once (exit 6) while one runs
  drain         the rolling-restart step: the engine refuses new writes, makes the WAL durable and
                the backup catch up, and answers { walDurableLsn, backupCheckpointLsn, waitedMs };
                writes stay refused until the engine is resumed or restarted

  --socket PATH   the admin socket (required)
  --timeout MS    how long the engine may take, in ms (default: the engine's, 60000); the command
                  waits 5000 ms longer for the answer (status: MS itself, default 65000)
  --mode M        force-flush only: barrier | join | reject (default barrier)

${exitCodesText}`;

/** The longest a timer can wait (Node's setTimeout turns anything longer into 1 ms, with a warning). */
const TIMER_MS_MAX = 2 ** 31 - 1;

/** Extra time the command waits for an answer beyond the --timeout it sent, in ms. */
const ANSWER_GRACE_MS = 5_000;
/** How long `status` (and a request without --timeout) waits for its answer, in ms. */
const ANSWER_TIMEOUT_MS_DEFAULT = 65_000;

/** A failure of the command with its exit code and the code printed on stderr. */
class AdminCommandError extends Error {
  constructor(
    readonly exitCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function usageError(message: string): AdminCommandError {
  return new AdminCommandError(AdminExitCode.usage, 'USAGE', message);
}

function unreachable(message: string): AdminCommandError {
  return new AdminCommandError(AdminExitCode.unreachable, 'ADMIN_UNREACHABLE', message);
}

interface Answer {
  status: number;
  body: any;
}

/** Checks what is at socketPath before connecting, so a missing path and a plain file get their own message. */
async function checkSocketFile(socketPath: string): Promise<void> {
  const st = await fsp.stat(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw unreachable(`no admin socket at ${socketPath} (is the engine running with admin: { socketPath }?)`);
    throw unreachable(`cannot reach ${socketPath}: ${err.code ?? err.message}`);
  });
  if (!st.isSocket()) throw unreachable(`${socketPath} is not a socket`);
}

/** One request to the admin endpoint: its status and JSON body, or an AdminCommandError. */
function call(socketPath: string, method: 'GET' | 'POST', urlPath: string, body: object | undefined, answerTimeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ socketPath, method, path: urlPath, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      if (res.headers[ADMIN_HEADER] === undefined) {
        res.destroy();
        reject(unreachable(`${socketPath} answered HTTP ${res.statusCode} but is not a flushpoint admin endpoint`));
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch {
          reject(unreachable(`${socketPath} answered something that is not JSON`));
        }
      });
      res.on('error', (err) => reject(unreachable(`the connection to ${socketPath} broke: ${err.message}`)));
    });
    const timer = setTimeout(() => {
      req.destroy();
      // Not FLUSH_TIMEOUT: nothing may have been flushing (status), and the engine's own timeout did not answer either.
      reject(new AdminCommandError(AdminExitCode.timeout, 'ADMIN_NO_ANSWER', `no answer from ${socketPath} within ${answerTimeoutMs} ms`));
    }, answerTimeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED') reject(unreachable(`nobody is listening on ${socketPath} (a stale socket: the engine is not running)`));
      else if (err.code === 'ENOENT') reject(unreachable(`no admin socket at ${socketPath}`));
      else if (err.code === 'EACCES') reject(unreachable(`permission denied on ${socketPath} (the socket is mode 0600: run as its owner)`));
      else if (typeof err.code === 'string' && err.code.startsWith('HPE_')) reject(unreachable(`${socketPath} does not speak HTTP: not a flushpoint admin endpoint`));
      else reject(unreachable(`the connection to ${socketPath} failed: ${err.code ?? err.message}`));
    });
    req.end(text);
  });
}

/** The exit code for an error the endpoint answered with. */
function exitCodeOfAnswer(status: number, code: string): number {
  if (code === 'FLUSH_TIMEOUT' || status === 504) return AdminExitCode.timeout;
  if (code === 'FLUSH_IN_PROGRESS' || status === 409) return AdminExitCode.flushInProgress;
  if (status === 503) return AdminExitCode.refused;
  if (code === 'BACKUP_FAILED' || code === 'WAL_FAILED') return AdminExitCode.failed;
  if (status === 400) return AdminExitCode.usage;
  return AdminExitCode.other;
}

function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > ADMIN_OPERATION_TIMEOUT_MS_MAX) throw usageError(`--timeout must be a whole number of ms in [0, ${ADMIN_OPERATION_TIMEOUT_MS_MAX}], got '${text}'`);
  return n;
}

async function run(args: readonly string[], io: CliIo): Promise<number> {
  const [action, ...rest] = args;
  if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
    if (action === undefined) throw usageError('give an action: status, force-flush or drain');
    io.stdout.write(adminUsage);
    return AdminExitCode.ok;
  }
  if (action !== 'status' && action !== 'force-flush' && action !== 'drain') throw usageError(`unknown action '${action}' (status, force-flush or drain)`);
  let parsed;
  try {
    // The shared parser (a negative number is a flag's value, node's errors said in one line), as every command.
    parsed = parseCommandLine(rest, { socket: { type: 'string' }, timeout: { type: 'string' }, mode: { type: 'string' } }, adminUsage);
  } catch (err) {
    throw usageError(err instanceof UsageError ? err.message : ((err as Error).message.split('\n')[0] as string));
  }
  if (parsed.positionals.length > 0) throw usageError(`unexpected argument '${parsed.positionals[0]}'`);
  const v = parsed.values;
  if (v.help) {
    io.stdout.write(adminUsage);
    return AdminExitCode.ok;
  }
  if (v.socket === undefined || v.socket === '') throw usageError('--socket PATH is required');
  const timeoutMs = parseTimeout(v.timeout);
  if (v.mode !== undefined && action !== 'force-flush') throw usageError('--mode is for force-flush only');
  const mode = v.mode ?? 'barrier';
  if (mode !== 'barrier' && mode !== 'join' && mode !== 'reject') throw usageError(`--mode must be barrier, join or reject, got '${mode}'`);
  const socketPath = path.resolve(io.cwd, v.socket);
  await checkSocketFile(socketPath);
  // status has no wait of its own on the engine's side: its --timeout bounds the answer itself (0 would
  // give up before any answer could come).
  if (action === 'status' && timeoutMs === 0) throw usageError('--timeout for status must be at least 1 ms, got 0');
  // Capped: --timeout near its maximum plus the grace overflowed Node's timer, which then fired after 1 ms.
  const answerTimeoutMs = Math.min(TIMER_MS_MAX, timeoutMs === undefined ? ANSWER_TIMEOUT_MS_DEFAULT : action === 'status' ? timeoutMs : timeoutMs + ANSWER_GRACE_MS);
  const timeoutField = timeoutMs === undefined ? {} : { timeoutMs };
  const answer =
    action === 'status'
      ? await call(socketPath, 'GET', '/status', undefined, answerTimeoutMs)
      : action === 'force-flush'
        ? await call(socketPath, 'POST', '/force-flush', { mode, ...timeoutField }, answerTimeoutMs)
        : await call(socketPath, 'POST', '/drain', timeoutField, answerTimeoutMs);
  io.stdout.write(JSON.stringify(answer.body, null, 2) + '\n');
  if (answer.status !== 200) {
    const e = (answer.body?.error ?? {}) as { code?: string; message?: string };
    throw new AdminCommandError(exitCodeOfAnswer(answer.status, e.code ?? ''), e.code ?? `HTTP_${answer.status}`, e.message ?? `HTTP ${answer.status}`);
  }
  const b = answer.body as Record<string, unknown>;
  // Exit 0 only for what is durable: check the answer itself, not just its status.
  if (action === 'force-flush' && mode === 'barrier' && !(typeof b.checkpointLsn === 'number' && typeof b.targetLsn === 'number' && b.checkpointLsn >= b.targetLsn)) {
    throw new AdminCommandError(AdminExitCode.failed, 'NOT_DURABLE', `the answer does not show the backup checkpoint at its target: ${JSON.stringify(b)}`);
  }
  if (action === 'drain' && !(typeof b.walDurableLsn === 'number' && (b.backupCheckpointLsn === null || (typeof b.backupCheckpointLsn === 'number' && b.backupCheckpointLsn >= b.walDurableLsn)))) {
    throw new AdminCommandError(AdminExitCode.failed, 'NOT_DURABLE', `the answer does not show the backup checkpoint at the WAL's durable LSN: ${JSON.stringify(b)}`);
  }
  return AdminExitCode.ok;
}

export const adminCommand: Subcommand = {
  async run(args, io) {
    const action = args[0] !== undefined && ['status', 'force-flush', 'drain'].includes(args[0]) ? ` ${args[0]}` : '';
    try {
      return await run(args, io);
    } catch (err) {
      if (!(err instanceof AdminCommandError)) throw err;
      if (err.exitCode === AdminExitCode.usage) io.stderr.write(`flushpoint admin${action}: ${err.message}\n\n${adminUsage}`);
      else io.stderr.write(`flushpoint admin${action}: ${err.code}: ${err.message}\n`);
      return err.exitCode;
    }
  },
};
