/**
 * The report as JSON: every figure, its baseline and ratio, the environment and the device. A figure
 * that was not measured (NaN) is written as null, so a reader never mistakes it for a number.
 */
import type { BenchReport } from './report.js';

export function renderReportJson(report: BenchReport): string {
  return JSON.stringify(report, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2) + '\n';
}
