/**
 * Where a run writes: a fresh `run-XXXXXX` directory inside the directory the user named. Only that
 * directory is removed afterwards, never what the user already had there; the named directory (and its
 * parents) are removed too only when this run created them and they are empty again.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface ScratchDir {
  /** The empty directory the run owns. */
  readonly runDir: string;
  /** Removes the run directory and whatever this run created above it. Safe to call twice. */
  dispose(): void;
}

export function createScratchDir(baseDir: string): ScratchDir {
  const absoluteBase = path.resolve(baseDir);
  const firstCreated = fs.mkdirSync(absoluteBase, { recursive: true });
  const runDir = fs.mkdtempSync(path.join(absoluteBase, 'run-'));
  let disposed = false;
  return {
    runDir,
    dispose() {
      if (disposed) return;
      disposed = true;
      fs.rmSync(runDir, { recursive: true, force: true });
      if (firstCreated === undefined) return;
      // mkdirSync returned the topmost directory it made; walk back up to it, stopping at the first
      // directory that is not empty (something else lives there now).
      for (let dir = absoluteBase; ; dir = path.dirname(dir)) {
        try {
          fs.rmdirSync(dir);
        } catch {
          return;
        }
        if (dir === firstCreated || dir === path.dirname(dir)) return;
      }
    },
  };
}
