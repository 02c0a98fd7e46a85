/**
 * What the data directory sits on: the mount (/proc/mounts, longest mount point that contains the
 * directory), and the block device behind it with its write-cache setting (/sys/dev/block/MAJ:MIN,
 * whose queue/ lives on the whole disk when the mount is a partition). Linux only; elsewhere, and for
 * file systems without a block device (tmpfs, overlay), the fields say "unknown" rather than guess.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DeviceInfo {
  dir: string;
  mountPoint: string;
  fileSystem: string;
  mountSource: string;
  mountOptions: string;
  /** Kernel name of the disk (vda, nvme0n1, dm-0), or 'unknown'. */
  blockDevice: string;
  /** /sys/block/<dev>/queue/write_cache: 'write back' (the kernel sends cache flushes) or 'write through'. */
  writeCache: string;
  rotational: boolean | undefined;
  model: string | undefined;
}

interface MountEntry {
  source: string;
  mountPoint: string;
  fileSystem: string;
  options: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4) continue;
    entries.push({ source: unescapeMountField(fields[0]!), mountPoint: unescapeMountField(fields[1]!), fileSystem: fields[2]!, options: fields[3]! });
  }
  return entries;
}

function isWithin(dir: string, mountPoint: string): boolean {
  if (mountPoint === '/') return true;
  return dir === mountPoint || dir.startsWith(mountPoint + '/');
}

/** The mount that holds `dir`: the longest containing mount point; the last one listed wins a tie. */
export function findMount(entries: readonly MountEntry[], dir: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    if (!isWithin(dir, entry.mountPoint)) continue;
    if (best === undefined || entry.mountPoint.length >= best.mountPoint.length) best = entry;
  }
  return best;
}

/** Linux's st_dev encoding (glibc gnu_dev_major / gnu_dev_minor). */
function splitDeviceNumber(dev: number): { major: number; minor: number } {
  const high = Math.floor(dev / 2 ** 32);
  const low = dev >>> 0;
  const major = ((low >>> 8) & 0xfff) | ((high & 0xfffff000) >>> 0);
  const minor = (low & 0xff) | ((low >>> 12) & 0xfff00);
  return { major, minor };
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The sysfs directory of the disk that holds queue/ (the device itself, or a partition's parent). */
function findQueueOwner(sysDevicePath: string): string | undefined {
  for (const candidate of [sysDevicePath, path.dirname(sysDevicePath)]) {
    if (fs.existsSync(path.join(candidate, 'queue', 'write_cache'))) return candidate;
  }
  return undefined;
}

export function probeDevice(dir: string): DeviceInfo {
  const realDir = fs.realpathSync(dir);
  const mountsText = readTrimmed('/proc/mounts') ?? '';
  const mount = findMount(parseMounts(mountsText), realDir);
  const info: DeviceInfo = {
    dir: realDir,
    mountPoint: mount?.mountPoint ?? 'unknown',
    fileSystem: mount?.fileSystem ?? 'unknown',
    mountSource: mount?.source ?? 'unknown',
    mountOptions: mount?.options ?? 'unknown',
    blockDevice: 'unknown',
    writeCache: 'unknown',
    rotational: undefined,
    model: undefined,
  };
  const { major, minor } = splitDeviceNumber(fs.statSync(realDir).dev);
  let sysDevicePath: string;
  try {
    sysDevicePath = fs.realpathSync(`/sys/dev/block/${major}:${minor}`);
  } catch {
    return info; // no block device: tmpfs, overlay, a network file system, or not Linux
  }
  const owner = findQueueOwner(sysDevicePath);
  if (owner === undefined) return info;
  info.blockDevice = path.basename(owner);
  info.writeCache = readTrimmed(path.join(owner, 'queue', 'write_cache')) ?? 'unknown';
  const rotational = readTrimmed(path.join(owner, 'queue', 'rotational'));
  info.rotational = rotational === undefined ? undefined : rotational === '1';
  info.model = readTrimmed(path.join(owner, 'device', 'model')) || undefined;
  return info;
}
