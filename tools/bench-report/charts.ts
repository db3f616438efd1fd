/** The report's charts, as SVG strings keyed by file name, from one run's results (one per backend). */
import type { BenchResult, MemoryPoint, ScalingPoint } from '../bench-suite/schema.js';
import { breakdownStages } from '../bench-suite/schema.js';
import { human } from './format.js';
import { barChart, lineChart, stackedBars, type Series } from './svg.js';

/** A result's short name: the backend, prefixed `browser-` when it ran in a browser page. */
export const resultLabel = (r: BenchResult): string => (r.environment.runtime === 'browser' ? `browser-${r.backend}` : r.backend);

const colours = { moe: '#0969da', denseActivated: '#1a7f37', denseTotal: '#cf222e', naive: '#8c959f' };
const partKeys = [
  { key: 'embeddings', label: 'embeddings', colour: '#8c959f' },
  { key: 'attention', label: 'attention', colour: '#8250df' },
  { key: 'denseFfn', label: 'dense FFN', colour: '#bf8700' },
  { key: 'sharedExperts', label: 'shared experts', colour: '#1a7f37' },
  { key: 'routedExperts', label: 'routed experts', colour: '#0969da' },
  { key: 'head', label: 'output head', colour: '#cf222e' },
  { key: 'other', label: 'router, norms', colour: '#d0d7de' },
] as const;
const stageColours = ['#8250df', '#bf8700', '#0969da', '#1a7f37', '#cf222e', '#57606a'];


export function paramsChart(r: BenchResult): string {
  return stackedBars({
    title: 'Where the parameters sit: total (100%) and activated per token',
    keys: partKeys.map(({ label, colour }) => ({ label, colour })),
    rows: r.params.flatMap((m) => [
      { label: `${m.name}, total`, fraction: 1, parts: partKeys.map((k) => m.totalParts[k.key]), note: human(m.total) },
      {
        label: 'activated', fraction: m.activatedRatio, parts: partKeys.map((k) => m.activatedParts[k.key]),
        note: `${human(m.activated)} (${(100 * m.activatedRatio).toFixed(1)}%)`,
      },
    ]),
  });
}

export function kvCacheChart(r: BenchResult): string {
  const rows = r.params.filter((m) => m.kind !== 'denseTwin' && m.kvCache.mlaBytesPerToken !== null);
  return barChart({
    title: 'KV cache per token, all layers: MLA vs plain multi-head attention',
    xLabel: 'bytes per token (log scale; ours float32, DeepSeek BF16)',
    keys: [
      { label: 'MLA (latent + rotary key)', colour: colours.moe },
      { label: 'MHA (every head\'s key and value)', colour: colours.denseTotal },
    ],
    groups: rows.map((m) => ({ label: m.name, values: [m.kvCache.mlaBytesPerToken ?? 0, m.kvCache.mhaBytesPerToken] })),
    log: true,
  });
}

function scalingChart(points: ScalingPoint[], x: (p: ScalingPoint) => number, title: string, xLabel: string): string {
  const series: Series[] = [
    { label: 'DeepSeekMoE', colour: colours.moe, points: points.map((p) => [x(p), p.ms.moe]) },
    { label: 'dense, = activated', colour: colours.denseActivated, dashed: true, points: points.map((p) => [x(p), p.ms.denseActivated]) },
    {
      label: 'dense, = total', colour: colours.denseTotal, dashed: true,
      points: points.flatMap((p): [number, number][] => (p.ms.denseTotal === null ? [] : [[x(p), p.ms.denseTotal]])),
    },
  ];
  return lineChart({ title, xLabel, yLabel: 'ms per forward + backward', xLog2: true, series });
}

/** Growth relative to the series' first point: weights track total parameters, activations activated ones. */
function memoryChart(points: MemoryPoint[], x: (p: MemoryPoint) => number, title: string, xLabel: string): string {
  const first = points[0];
  const growth = (f: (p: MemoryPoint) => number): [number, number][] => points.map((p) => [x(p), f(p) / f(first!)]);
  const series: Series[] = first ? [
    { label: 'weight bytes', colour: colours.denseTotal, points: growth((p) => p.weightBytes) },
    { label: 'total parameters', colour: colours.denseTotal, dashed: true, points: growth((p) => p.totalParams) },
    { label: 'forward activation bytes', colour: colours.moe, points: growth((p) => p.forwardPeakBytes) },
    { label: 'activated parameters', colour: colours.moe, dashed: true, points: growth((p) => p.activatedParams) },
  ] : [];
  return lineChart({ title, xLabel, yLabel: '× the first point of the series', xLog2: true, series });
}

/** Every chart of a run: the shared ones (parameters, cross-backend) and four per backend. */
export function benchCharts(results: BenchResult[]): Record<string, string> {
  const first = results[0];
  if (!first) return {};
  const charts: Record<string, string> = { 'params.svg': paramsChart(first), 'kv-cache.svg': kvCacheChart(first) };
  charts['layer.svg'] = barChart({
    title: `One layer, forward + backward (T=${first.layer.shape.tokens}, E=${first.layer.shape.nRoutedExperts}, ` +
      `top-${first.layer.shape.topK})`,
    xLabel: 'ms (log scale)',
    keys: [
      { label: 'DeepSeekMoE (dropless, grouped)', colour: colours.moe },
      { label: 'the stock-op reference path', colour: colours.denseTotal },
      { label: 'dense FFN, = activated', colour: colours.denseActivated },
      { label: 'masked dense path (every expert)', colour: colours.naive },
    ],
    groups: results.map((r) => ({
      label: resultLabel(r), values: [r.layer.ms.moe, r.layer.ms.moeReference ?? 0, r.layer.ms.denseActivated, r.layer.ms.naive ?? 0],
    })),
    log: true,
  });
  charts['training.svg'] = barChart({
    title: `Training the ${first.training.model} model (batch ${first.training.batchSize} x ${first.training.seqLen})`,
    xLabel: 'tokens per second',
    keys: [
      { label: 'DeepSeekMoE', colour: colours.moe },
      { label: 'dense twin, = activated', colour: colours.denseActivated },
      { label: 'dense twin, = total', colour: colours.denseTotal },
    ],
    groups: results.map((r) => ({
      label: resultLabel(r),
      values: [
        r.training.moe.tokensPerSecond, r.training.denseActivated.tokensPerSecond, r.training.denseTotal.tokensPerSecond,
      ],
    })),
  });
  charts['breakdown.svg'] = stackedBars({
    title: 'Where one layer\'s time goes (each stage timed alone, share of the whole layer)',
    keys: [...breakdownStages.map((s, i) => ({ label: s, colour: stageColours[i]! })), { label: 'unaccounted', colour: '#eaeef2' }],
    rows: results.map((r) => {
      const parts = [...breakdownStages.map((s) => r.breakdown.stages[s].ms), Math.max(0, r.breakdown.unaccountedMs)];
      const sum = parts.reduce((a, b) => a + b, 0);
      return {
        label: resultLabel(r), fraction: Math.min(1, sum / r.breakdown.layerMs), parts,
        note: `${r.breakdown.layerMs.toFixed(1)} ms`,
      };
    }),
  });
  for (const r of results) {
    const label = resultLabel(r);
    const s = r.scaling;
    const where = `${label}, T=${s.shape.tokens}, d=${s.shape.dModel}, h=${s.shape.expertHiddenDim}, ${s.shape.nSharedExperts} shared`;
    charts[`scaling-experts-${label}.svg`] = scalingChart(s.experts, (p) => p.nRoutedExperts, `More routed experts ` +
      `at top-${s.experts[0]?.topK} (${where})`, 'routed experts (log scale)');
    charts[`scaling-topk-${label}.svg`] = scalingChart(s.topK, (p) => p.topK, `More chosen experts at ` +
      `E=${s.topK[0]?.nRoutedExperts} (${where})`, 'topK (log scale)');
    charts[`memory-experts-${label}.svg`] = memoryChart(
      r.memory.experts, (p) => p.nRoutedExperts,
      `Memory growth as routed experts grow, top-${r.memory.experts[0]?.topK} (${label}, T=${r.memory.shape.tokens})`,
      'routed experts (log scale)',
    );
    charts[`memory-topk-${label}.svg`] = memoryChart(r.memory.topK, (p) => p.topK, `Memory growth as topK grows, ` +
      `E=${r.memory.topK[0]?.nRoutedExperts} (${label}, T=${r.memory.shape.tokens})`, 'topK (log scale)');
  }
  return charts;
}
