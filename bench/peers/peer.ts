/**
 * A peer: another embedded store a user might pick instead of flushpoint, measured at its documented
 * durable setting under the same closed-loop load. Each peer lives in its own file and loads its package
 * with a dynamic import, so a peer that is missing or fails to build is reported as skipped, with the
 * reason, and never stops the run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

export interface PeerStore {
  /** One write of the payload under a fresh key; resolves only once the store says it is durable. */
  write(): Promise<unknown>;
  close(): Promise<void>;
}

/** Opens a fresh store in `dir` (an empty directory) that writes `payload` on every write(). */
export type PeerOpener = (dir: string, payload: Buffer) => Promise<PeerStore>;

export interface Peer {
  /** Stable name in the report and the JSON. */
  id: string;
  packageName: string;
  /** The durable setting used, as the package's documentation names it. */
  durableSetting: string;
  /** Imports the package; rejects when it cannot be loaded. */
  load(): Promise<PeerOpener>;
}

const require = createRequire(import.meta.url);

/** The installed version of a package, found by walking up from its entry point; undefined if unknown. */
export function installedVersion(packageName: string): string | undefined {
  try {
    let dir = path.dirname(require.resolve(packageName));
    for (let depth = 0; depth < 5; depth++) {
      const manifestPath = path.join(dir, 'package.json');
      if (fs.existsSync(manifestPath)) {
        const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { name?: string; version?: string };
        if (manifest.name === packageName) return manifest.version;
      }
      dir = path.dirname(dir);
    }
  } catch {
    // not installed, or not resolvable from here: the caller reports the version as unknown
  }
  return undefined;
}

/** The first line of an error's message: enough to say why a peer was skipped. */
export function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const firstLine = message.split('\n')[0] ?? '';
  return typeof code === 'string' && !firstLine.includes(code) ? `${code}: ${firstLine}` : firstLine;
}
