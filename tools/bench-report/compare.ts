/**
 * Two bench results side by side: every figure both have, matched by name (which carries the shape, so a quick
 * run is never matched against a full one), with B's figure over A's.
 */
import { breakdownStages, type BenchResult } from '../bench-suite/schema.js';
import { resultLabel } from './charts.js';
import { MiB } from './format.js';

export interface ComparedFigure {
  name: string;
  unit: 'ms' | 'tokens/s' | 'MiB' | 'programs' | 'ops' | 'kernels';
  a: number;
  b: number;
  /** b / a. */
  ratio: number;
  /** How many times better B is than A: a / b for times and memory, b / a for throughput. */
  gain: number;
}

export interface Comparison {
  a: string;
  b: string;
  figures: ComparedFigure[];
  /** Figures only one side has (different shapes, points or modes). */
  onlyA: string[];
  onlyB: string[];
}

type Figure = { unit: ComparedFigure['unit']; value: number; higherIsBetter: boolean };

/** Every figure of a result by name. */
export function figuresOf(r: BenchResult): Map<string, Figure> {
  const out = new Map<string, Figure>();
  const time = (name: string, value: number) => out.set(name, { unit: 'ms', value, higherIsBetter: false });
  const s = r.layer.shape;
  const layer = `layer T=${s.tokens} E=${s.nRoutedExperts} K=${s.topK}`;
  time(`${layer}: MoE`, r.layer.ms.moe);
  time(`${layer}: MoE, capacity 1.25`, r.layer.ms.moeCapacity);
  time(`${layer}: dense =activated`, r.layer.ms.denseActivated);
  time(`${layer}: plain matmul`, r.layer.ms.matmul);
  for (const l of [r.layer, ...r.otherLayers]) {
    const at = `layer ${l.name} T=${l.shape.tokens} E=${l.shape.nRoutedExperts} K=${l.shape.topK}`;
    if (l !== r.layer) time(`${at}: MoE`, l.ms.moe);
    if (l.ms.moeReference !== null) time(`${at}: MoE, reference path`, l.ms.moeReference);
    if (l.ms.naive !== null) time(`${at}: masked dense path`, l.ms.naive);
    out.set(`${at}: MoE ${l.programs.unit}`, { unit: l.programs.unit, value: l.programs.moe, higherIsBetter: false });
    out.set(`${at}: dense ${l.programs.unit}`, { unit: l.programs.unit, value: l.programs.denseActivated, higherIsBetter: false });
  }
  for (const p of [...r.scaling.experts, ...r.scaling.topK]) {
    const point = `scaling T=${r.scaling.shape.tokens} E=${p.nRoutedExperts} K=${p.topK}`;
    time(`${point}: MoE`, p.ms.moe);
    time(`${point}: dense =activated`, p.ms.denseActivated);
    if (p.ms.denseTotal !== null) time(`${point}: dense =total`, p.ms.denseTotal);
  }
  const t = r.training;
  const training = `training ${t.model} ${t.batchSize}x${t.seqLen} (${t.dispatch})`;
  for (const v of ['moe', 'denseActivated', 'denseTotal'] as const) {
    out.set(`${training}: ${v}`, { unit: 'tokens/s', value: t[v].tokensPerSecond, higherIsBetter: true });
  }
  const b = r.breakdown.shape;
  const breakdown = `breakdown T=${b.tokens} E=${b.nRoutedExperts} K=${b.topK}`;
  time(`${breakdown}: whole layer`, r.breakdown.layerMs);
  for (const stage of breakdownStages) time(`${breakdown}: ${stage}`, r.breakdown.stages[stage].ms);
  for (const p of [...r.memory.experts, ...r.memory.topK]) {
    const point = `memory T=${r.memory.shape.tokens} E=${p.nRoutedExperts} K=${p.topK}`;
    out.set(`${point}: forward peak`, { unit: 'MiB', value: p.forwardPeakBytes / MiB, higherIsBetter: false });
    out.set(`${point}: forward + backward peak`, { unit: 'MiB', value: p.stepPeakBytes / MiB, higherIsBetter: false });
  }
  return out;
}

export function compareResults(a: BenchResult, b: BenchResult): Comparison {
  const fa = figuresOf(a);
  const fb = figuresOf(b);
  const figures: ComparedFigure[] = [];
  for (const [name, x] of fa) {
    const y = fb.get(name);
    if (!y) continue;
    figures.push({
      name, unit: x.unit, a: x.value, b: y.value, ratio: y.value / x.value,
      gain: x.higherIsBetter ? y.value / x.value : x.value / y.value,
    });
  }
  const label = (r: BenchResult) => `${resultLabel(r)} ${r.date.slice(0, 10)}`;
  return {
    a: label(a), b: label(b), figures,
    onlyA: [...fa.keys()].filter((n) => !fb.has(n)),
    onlyB: [...fb.keys()].filter((n) => !fa.has(n)),
  };
}

/** A markdown table of the comparison, then what only one side has. */
export function formatComparison(c: Comparison): string {
  const num = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const lines = [
    `A: ${c.a}`, `B: ${c.b}`, '',
    '| figure | unit | A | B | B / A | B better by |', '| --- | --- | ---: | ---: | ---: | ---: |',
    ...c.figures.map((f) => `| ${f.name} | ${f.unit} | ${num(f.a)} | ${num(f.b)} | ${f.ratio.toFixed(2)} | ${f.gain.toFixed(2)}× |`),
  ];
  if (c.figures.length === 0) lines.push('', 'No figure in common (different shapes or modes: compare a quick run with a quick one).');
  if (c.onlyA.length) lines.push('', `Only in A (${c.onlyA.length}): ${c.onlyA.join('; ')}`);
  if (c.onlyB.length) lines.push('', `Only in B (${c.onlyB.length}): ${c.onlyB.join('; ')}`);
  return lines.join('\n') + '\n';
}
