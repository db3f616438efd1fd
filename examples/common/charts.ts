/** Charts for the pages: uPlot for curves, a canvas heatmap for expert-by-time grids, and the expert palette. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** A hue per expert, spread by the golden angle so neighbours differ. */
const expertHue = (e: number) => (e * 137.508) % 360;

/** An expert's colour as CSS. */
export function expertColour(e: number, alpha = 1): string {
  return `hsla(${expertHue(e)}, 70%, 50%, ${alpha})`;
}

/** The same colour as 0-255 RGB, for painting pixels. */
export function expertRgb(e: number): [number, number, number] {
  const h = expertHue(e);
  const s = 0.7;
  const l = 0.5;
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
  return [255 * f(0), 255 * f(8), 255 * f(4)];
}

export interface LineSeries {
  label: string;
  colour: string;
  /** Draw points only (sparse series such as validation loss). */
  points?: boolean;
}

/** A live line chart over steps; push() appends a row, redraws are batched to one per animation frame. */
export class LineChart {
  private readonly plot: uPlot;
  private readonly data: (number | null)[][];
  private pending = false;

  constructor(el: HTMLElement, series: LineSeries[], options: { yLabel: string; height?: number; log?: boolean }) {
    this.data = [[], ...series.map(() => [])];
    const width = Math.max(280, el.clientWidth - 8);
    this.plot = new uPlot({
      width,
      height: options.height ?? 220,
      scales: { x: { time: false }, y: options.log ? { distr: 3 } : {} },
      axes: [{ label: 'step' }, { label: options.yLabel }],
      legend: { live: false },
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.colour,
          width: 1.5,
          spanGaps: true,
          points: s.points ? { show: true, size: 6, fill: s.colour } : { show: false },
          ...(s.points ? { paths: () => null } : {}),
        })),
      ],
    }, this.data as uPlot.AlignedData, el);
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(280, el.clientWidth - 8), height: options.height ?? 220 })).observe(el);
  }

  /** Appends a row; a row at the same x as the last one fills in that row's missing values instead. */
  push(x: number, ys: (number | null)[]): void {
    const xs = this.data[0]!;
    if (xs.length > 0 && xs[xs.length - 1] === x) {
      ys.forEach((y, i) => {
        if (y !== null) this.data[i + 1]![xs.length - 1] = y;
      });
    } else {
      xs.push(x);
      ys.forEach((y, i) => this.data[i + 1]!.push(y));
    }
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.plot.setData(this.data as uPlot.AlignedData);
      });
    }
  }

  clear(): void {
    for (const column of this.data) column.length = 0;
    this.plot.setData(this.data as uPlot.AlignedData);
  }
}

/**
 * Rows x columns of values drawn as coloured cells (rows: experts, columns: time). Not a chart with axes: the
 * page labels it. `colour` maps a value to a CSS colour.
 */
export function drawHeatmap(canvas: HTMLCanvasElement, columns: number[][], colour: (v: number) => string): void {
  const ctx = canvas.getContext('2d')!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const rows = columns[0]?.length ?? 0;
  if (rows === 0) return;
  const w = canvas.width / Math.max(columns.length, 1);
  const h = canvas.height / rows;
  columns.forEach((column, c) => {
    column.forEach((v, r) => {
      ctx.fillStyle = colour(v);
      ctx.fillRect(c * w, r * h, Math.ceil(w), Math.ceil(h));
    });
  });
}

/** Load relative to the mean (1 = balanced) as white (0) through blue (1) to red (>= 3). */
export function loadColour(relative: number): string {
  if (relative <= 1) {
    const t = Math.max(0, relative);
    return `rgb(${Math.round(255 - 200 * t)}, ${Math.round(255 - 130 * t)}, 255)`;
  }
  const t = Math.min(1, (relative - 1) / 2);
  return `rgb(${Math.round(55 + 200 * t)}, ${Math.round(125 - 85 * t)}, ${Math.round(255 - 215 * t)})`;
}

/** A diverging scale for signed values in [-limit, limit]: blue, white, orange. */
export function signedColour(v: number, limit: number): string {
  const t = Math.max(-1, Math.min(1, v / (limit || 1)));
  return t < 0
    ? `rgb(${Math.round(255 + 200 * t)}, ${Math.round(255 + 120 * t)}, 255)`
    : `rgb(255, ${Math.round(255 - 120 * t)}, ${Math.round(255 - 220 * t)})`;
}
