/**
 * The scaling and memory sections: routed experts grow at fixed topK (activated size fixed, total grows), and
 * topK grows at fixed routed experts (total fixed, activated grows), each point against the dense FFNs of equal
 * activated and of equal total parameters, timed in the same run.
 */
import * as tf from '@tensorflow/tfjs';
import { timeUnit } from './layer.js';
import { benchLayerConfig, denseUnit, layerParams, moeUnit, twinHidden } from './steps.js';
import { bytes } from '../bench-report/format.js';
import { peakBytes, tensorBytes, type Repeats } from './timing.js';
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
  // Dense twins recur across points (equal activated is the same width along the experts series): time each once.
  const denseMs = new Map<number, number>();
  const dense = async (hidden: number) => {
    if (!denseMs.has(hidden)) denseMs.set(hidden, await timeUnit(denseUnit(x, hidden, 30), repeats));
    return denseMs.get(hidden)!;
  };
  // A point both series share (E = topKExperts at K = expertsTopK) is timed once.
  const moeMs = new Map<string, number>();
  const result: ScalingSection = { shape, experts: [], topK: [] };
  try {
    for (const [series, nRoutedExperts, topK] of seriesPoints(plan)) {
      const s = { ...shape, nRoutedExperts, topK };
      const key = `${nRoutedExperts}/${topK}`;
      if (!moeMs.has(key)) moeMs.set(key, await timeUnit(moeUnit(benchLayerConfig(s, 'dropless', asyncReads), x, asyncReads), repeats));
      const moe = moeMs.get(key)!;
      const [activatedHidden, totalHidden] = [twinHidden(s, 'activated'), twinHidden(s, 'total')];
      const denseActivated = await dense(activatedHidden);
      const predicted = (denseActivated * totalHidden) / activatedHidden;
      const denseTotal = denseMs.has(totalHidden) || predicted <= budgetMs ? await dense(totalHidden) : null;
      const p = layerParams(s);
      const point: ScalingPoint = {
        nRoutedExperts, topK, totalParams: p.total, activatedParams: p.activated,
        ms: { moe, denseActivated, denseTotal },
        ratios: { moeOverDenseActivated: moe / denseActivated, moeOverDenseTotal: denseTotal === null ? null : moe / denseTotal },
      };
      result[series].push(point);
      const total = denseTotal === null ? `not timed (about ${(predicted / 1000).toFixed(0)} s a run)` : denseTotal.toFixed(1);
      tick(`scaling E=${nRoutedExperts} K=${topK}: moe ${moe.toFixed(1)} ms, dense =activated ` +
        `${denseActivated.toFixed(1)}, =total ${total}`);
    }
    return result;
  } finally {
    x.dispose();
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
