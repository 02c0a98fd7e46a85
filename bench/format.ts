/** Number formatting for the report: units always shown, no figure without its unit. */

export function formatCount(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return Math.round(value).toLocaleString('en-US');
}

/** Operations (or records) per second. */
export function formatRate(perSec: number): string {
  if (!Number.isFinite(perSec)) return '-';
  if (perSec >= 10_000_000) return `${(perSec / 1e6).toFixed(1)}M/s`;
  return `${formatCount(perSec)}/s`;
}

/** A latency given in microseconds: us below 10 ms, then ms, then s. */
export function formatUs(us: number): string {
  if (!Number.isFinite(us)) return '-';
  if (us < 10) return `${us.toFixed(1)} us`;
  if (us < 10_000) return `${Math.round(us)} us`;
  if (us < 10_000_000) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1e6).toFixed(1)} s`;
}

export function formatMs(ms: number): string {
  return formatUs(ms * 1000);
}

export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-';
  return ratio >= 100 ? `${Math.round(ratio)}x` : `${ratio.toFixed(2)}x`;
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatMbPerSec(mbPerSec: number): string {
  if (!Number.isFinite(mbPerSec)) return '-';
  return `${mbPerSec >= 100 ? Math.round(mbPerSec) : mbPerSec.toFixed(1)} MB/s`;
}

/** A ratio that is undefined (missing baseline) stays NaN, so it prints as '-', never as a number. */
export function ratioOf(value: number | undefined, baseline: number | undefined): number {
  if (value === undefined || baseline === undefined || !(baseline > 0)) return Number.NaN;
  return value / baseline;
}
