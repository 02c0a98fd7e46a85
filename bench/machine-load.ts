/**
 * How busy the machine was with other work while the benchmark ran: CPU time spent by every process
 * (/proc/stat) minus this process's own (process.cpuUsage), as a fraction of all cores over the run.
 * A benchmark of fsync latency shares the CPU and the disk with everything else, so the report says
 * when its figures were taken on a busy machine instead of letting a reader trust them blindly.
 */
import fs from 'node:fs';
import os from 'node:os';

/** Above this share of the machine used by others, the report warns that its figures are noisy. */
export const othersCpuFractionWarn = 0.1;

/** Linux reports /proc/stat in USER_HZ ticks, 100 per second on every mainstream architecture. */
const ticksPerSec = 100;

export interface MachineLoad {
  loadAverage1mStart: number;
  loadAverage1mEnd: number;
  /** CPU used by other processes during the run, as a fraction of all cores (0..1); NaN where unknown. */
  othersCpuFraction: number;
  warnings: string[];
}

interface Sample {
  wallUs: number;
  busyTicks: number | undefined;
  ownCpuUs: number;
  loadAverage1m: number;
}

function busyTicks(): number | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    if (fields.length < 4 || fields.some((n) => !Number.isFinite(n))) return undefined;
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
    return fields.slice(0, 8).reduce((sum, n) => sum + n, 0) - idle;
  } catch {
    return undefined;
  }
}

function sample(): Sample {
  const { user, system } = process.cpuUsage();
  return { wallUs: performance.now() * 1000, busyTicks: busyTicks(), ownCpuUs: user + system, loadAverage1m: os.loadavg()[0] ?? Number.NaN };
}

export class MachineLoadMonitor {
  readonly #start = sample();

  finish(): MachineLoad {
    const end = sample();
    const wallUs = end.wallUs - this.#start.wallUs;
    const cores = os.cpus().length;
    let othersCpuFraction = Number.NaN;
    if (this.#start.busyTicks !== undefined && end.busyTicks !== undefined && wallUs > 0) {
      const allCpuUs = ((end.busyTicks - this.#start.busyTicks) * 1e6) / ticksPerSec;
      const ownCpuUs = end.ownCpuUs - this.#start.ownCpuUs;
      othersCpuFraction = Math.min(1, Math.max(0, (allCpuUs - ownCpuUs) / (wallUs * cores)));
    }
    const warnings: string[] = [];
    if (othersCpuFraction > othersCpuFractionWarn) {
      warnings.push(
        `other processes used ${(othersCpuFraction * 100).toFixed(0)}% of the ${cores} cores during the run ` +
          `(load average ${this.#start.loadAverage1m.toFixed(1)} -> ${end.loadAverage1m.toFixed(1)}): figures are noisy, compare ratios rather than absolutes and rerun on a quiet machine`,
      );
    }
    return { loadAverage1mStart: this.#start.loadAverage1m, loadAverage1mEnd: end.loadAverage1m, othersCpuFraction, warnings };
  }
}
