/**
 * A line plot written as SVG text: axes with ticks and grid, one polyline per series, a legend. No
 * browser, no library: the charts are small, and hand-written SVG opens in any browser. Scales are
 * linear, logarithmic, or "nines" (a fraction f drawn at -log10(1 - f), so 0.9, 0.99 and 0.999 are
 * evenly spaced: the tail of a latency CDF gets the room it deserves). Points a scale cannot show
 * (zero or negative on a log scale, NaN) are dropped; on a nines scale, fractions above max sit at max.
 */

export type Point = [x: number, y: number];

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  dotted?: boolean;
  markers?: boolean;
  points: Point[];
}

export interface Axis {
  label: string;
  scale: 'linear' | 'log' | 'nines';
  min: number;
  max: number;
  ticks: number[];
  tickLabel: (value: number) => string;
}

export interface PlotSpec {
  title: string;
  subtitle?: string;
  widthPx: number;
  heightPx: number;
  x: Axis;
  y: Axis;
  series: Series[];
}

const margin = { top: 56, right: 300, bottom: 56, left: 80 };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function fixed(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function projector(axis: Axis, fromPx: number, toPx: number): (value: number) => number {
  if (axis.scale === 'log') {
    if (!(axis.min > 0 && axis.max > axis.min)) throw new RangeError(`log axis "${axis.label}" needs 0 < min < max`);
    const lo = Math.log10(axis.min);
    const span = Math.log10(axis.max) - lo;
    return (value) => fromPx + ((Math.log10(value) - lo) / span) * (toPx - fromPx);
  }
  if (axis.scale === 'nines') {
    if (!(axis.min >= 0 && axis.max > axis.min && axis.max < 1)) throw new RangeError(`nines axis "${axis.label}" needs 0 <= min < max < 1`);
    const nines = (fraction: number): number => -Math.log10(1 - Math.min(fraction, axis.max));
    const lo = nines(axis.min);
    const span = nines(axis.max) - lo;
    return (value) => fromPx + ((nines(value) - lo) / span) * (toPx - fromPx);
  }
  if (!(axis.max > axis.min)) throw new RangeError(`axis "${axis.label}" needs min < max`);
  return (value) => fromPx + ((value - axis.min) / (axis.max - axis.min)) * (toPx - fromPx);
}

function visible(axis: Axis, value: number): boolean {
  if (!Number.isFinite(value) || value < axis.min) return false;
  if (axis.scale === 'log' && !(value > 0)) return false;
  return axis.scale === 'nines' ? value <= 1 : value <= axis.max;
}

/** Powers of ten from below `min` to above `max`: the usual ticks of a log axis. */
export function decadeTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let exponent = Math.floor(Math.log10(min)); exponent <= Math.ceil(Math.log10(max)); exponent++) ticks.push(10 ** exponent);
  return ticks;
}

/** A log axis range that covers `values` out to whole decades. */
export function decadeRange(values: readonly number[]): { min: number; max: number } {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  if (positive.length === 0) return { min: 1, max: 10 };
  const min = 10 ** Math.floor(Math.log10(Math.min(...positive)));
  const max = 10 ** Math.ceil(Math.log10(Math.max(...positive)));
  return { min, max: max > min ? max : min * 10 };
}

/** Renders a plot as a group; `offsetYPx` places it on a larger canvas. */
export function renderPlot(spec: PlotSpec, offsetYPx = 0): string {
  const plotLeft = margin.left;
  const plotRight = spec.widthPx - margin.right;
  const plotTop = margin.top;
  const plotBottom = spec.heightPx - margin.bottom;
  const px = projector(spec.x, plotLeft, plotRight);
  const py = projector(spec.y, plotBottom, plotTop);
  const out: string[] = [];
  out.push(`<g transform="translate(0,${offsetYPx})" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${spec.widthPx}" height="${spec.heightPx}" fill="#ffffff"/>`);
  out.push(`<text x="${plotLeft}" y="24" font-size="16" font-weight="bold">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle) out.push(`<text x="${plotLeft}" y="42" fill="#555555">${escapeXml(spec.subtitle)}</text>`);

  for (const tick of spec.x.ticks.filter((t) => visible(spec.x, t))) {
    const x = fixed(px(tick));
    out.push(`<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${plotBottom}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x}" y="${plotBottom + 16}" text-anchor="middle">${escapeXml(spec.x.tickLabel(tick))}</text>`);
  }
  for (const tick of spec.y.ticks.filter((t) => visible(spec.y, t))) {
    const y = fixed(py(tick));
    out.push(`<line x1="${plotLeft}" y1="${y}" x2="${plotRight}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${plotLeft - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(spec.y.tickLabel(tick))}</text>`);
  }
  out.push(`<rect x="${plotLeft}" y="${plotTop}" width="${plotRight - plotLeft}" height="${plotBottom - plotTop}" fill="none" stroke="#333333"/>`);
  out.push(`<text x="${(plotLeft + plotRight) / 2}" y="${spec.heightPx - 14}" text-anchor="middle">${escapeXml(spec.x.label)}</text>`);
  const yLabelY = (plotTop + plotBottom) / 2;
  out.push(`<text x="18" y="${yLabelY}" text-anchor="middle" transform="rotate(-90 18 ${yLabelY})">${escapeXml(spec.y.label)}</text>`);

  spec.series.forEach((series, index) => {
    const points = series.points.filter(([x, y]) => visible(spec.x, x) && visible(spec.y, y));
    const dash = series.dashed ? ' stroke-dasharray="8 4"' : series.dotted ? ' stroke-dasharray="2 3"' : '';
    if (points.length > 0) {
      const path = points.map(([x, y]) => `${fixed(px(x))},${fixed(py(y))}`).join(' ');
      out.push(`<polyline points="${path}" fill="none" stroke="${series.color}" stroke-width="2"${dash}><title>${escapeXml(series.name)}</title></polyline>`);
      if (series.markers) {
        for (const [x, y] of points) out.push(`<circle cx="${fixed(px(x))}" cy="${fixed(py(y))}" r="3" fill="${series.color}"/>`);
      }
    }
    const legendY = plotTop + 8 + index * 18;
    out.push(`<line x1="${plotRight + 16}" y1="${legendY}" x2="${plotRight + 44}" y2="${legendY}" stroke="${series.color}" stroke-width="2"${dash}/>`);
    const note = points.length === 0 ? ' (no data)' : '';
    out.push(`<text x="${plotRight + 50}" y="${legendY}" dominant-baseline="middle">${escapeXml(series.name + note)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

export function svgDocument(widthPx: number, heightPx: number, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${widthPx}" height="${heightPx}" viewBox="0 0 ${widthPx} ${heightPx}">\n` +
    `${body}\n</svg>\n`
  );
}
