/** The machine a run happened on, recorded in the JSON beside every figure. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Environment {
  node: string;
  platform: string;
  arch: string;
  kernel: string;
  cpuModel: string;
  cpusCount: number;
  memoryBytes: number;
  flushpointVersion: string;
}

function flushpointVersion(): string {
  // dist/bench/environment.js and bench/environment.ts both sit two levels below the package root.
  for (const candidate of ['../../package.json', '../package.json']) {
    try {
      const manifestPath = path.join(path.dirname(fileURLToPath(import.meta.url)), candidate);
      const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'flushpoint' && manifest.version) return manifest.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

export function describeEnvironment(): Environment {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpusCount: cpus.length,
    memoryBytes: os.totalmem(),
    flushpointVersion: flushpointVersion(),
  };
}
