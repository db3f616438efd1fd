/** The markdown summary of one run (one result per backend), with links to its charts. */
import { breakdownStages, type BenchResult, type MemoryPoint, type ScalingPoint } from '../bench-suite/schema.js';
import { resultLabel } from './charts.js';
import { bytes, human } from './format.js';

const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1);
const x = (n: number) => `${n.toFixed(2)}×`;
/** A paired ratio with its interquartile range. */
const xr = (n: number, iqr: [number, number] | null) => (iqr ? `${x(n)} [${iqr[0].toFixed(2)}, ${iqr[1].toFixed(2)}]` : x(n));
const pct = (n: number) => `${(100 * n).toFixed(1)}%`;

function table(header: string[], rows: (string | number)[][]): string {
  return [
    `| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const growth = <P>(points: P[], f: (p: P) => number) => (points.length > 1 ? f(points[points.length - 1]!) / f(points[0]!) : 1);

/** How the dense twin of equal total grew over the points where it was timed. */
function totalGrowth(points: ScalingPoint[]): string {
  const timed = points.filter((p) => p.ms.denseTotal !== null);
  const last = timed.at(-1);
  if (!last || timed.length < 2) return 'dense twin of equal total not timed past the first point (over the time budget)';
  const upTo = last === points.at(-1) ? '' : ` (timed up to E=${last.nRoutedExperts}; beyond, one run would exceed the time budget)`;
  return `dense twin of equal total ${x(growth(timed, (p) => p.ms.denseTotal!))}${upTo}`;
}

function scalingTable(points: ScalingPoint[]): string {
  return table(['E', 'K', 'total', 'activated', 'MoE ms', 'dense =activated', 'dense =total', 'MoE / =activated', 'MoE / =total'],
    points.map((p) => [p.nRoutedExperts, p.topK, human(p.totalParams), human(p.activatedParams), ms(p.ms.moe), ms(p.ms.denseActivated),
      p.ms.denseTotal === null ? 'not timed' : ms(p.ms.denseTotal), xr(p.ratios.moeOverDenseActivated, p.ratios.moeOverDenseActivatedIqr),
      p.ratios.moeOverDenseTotal === null ? '-' : xr(p.ratios.moeOverDenseTotal, p.ratios.moeOverDenseTotalIqr)]));
}

function memoryTable(points: MemoryPoint[]): string {
  return table(['E', 'K', 'total', 'activated', 'weights', 'forward peak', 'forward + backward peak'],
    points.map((p) => [
      p.nRoutedExperts, p.topK, human(p.totalParams), human(p.activatedParams), bytes(p.weightBytes),
      bytes(p.forwardPeakBytes), bytes(p.stepPeakBytes),
    ]));
}

/** `chartPath(name)` is where the summary links each chart from. */
export function benchMarkdown(results: BenchResult[], chartPath: (name: string) => string): string {
  const first = results[0];
  if (!first) return '# Bench\n\nNo results.\n';
  const img = (name: string, alt: string) => `![${alt}](${chartPath(name)})`;
  const out: string[] = [];
  out.push(`# DeepSeekMoE bench, ${first.date.slice(0, 10)} (${first.mode})`);
  out.push(`${first.environment.description}, ${first.environment.cores ?? '?'} cores, TF.js ${first.environment.tfjsVersion}. ` +
    `Every time is a median over ${first.settings.runs} warm runs after ${first.settings.warmup} warm-up. MoE / dense ` +
      `ratios are medians of the ratios of runs that alternate (MoE, dense, dense, MoE, ...), with their interquartile ` +
      `range in brackets: these machines drift within minutes, so only runs side by side compare. ` +
    `Backends: ${results.map((r) =>
      `${resultLabel(r)} (${r.seconds.toFixed(0)} s${r.environment.device ? `, ${r.environment.device}` : ''})`,
    ).join(', ')}.`);

  out.push('## Parameters: total and activated');
  out.push(table(['model', 'total', 'activated', 'activated share', 'KV/token MLA', 'KV/token MHA', 'MHA / MLA'],
    first.params.map((m) => [m.name, human(m.total), human(m.activated), pct(m.activatedRatio),
      m.kvCache.mlaBytesPerToken === null ? '-' : bytes(m.kvCache.mlaBytesPerToken), bytes(m.kvCache.mhaBytesPerToken),
      m.kvCache.mlaBytesPerToken ? x(m.kvCache.mhaBytesPerToken / m.kvCache.mlaBytesPerToken) : '-'])));
  out.push('KV cache: our models in float32 (4 bytes), DeepSeek\'s in BF16 (2 bytes). MHA: the same heads caching ' +
    'every key (nope + rope dims) and value.');
  out.push(img('params.svg', 'parameters by part, total and activated'));
  out.push(img('kv-cache.svg', 'KV cache bytes per token, MLA vs MHA'));

  out.push('## One layer');
  out.push('Forward + backward of one layer: the library\'s routed path and the oracle\'s stock-op slots path (the reference ' +
    'column; tools/oracle), against a dense SwiGLU FFN of equal activated parameters. Programs: shader dispatches on webgpu and webgl, libtensorflow ops on ' +
    'tensorflow, TF.js kernels on cpu and wasm, counted over one forward + backward.');
  const layerNames = [first.layer, ...first.otherLayers].map((l) => `${l.name} T=${l.shape.tokens}`);
  layerNames.forEach((_, li) => {
    const at = (r: BenchResult) => (li === 0 ? r.layer : r.otherLayers[li - 1]);
    const l = at(first)!;
    const s = l.shape;
    const groups = s.nExpertGroups > 1 ? `, top-${s.topKGroups} of ${s.nExpertGroups} groups` : '';
    const experts = `E=${s.nRoutedExperts}, h=${s.expertHiddenDim}, top-${s.topK}${groups}, ${s.nSharedExperts} shared`;
    out.push(`### ${l.name}: T=${s.tokens}, d=${s.dModel}, ${experts}`);
    out.push(table(['backend', 'MoE ms', 'reference path', 'capacity 1.25', 'dense =activated', 'masked dense path', 'MoE / dense',
      'programs MoE', 'reference', 'dense', 'MoE / dense programs', 'MoE GFLOP/s', 'matmul GFLOP/s'],
    results.flatMap((r) => {
      const m = at(r);
      if (!m) return [];
      const orDash = (v: number | null, f: (n: number) => string) => (v === null ? '-' : f(v));
      return [[
        resultLabel(r), ms(m.ms.moe), orDash(m.ms.moeReference, ms), ms(m.ms.moeCapacity), ms(m.ms.denseActivated),
        orDash(m.ms.naive, ms), xr(m.ratios.moeOverDenseActivated, m.ratios.moeOverDenseActivatedIqr),
        `${m.programs.moe} ${m.programs.unit}`,
        orDash(m.programs.moeReference, String), m.programs.denseActivated,
        x(m.programs.moeOverDenseActivated), m.gflops.moe.toFixed(2), m.gflops.matmul.toFixed(2)]];
    })));
  });
  out.push(img('layer.svg', 'layer time per backend'));

  out.push('## Scaling: compute follows activated, not total, parameters');
  for (const r of results) {
    const e = r.scaling.experts;
    const k = r.scaling.topK;
    out.push(`### ${resultLabel(r)}`);
    out.push(`Routed experts ${e[0]?.nRoutedExperts} → ${e.at(-1)?.nRoutedExperts} at top-${e[0]?.topK}: total ` +
      `parameters ${x(growth(e, (p) => p.totalParams))}, ` +
      `MoE time ${x(growth(e, (p) => p.ms.moe))}, ${totalGrowth(e)}. ` +
      `topK ${k[0]?.topK} → ${k.at(-1)?.topK} at E=${k[0]?.nRoutedExperts}: activated parameters ` +
        `${x(growth(k, (p) => p.activatedParams))}, MoE time ${x(growth(k, (p) => p.ms.moe))}.`);
    const e8 = e.find((p) => p.nRoutedExperts === 8);
    const e256 = e.find((p) => p.nRoutedExperts === 256);
    if (e8 && e256) out.push(`From E=8 to E=256 at the same activated size: MoE time ${x(e256.ms.moe / e8.ms.moe)}.`);
    out.push(scalingTable(e));
    out.push(scalingTable(k));
    out.push(`${img(`scaling-experts-${resultLabel(r)}.svg`, 'time vs routed experts')} ` +
      `${img(`scaling-topk-${resultLabel(r)}.svg`, 'time vs topK')}`);
  }

  out.push(`## Training the ${first.training.model} model`);
  out.push(`Batch ${first.training.batchSize} × ${first.training.seqLen} tokens, median of ${first.training.steps} ` +
    `steps after warm-up (forward, backward, AdamW, bias update, the trainer's one read); the three models take ` +
    `turns step by step, and the ratios are medians of the per-round ratios.`);
  out.push(table(['backend', 'MoE dispatch', 'MoE tokens/s', 'dense =activated', 'dense =total', 'MoE / =activated', 'MoE / =total'],
    results.map((r) => [
      resultLabel(r), r.training.dispatch, r.training.moe.tokensPerSecond.toFixed(0),
      r.training.denseActivated.tokensPerSecond.toFixed(0), r.training.denseTotal.tokensPerSecond.toFixed(0),
      xr(r.training.ratios.moeOverDenseActivatedTokensPerSecond, r.training.ratios.moeOverDenseActivatedIqr),
      xr(r.training.ratios.moeOverDenseTotalTokensPerSecond, r.training.ratios.moeOverDenseTotalIqr),
    ])));
  out.push(img('training.svg', 'training tokens per second'));

  out.push('## Where the layer\'s time goes');
  out.push('Each stage timed alone (forward + backward) on prepared inputs, as a share of the whole layer timed in the same run.');
  out.push(table(['backend', 'layer ms', ...breakdownStages, 'unaccounted'],
    results.map((r) => [
      resultLabel(r), ms(r.breakdown.layerMs), ...breakdownStages.map((st) => pct(r.breakdown.stages[st].share)),
      `${ms(r.breakdown.unaccountedMs)} ms`,
    ])));
  out.push(img('breakdown.svg', 'time per stage'));

  out.push('## Memory');
  out.push('Weight bytes against total parameters, and the peak bytes of one forward call (every intermediate it holds until it returns: ' +
    'the activations the tape keeps, and the routing plan\'s scratch) against activated parameters. ' +
    'The forward + backward peak adds the gradients, whose weight part is as large as the weights.');
  for (const r of results) {
    const e = r.memory.experts;
    const k = r.memory.topK;
    out.push(`### ${resultLabel(r)}`);
    out.push(`Routed experts ${e[0]?.nRoutedExperts} → ${e.at(-1)?.nRoutedExperts}: total parameters ` +
      `${x(growth(e, (p) => p.totalParams))}, weights ${x(growth(e, (p) => p.weightBytes))}; ` +
      `activated parameters ${x(growth(e, (p) => p.activatedParams))}, forward activations ${x(growth(e, (p) => p.forwardPeakBytes))}. ` +
      `topK ${k[0]?.topK} → ${k.at(-1)?.topK}: total parameters ${x(growth(k, (p) => p.totalParams))}, weights ` +
        `${x(growth(k, (p) => p.weightBytes))}; ` +
      `activated parameters ${x(growth(k, (p) => p.activatedParams))}, forward activations ${x(growth(k, (p) => p.forwardPeakBytes))}.`);
    const m8 = e.find((p) => p.nRoutedExperts === 8);
    const m256 = e.find((p) => p.nRoutedExperts === 256);
    if (m8 && m256) {
      out.push(`From E=8 to E=256 at the same activated size: forward activations ${x(m256.forwardPeakBytes / m8.forwardPeakBytes)}.`);
    }
    out.push(memoryTable(e));
    out.push(memoryTable(k));
    out.push(`${img(`memory-experts-${resultLabel(r)}.svg`, 'memory vs routed experts')} ` +
      `${img(`memory-topk-${resultLabel(r)}.svg`, 'memory vs topK')}`);
  }
  return out.join('\n\n') + '\n';
}
