/**
 * The admin endpoint's Unix socket: created with mode 0600 with no moment where it is wider, a stale
 * socket left by a killed process replaced, a live one never.
 *
 *   1. lstat the path: missing -> go on; not a socket -> ADMIN_SOCKET_IN_USE (never replace a file);
 *      a socket -> connect to it: ECONNREFUSED means nobody listens (a process died holding it): stale,
 *      replaced at step 4; a connect that succeeds (or hangs) means a live server: ADMIN_SOCKET_IN_USE.
 *   2. listen on `<dir>/.fp-admin-XXXXXX/s`, inside a directory mkdtemp made with mode 0700: nobody else
 *      can reach the socket there whatever the umask made of its own mode.
 *   3. chmod it 0600 and check (lstat) that it is a socket with exactly that mode.
 *   4. a stale socket found at step 1 is first moved into that directory (rename: it takes whatever is
 *      at the path now) and unlinked there if it is the very inode step 1 saw; if another engine has
 *      put its own there meanwhile, that one is linked back and ADMIN_SOCKET_IN_USE.
 *   5. link it onto the path: link fails with EEXIST where anything is there, so of two engines that
 *      both found the path free (or stale), one gets ADMIN_SOCKET_IN_USE (a rename would have replaced
 *      the other's live socket, leaving it with no endpoint). Remove the directory.
 * A connected socket is bound to its inode, so the server keeps serving at the new name. Closing
 * unlinks the path only while it is still our inode (another server may have replaced it since).
 */
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Server } from 'node:net';
import { ErrorCode, FlushpointError, assert } from '../../core/errors.js';
import { isFileSystemError } from '../../fs/file-system.js';
import { ADMIN_PROBE_TIMEOUT_MS, UNIX_SOCKET_PATH_BYTES_MAX } from './limits.js';

export const SOCKET_MODE = 0o600;

/** The identity of the socket file a server created: closing removes the path only if it still is this. */
export interface SocketIdentity {
  path: string;
  dev: number;
  ino: number;
}

export function checkSocketPath(socketPath: unknown): string {
  if (typeof socketPath !== 'string' || socketPath.length === 0) throw new TypeError('admin.socketPath must be a non-empty string');
  if (socketPath.includes('\0')) throw new TypeError('admin.socketPath must not contain NUL');
  const resolved = path.resolve(socketPath);
  if (Buffer.byteLength(resolved) > UNIX_SOCKET_PATH_BYTES_MAX) {
    throw new RangeError(`admin.socketPath ${resolved} is ${Buffer.byteLength(resolved)} bytes; a Unix socket path is at most ${UNIX_SOCKET_PATH_BYTES_MAX}`);
  }
  return resolved;
}

/** What is at `socketPath`: nothing, a socket nobody listens on, a live socket, or something else. */
export async function probeSocket(socketPath: string, timeoutMs = ADMIN_PROBE_TIMEOUT_MS): Promise<'missing' | 'stale' | 'live' | 'not-a-socket'> {
  const st = await fsp.lstat(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st === null) return 'missing';
  if (!st.isSocket()) return 'not-a-socket';
  return await new Promise((resolve) => {
    const conn = net.connect({ path: socketPath });
    const timer = setTimeout(() => done('live'), timeoutMs); // no answer yet: someone holds it (a full backlog)
    function done(result: 'stale' | 'live' | 'missing'): void {
      clearTimeout(timer);
      conn.destroy();
      resolve(result);
    }
    conn.once('connect', () => done('live'));
    conn.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'stale' : err.code === 'ENOENT' ? 'missing' : 'live'));
  });
}

function inUse(socketPath: string, what: string): FlushpointError {
  return new FlushpointError(ErrorCode.ADMIN_SOCKET_IN_USE, `admin socket ${socketPath} ${what}`, { file: socketPath });
}

function listenOn(server: Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ path: socketPath, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function checkMode(file: string): Promise<{ dev: number; ino: number }> {
  const st = await fsp.lstat(file);
  assert(st.isSocket(), `${file} is a socket after listen`);
  if ((st.mode & 0o777) !== SOCKET_MODE) {
    throw new Error(`admin socket ${file} has mode ${(st.mode & 0o777).toString(8)}, expected ${SOCKET_MODE.toString(8)}`);
  }
  return { dev: st.dev, ino: st.ino };
}

/**
 * Listens `server` on `socketPath` (see the module comment). Rejects with ADMIN_SOCKET_IN_USE when taken,
 * and with ADMIN_SOCKET_FAILED naming the file when the file system refuses a step (a full disk where
 * the private directory goes, EACCES): not a bare errno from inside an engine's open.
 */
export async function listenOnUnixSocket(server: Server, socketPath: string): Promise<SocketIdentity> {
  try {
    return await listenOnFreePath(server, socketPath);
  } catch (err) {
    if (!isFileSystemError(err)) throw err;
    throw new FlushpointError(ErrorCode.ADMIN_SOCKET_FAILED, `admin socket ${socketPath} could not be created: ${err.message}`, { cause: err, file: err.path ?? socketPath });
  }
}

async function listenOnFreePath(server: Server, socketPath: string): Promise<SocketIdentity> {
  const state = await probeSocket(socketPath);
  if (state === 'live') throw inUse(socketPath, 'has a live server behind it (another engine?); refusing to replace it');
  if (state === 'not-a-socket') throw inUse(socketPath, 'exists and is not a socket; refusing to replace it');
  const stale = state === 'stale' ? await fsp.lstat(socketPath).catch(() => null) : null;
  const privateDir = await fsp.mkdtemp(path.join(path.dirname(socketPath), '.fp-admin-'));
  const bound = path.join(privateDir, 's');
  try {
    const mode = (await fsp.stat(privateDir)).mode & 0o777;
    assert(mode === 0o700, `mkdtemp made ${privateDir} with mode ${mode.toString(8)}`);
    if (Buffer.byteLength(bound) > UNIX_SOCKET_PATH_BYTES_MAX) {
      throw new RangeError(`admin socket's temporary path ${bound} is longer than ${UNIX_SOCKET_PATH_BYTES_MAX} bytes: use a shorter directory`);
    }
    await listenOn(server, bound);
    await fsp.chmod(bound, SOCKET_MODE);
    const id = await checkMode(bound);
    if (stale !== null) await removeStale(socketPath, path.join(privateDir, 'stale'), stale);
    try {
      await fsp.link(bound, socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw inUse(socketPath, 'was taken by another engine while this one started; refusing to replace it');
      throw err;
    }
    // The path is our inode, checked above (a link names the same inode): no lstat of the path again,
    // which another engine taking a stale path aside for a moment (step 4) could make fail.
    return { path: socketPath, ...id };
  } catch (err) {
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  } finally {
    await fsp.rm(privateDir, { recursive: true, force: true });
  }
}

/**
 * Takes the stale socket `seen` away from `socketPath` (moved to `aside`, then unlinked), unless what is
 * there now is another inode: another engine's, put there since the probe, which goes back.
 */
async function removeStale(socketPath: string, aside: string, seen: { dev: number; ino: number }): Promise<void> {
  try {
    await fsp.rename(socketPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // removed meanwhile: the link decides
    throw err;
  }
  const moved = await fsp.lstat(aside);
  if (moved.dev !== seen.dev || moved.ino !== seen.ino) {
    await fsp.link(aside, socketPath).catch(() => {}); // EEXIST: a third one is there; it keeps it
    throw inUse(socketPath, 'was taken by another engine while this one started; refusing to replace it');
  }
  await fsp.unlink(aside);
}

/** Removes the socket file if it is still the one `id` names (never a successor's). */
export async function removeSocket(id: SocketIdentity): Promise<boolean> {
  const st = await fsp.lstat(id.path).catch(() => null);
  if (st === null || st.dev !== id.dev || st.ino !== id.ino) return false;
  await fsp.unlink(id.path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  return true;
}
