/** Both charts of a report stacked in one SVG document, as `--svg FILE` writes it. */
import type { BenchReport } from '../report.js';
import { latencyCdfPlot } from './latency-cdf-chart.js';
import { renderPlot, svgDocument } from './plot.js';
import { throughputPlot } from './throughput-chart.js';

const chartWidthPx = 1000;
const chartHeightPx = 540;

export function renderReportSvg(report: BenchReport): string {
  const throughput = renderPlot(throughputPlot(report, chartWidthPx, chartHeightPx), 0);
  const latency = renderPlot(latencyCdfPlot(report, chartWidthPx, chartHeightPx), chartHeightPx);
  return svgDocument(chartWidthPx, 2 * chartHeightPx, `${throughput}\n${latency}`);
}
