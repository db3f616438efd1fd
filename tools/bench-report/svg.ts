/**
 * Small static SVG charts for the bench report: a line chart, horizontal grouped bars and 100%-stacked bars.
 * Plain strings, no DOM, so the same charts are written to files in Node and set as innerHTML on the bench page.
 */

export interface Series {
  label: string;
  colour: string;
  dashed?: boolean;
  points: [x: number, y: number][];
}

const font = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number) => (
  Math.abs(v) >= 1000 || v === 0 ? Number(v.toPrecision(3)).toLocaleString('en-US') : String(Number(v.toPrecision(3)))
);

/** About `n` round tick values covering [0, max]. */
function niceTicks(max: number, n = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const step = [1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  return Array.from({ length: Math.ceil(max / step) + 1 }, (_, i) => i * step);
}

function frame(width: number, height: number, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" ` +
    `width="${width}" height="${height}" ${font} font-size="12">
<rect width="${width}" height="${height}" fill="#fff"/>
<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${esc(title)}</text>
${body}
</svg>
`;
}

function legend(items: { label: string; colour: string; dashed?: boolean }[], x: number, y: number): string {
  return items.map((it, i) => {
    const yy = y + i * 16;
    const dash = it.dashed ? ' stroke-dasharray="5 3"' : '';
    return `<line x1="${x}" y1="${yy}" x2="${x + 18}" y2="${yy}" stroke="${it.colour}" ` +
      `stroke-width="3"${dash}/><text x="${x + 24}" y="${yy + 4}">${esc(it.label)}</text>`;
  }).join('\n');
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Log2 x axis with a tick at each point's x (expert counts, topK). */
  xLog2?: boolean;
  series: Series[];
  width?: number;
  height?: number;
}

export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 360;
  const m = { left: 64, right: 200, top: 36, bottom: 48 };
  const xs = [...new Set(o.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const yMax = Math.max(...o.series.flatMap((s) => s.points.map((p) => p[1])), 0);
  const yTicks = niceTicks(yMax);
  const top = yTicks[yTicks.length - 1]!;
  const tx = o.xLog2 ? (v: number) => Math.log2(v) : (v: number) => v;
  const [x0, x1] = [tx(xs[0] ?? 0), tx(xs[xs.length - 1] ?? 1)];
  const px = (v: number) => m.left + ((tx(v) - x0) / (x1 - x0 || 1)) * (width - m.left - m.right);
  const py = (v: number) => height - m.bottom - (v / top) * (height - m.top - m.bottom);
  const grid = yTicks.map((t) => `<line x1="${m.left}" x2="${width - m.right}" y1="${py(t)}" y2="${py(t)}" ` +
    `stroke="#e5e5e5"/><text x="${m.left - 6}" y="${py(t) + 4}" text-anchor="end">${fmt(t)}</text>`).join('\n');
  const xTicks = (o.xLog2 ? xs : niceTicks(xs[xs.length - 1] ?? 1)).map((t) => `<text x="${px(t)}" ` +
    `y="${height - m.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`).join('\n');
  const lines = o.series.map((s) => {
    const pts = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    const dots = s.points.map(([x, y]) => `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" ` +
      `fill="${s.colour}"><title>${esc(s.label)}: ${fmt(x)}, ${fmt(y)}</title></circle>`).join('');
    return `<polyline fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''} ` +
      `points="${pts.join(' ')}"/>${dots}`;
  }).join('\n');
  const axes = `<line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#333"/>
<text x="${(m.left + width - m.right) / 2}" y="${height - 10}" text-anchor="middle">${esc(o.xLabel)}</text>
<text transform="translate(16 ${(m.top + height - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`;
  return frame(width, height, o.title, [grid, xTicks, axes, lines, legend(o.series, width - m.right + 16, m.top + 8)].join('\n'));
}

export interface BarGroup {
  label: string;
  values: number[];
}

export interface BarChartOptions {
  title: string;
  xLabel: string;
  /** One name and colour per bar of a group. */
  keys: { label: string; colour: string }[];
  groups: BarGroup[];
  /** Log10 value axis, for values spanning orders of magnitude. */
  log?: boolean;
  width?: number;
}

/** Horizontal bars, one group per row, one bar per key; the value is printed at the end of each bar. */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 640;
  const bar = 14;
  const groupHeight = o.keys.length * bar + 12;
  const m = { left: 170, right: 90, top: 36 + o.keys.length * 16, bottom: 40 };
  const height = m.top + o.groups.length * groupHeight + m.bottom;
  const values = o.groups.flatMap((g) => g.values).filter((v) => v > 0);
  const max = Math.max(...values, 1);
  const min = Math.min(...values, max);
  const lo = o.log ? 10 ** Math.floor(Math.log10(min)) : 0;
  const hi = o.log ? 10 ** Math.ceil(Math.log10(max)) : niceTicks(max).at(-1)!;
  const span = width - m.left - m.right;
  const px = (v: number) => m.left + (o.log
    ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)
    : v / hi) * span;
  const ticks = o.log
    ? Array.from({ length: Math.round(Math.log10(hi / lo)) + 1 }, (_, i) => lo * 10 ** i)
    : niceTicks(max);
  const grid = ticks.map((t) => `<line x1="${px(t)}" x2="${px(t)}" y1="${m.top - 4}" y2="${height - m.bottom}" ` +
    `stroke="#e5e5e5"/><text x="${px(t)}" y="${height - m.bottom + 14}" text-anchor="middle">${fmt(t)}</text>`).join('\n');
  const rows = o.groups.map((g, gi) => {
    const y0 = m.top + gi * groupHeight;
    const bars = g.values.map((v, i) => {
      const y = y0 + i * bar;
      const key = o.keys[i]!;
      return `<rect x="${m.left}" y="${y}" width="${Math.max(0, px(v) - m.left).toFixed(1)}" height="${bar - 2}" ` +
        `fill="${key.colour}"><title>${esc(g.label)}, ${esc(key.label)}: ${fmt(v)}</title></rect><text ` +
          `x="${(px(v) + 4).toFixed(1)}" y="${y + bar - 4}" font-size="10">${fmt(v)}</text>`;
    }).join('');
    return `<text x="${m.left - 8}" y="${y0 + (o.keys.length * bar) / 2 + 3}" text-anchor="end">${esc(g.label)}</text>${bars}`;
  }).join('\n');
  const keys = o.keys.map((k, i) => `<rect x="${m.left}" y="${30 + i * 16}" width="12" height="10" ` +
    `fill="${k.colour}"/><text x="${m.left + 18}" y="${39 + i * 16}">${esc(k.label)}</text>`).join('\n');
  const axis = `<text x="${m.left + span / 2}" y="${height - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`;
  return frame(width, height, o.title, [grid, keys, rows, axis].join('\n'));
}

export interface StackedRow {
  label: string;
  /** The row's length as a fraction of the full width (1 = 100%). */
  fraction: number;
  /** Sizes of the parts, in the order of `keys`; drawn in proportion within the row. */
  parts: number[];
  note: string;
}

export interface StackedBarOptions {
  title: string;
  keys: { label: string; colour: string }[];
  rows: StackedRow[];
  width?: number;
}

/** Horizontal stacked bars on a 0-100% axis: each row's parts share its fraction of the width. */
export function stackedBars(o: StackedBarOptions): string {
  const width = o.width ?? 720;
  const bar = 16;
  const m = { left: 210, right: 120, top: 56, bottom: 34 };
  const height = m.top + o.rows.length * (bar + 6) + m.bottom;
  const span = width - m.left - m.right;
  const keys = o.keys.map((k, i) => {
    const x = 16 + (i % 4) * 170;
    const y = 30 + Math.floor(i / 4) * 14;
    return `<rect x="${x}" y="${y}" width="12" height="10" fill="${k.colour}"/><text x="${x + 16}" y="${y + 9}" ` +
      `font-size="11">${esc(k.label)}</text>`;
  }).join('\n');
  const grid = [0, 25, 50, 75, 100].map((p) => `<line x1="${m.left + (p / 100) * span}" ` +
    `x2="${m.left + (p / 100) * span}" y1="${m.top - 4}" y2="${height - m.bottom}" stroke="#e5e5e5"/><text ` +
      `x="${m.left + (p / 100) * span}" y="${height - m.bottom + 14}" text-anchor="middle">${p}%</text>`).join('\n');
  const rows = o.rows.map((r, ri) => {
    const y = m.top + ri * (bar + 6);
    const sum = r.parts.reduce((a, b) => a + b, 0) || 1;
    let x = m.left;
    const segs = r.parts.map((p, i) => {
      const w = (p / sum) * r.fraction * span;
      const seg = `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${bar}" ` +
        `fill="${o.keys[i]!.colour}"><title>${esc(r.label)}, ${esc(o.keys[i]!.label)}: ${fmt(p)}</title></rect>`;
      x += w;
      return seg;
    }).join('');
    return `<text x="${m.left - 8}" y="${y + bar - 4}" text-anchor="end">${esc(r.label)}</text>${segs}<text ` +
      `x="${(x + 6).toFixed(1)}" y="${y + bar - 4}" font-size="11">${esc(r.note)}</text>`;
  }).join('\n');
  return frame(width, height, o.title, [keys, grid, rows].join('\n'));
}
