/**
 * The scaling and memory sections: routed experts grow at fixed topK (activated size fixed, total grows), and
 * topK grows at fixed routed experts (total fixed, activated grows), each point against the dense FFNs of equal
 * activated and of equal total parameters, timed in the same run.
 */
import * as tf from '@tensorflow/tfjs';
import { benchLayerConfig, denseUnit, layerParams, moeUnit, twinHidden } from './steps.js';
import { bytes } from '../bench-report/format.js';
import { median, pairedRatio, peakBytes, tensorBytes, timeAlternating, type Repeats } from './timing.js';
import type { MemoryPoint, ScalingPoint, ScalingSection, SeriesShape } from './schema.js';

export interface SeriesPlan {
  /** Routed experts of the first series, at `expertsTopK`. */
  experts: number[];
  expertsTopK: number;
  /** topK of the second series, at `topKExperts` routed experts. */
  topK: number[];
  topKExperts: number;
}

export const seriesPlans: Record<'quick' | 'full', SeriesPlan> = {
  full: { experts: [4, 8, 16, 32, 64, 128, 256], expertsTopK: 4, topK: [1, 2, 4, 8, 16], topKExperts: 64 },
  quick: { experts: [8, 64, 256], expertsTopK: 4, topK: [1, 4, 16], topKExperts: 64 },
};

/** Every point of both series: [series, nRoutedExperts, topK]. */
export const seriesPoints = (plan: SeriesPlan): ['experts' | 'topK', number, number][] => [
  ...plan.experts.map((E) => ['experts', E, plan.expertsTopK] as ['experts', number, number]),
  ...plan.topK.map((K) => ['topK', plan.topKExperts, K] as ['topK', number, number]),
];


/**
 * The longest one run of a dense baseline may take (ms). The twin of equal total grows with E: on SwiftShader's
 * WebGPU one run of it at E = 256 and T = 2048 takes about six minutes, so a full run would take hours. Its time
 * is linear in its width, so it is predicted from the twin of equal activated size and skipped (null) above this.
 */
export const baselineBudgetMs = 60_000;

export async function scalingSection(
  shape: SeriesShape, plan: SeriesPlan, repeats: Repeats, asyncReads: boolean, tick: (label: string) => void,
  budgetMs = baselineBudgetMs,
): Promise<ScalingSection> {
  const x = tf.randomNormal([shape.tokens, shape.dModel], 0, 1, 'float32', 2) as tf.Tensor2D;
  // A point both series share (E = topKExperts at K = expertsTopK) is timed once.
  const points = new Map<string, ScalingPoint & { predictedDenseTotalMs: number | null }>();
  const result: ScalingSection = { shape, experts: [], topK: [] };
  try {
    for (const [series, nRoutedExperts, topK] of seriesPoints(plan)) {
      const key = `${nRoutedExperts}/${topK}`;
      if (!points.has(key)) points.set(key, await scalingPoint({ ...shape, nRoutedExperts, topK }, x, repeats, asyncReads, budgetMs));
      const { predictedDenseTotalMs, ...point } = points.get(key)!;
      result[series].push(point);
      const { moe, denseActivated, denseTotal } = point.ms;
      const total = denseTotal === null
        ? `not timed (about ${((predictedDenseTotalMs ?? 0) / 1000).toFixed(0)} s a run)` : denseTotal.toFixed(1);
      tick(`scaling E=${nRoutedExperts} K=${topK}: moe ${moe.toFixed(1)} ms, dense =activated ` +
        `${denseActivated.toFixed(1)}, =total ${total}; moe / =activated ${point.ratios.moeOverDenseActivated.toFixed(2)}`);
    }
    return result;
  } finally {
    x.dispose();
  }
}

/**
 * One point: the MoE layer and its dense twins in runs that alternate. The twin of equal total is left out when
 * one run of it would take longer than `budgetMs`, predicted from the twin of equal activated size by their widths
 * (after one untimed run of each).
 */
async function scalingPoint(
  s: SeriesShape & { nRoutedExperts: number; topK: number }, x: tf.Tensor2D, repeats: Repeats, asyncReads: boolean,
  budgetMs: number,
): Promise<ScalingPoint & { predictedDenseTotalMs: number | null }> {
  const [activatedHidden, totalHidden] = [twinHidden(s, 'activated'), twinHidden(s, 'total')];
  const units = [
    moeUnit(benchLayerConfig(s, 'dropless', asyncReads), x, asyncReads),
    denseUnit(x, activatedHidden, 30),
  ];
  try {
    const [probe] = await timeAlternating([units[1]!.step], { runs: 1, warmup: 1 });
    const predicted = (probe![0]! * totalHidden) / activatedHidden;
    // At E = K both twins have one width: the twin of equal activated size is the one of equal total.
    const sameWidth = totalHidden === activatedHidden;
    if (!sameWidth && predicted <= budgetMs) units.push(denseUnit(x, totalHidden, 31));
    const [moe, denseActivated, timedTotal] = await timeAlternating(units.map((u) => u.step), repeats);
    const denseTotal = sameWidth ? denseActivated : timedTotal;
    const p = layerParams(s);
    const activated = pairedRatio(moe!, denseActivated!);
    const total = denseTotal ? pairedRatio(moe!, denseTotal) : null;
    return {
      nRoutedExperts: s.nRoutedExperts, topK: s.topK, totalParams: p.total, activatedParams: p.activated,
      ms: { moe: median(moe!), denseActivated: median(denseActivated!), denseTotal: denseTotal ? median(denseTotal) : null },
      predictedDenseTotalMs: denseTotal ? null : predicted,
      ratios: {
        moeOverDenseActivated: activated.ratio, moeOverDenseActivatedIqr: activated.iqr,
        moeOverDenseTotal: total?.ratio ?? null, moeOverDenseTotalIqr: total?.iqr ?? null,
      },
    };
  } finally {
    for (const u of units) u.dispose();
  }
}

/** Weight bytes and the peak bytes of one forward + backward, for every point of both series. */
export async function memorySection(shape: SeriesShape, plan: SeriesPlan, asyncReads: boolean, tick: (label: string) => void) {
  const x = tf.randomNormal([shape.tokens, shape.dModel], 0, 1, 'float32', 3) as tf.Tensor2D;
  const result: { shape: SeriesShape; experts: MemoryPoint[]; topK: MemoryPoint[] } = { shape, experts: [], topK: [] };
  try {
    for (const [series, nRoutedExperts, topK] of seriesPoints(plan)) {
      const s = { ...shape, nRoutedExperts, topK };
      const unit = moeUnit(benchLayerConfig(s, 'dropless', asyncReads), x, asyncReads);
      try {
        const p = layerParams(s);
        const point: MemoryPoint = {
          nRoutedExperts, topK, totalParams: p.total, activatedParams: p.activated,
          weightBytes: tensorBytes(unit.weights), forwardPeakBytes: await peakBytes(unit.forward),
          stepPeakBytes: await peakBytes(unit.step),
        };
        result[series].push(point);
        tick(`memory E=${nRoutedExperts} K=${topK}: weights ${bytes(point.weightBytes)}, forward ` +
          `${bytes(point.forwardPeakBytes)}, step ${bytes(point.stepPeakBytes)}`);
      } finally {
        unit.dispose();
      }
    }
    return result;
  } finally {
    x.dispose();
  }
}
