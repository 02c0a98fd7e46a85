/**
 * A real, small ext4 file system for tests that need a full disk: an image file under the OS temp dir,
 * made with mkfs.ext4 (no blocks reserved for root, so root meets ENOSPC where anyone would) and
 * loop-mounted there. Needs root, mkfs.ext4 and a free loop device; `smallDiskUnavailable()` says why
 * not, for a skip. The test that mounts it unmounts it (and the loop device goes with it: `mount -o
 * loop` sets autoclear); a mount still busy (a failed test left a file open on it) is detached lazily,
 * and one whose process died (a killed test worker: its pid is in the path) is removed by the next run,
 * so no failure leaks a loop device into the next.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface SmallDisk {
  /** The mount point. */
  readonly dir: string;
  /** Writes a file of `bytes` zeros on the disk (synced), to leave less room; returns its path. */
  fill(name: string, bytes: number): string;
  /** Writes zeros into a new file until the disk refuses a single byte more (ENOSPC), synced. */
  fillUp(name: string): string;
  /** The bytes free for an unprivileged writer, as statfs says. */
  freeBytes(): number;
  /** Unmounts and removes the image and mount point. */
  remove(): void;
}

let unavailable: string | null | undefined;

const PREFIX = 'fp-small-disk-';

/** Unmounts `dir`, lazily (detached now, freed when the last open file on it closes) if it is busy. */
function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
}

/** Removes the small disks of processes that are gone (a test worker killed before its cleanup). */
function removeOrphans(): void {
  const pattern = new RegExp(`^${os.tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${PREFIX}(\\d+)-[^/]+/mnt$`);
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const mountPoint = line.split(' ')[1] ?? '';
    const m = pattern.exec(mountPoint);
    if (m === null) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // alive: its own
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    unmount(mountPoint);
    fs.rmSync(path.dirname(mountPoint), { recursive: true, force: true });
  }
}

/** Why a small disk cannot be mounted here (null: it can), found once by mounting one. */
export function smallDiskUnavailable(): string | null {
  if (unavailable !== undefined) return unavailable;
  if (process.platform !== 'linux') return (unavailable = `not Linux (${process.platform})`);
  if (process.getuid?.() !== 0) return (unavailable = 'not root: mounting a loop device needs root');
  try {
    removeOrphans();
    mountSmallDisk(8).remove();
    unavailable = null;
  } catch (err) {
    unavailable = `cannot mount a loop-device ext4 here: ${String((err as Error).message).split('\n')[0]}`;
  }
  return unavailable;
}

export function mountSmallDisk(sizeMiB: number): SmallDisk {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${process.pid}-`));
  const image = path.join(base, 'disk.img');
  const dir = path.join(base, 'mnt');
  fs.mkdirSync(dir);
  let mounted = false;
  const remove = (): void => {
    if (mounted) {
      unmount(dir);
      mounted = false;
    }
    fs.rmSync(base, { recursive: true, force: true });
  };
  try {
    fs.writeFileSync(image, '');
    fs.truncateSync(image, sizeMiB * 1024 * 1024);
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', image], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop', image, dir], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    remove();
    throw err;
  }
  return {
    dir,
    fill(name: string, bytes: number): string {
      const file = path.join(dir, name);
      const fd = fs.openSync(file, 'w');
      try {
        const chunk = Buffer.alloc(1024 * 1024);
        for (let done = 0; done < bytes; done += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      return file;
    },
    fillUp(name: string): string {
      const file = path.join(dir, name);
      const fd = fs.openSync(file, 'w');
      try {
        for (const size of [1024 * 1024, 4096, 1]) {
          const chunk = Buffer.alloc(size);
          for (;;) {
            try {
              fs.writeSync(fd, chunk);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw err;
            }
          }
        }
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      return file;
    },
    freeBytes(): number {
      const s = fs.statfsSync(dir);
      return s.bavail * s.bsize;
    },
    remove,
  };
}
