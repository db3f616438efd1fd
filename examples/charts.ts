/** Minimal canvas charts for the demo: a line, bars with a second series, a heatmap. */

function clear(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const ctx = canvas.getContext('2d')!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = '11px system-ui, sans-serif';
  return ctx;
}

export function drawLine(canvas: HTMLCanvasElement, values: number[]): void {
  const ctx = clear(canvas);
  if (values.length < 2) return;
  const max = Math.max(...values);
  const min = Math.min(...values);
  const span = max - min || 1;
  const { width: w, height: h } = canvas;
  ctx.strokeStyle = '#0969da';
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const px = 30 + ((w - 40) * i) / (values.length - 1);
    const py = 10 + (h - 30) * (1 - (v - min) / span);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  ctx.stroke();
  ctx.fillStyle = '#57606a';
  ctx.fillText(max.toFixed(3), 2, 12);
  ctx.fillText(min.toFixed(3), 2, h - 22);
}

/** Bars of `values` (shares) with `second` (signed, e.g. bias) drawn as dots around a mid line. */
export function drawBars(canvas: HTMLCanvasElement, values: number[], second: number[]): void {
  const ctx = clear(canvas);
  const { width: w, height: h } = canvas;
  const n = values.length;
  const max = Math.max(...values, 2 / n);
  const barW = (w - 20) / n;
  const secondMax = Math.max(1e-6, ...second.map(Math.abs));
  values.forEach((v, i) => {
    const bh = ((h - 40) * v) / max;
    ctx.fillStyle = '#2da44e';
    ctx.fillRect(10 + i * barW + 1, h - 20 - bh, barW - 2, bh);
    ctx.fillStyle = '#cf222e';
    const cy = h / 2 - ((h / 2 - 20) * (second[i] ?? 0)) / secondMax;
    ctx.beginPath();
    ctx.arc(10 + (i + 0.5) * barW, cy, 3, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.strokeStyle = '#57606a';
  ctx.setLineDash([4, 4]);
  const even = h - 20 - ((h - 40) * (1 / n)) / max;
  ctx.beginPath();
  ctx.moveTo(10, even);
  ctx.lineTo(w - 10, even);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = '#57606a';
  ctx.fillText('bars: load (dashed: perfect balance)   dots: bias', 10, h - 5);
}

export function drawHeatmap(canvas: HTMLCanvasElement, rows: number[][]): void {
  const ctx = clear(canvas);
  const { width: w, height: h } = canvas;
  const nRows = rows.length;
  const nCols = rows[0]?.length ?? 0;
  const cw = (w - 70) / nCols;
  const ch = (h - 20) / nRows;
  const max = Math.max(1e-6, ...rows.flat());
  rows.forEach((row, r) => {
    ctx.fillStyle = '#57606a';
    ctx.fillText(`domain ${r}`, 2, r * ch + ch / 2 + 4);
    row.forEach((v, c) => {
      const t = v / max;
      ctx.fillStyle = `rgb(${Math.round(255 - 200 * t)}, ${Math.round(255 - 120 * t)}, 255)`;
      ctx.fillRect(66 + c * cw, r * ch, cw - 1, ch - 1);
    });
  });
  ctx.fillStyle = '#57606a';
  ctx.fillText('experts →', 66, h - 4);
}
