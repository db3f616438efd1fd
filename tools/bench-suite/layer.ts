/** The layer sections: one DeepSeekMoE layer shape on both paths against a dense FFN and the masked path. */
import * as tf from '@tensorflow/tfjs';
import { countPrograms, programUnit } from './programs.js';
import { benchLayerConfig, denseUnit, layerParams, moeUnit, twinHidden, type TimedUnit } from './steps.js';
import { median, pairedRatio, timeAlternating, timeStep, type Repeats } from './timing.js';
import type { LayerSection, LayerShape } from './schema.js';

/** The reference shape of issue 2: T = 2048 tokens, d = 128, 64 routed experts of h = 64, top-6, 2 shared. */
export const referenceShape: LayerShape = {
  tokens: 2048, dModel: 128, nRoutedExperts: 64, expertHiddenDim: 64, topK: 6, nSharedExperts: 2, nExpertGroups: 1, topKGroups: 1,
};

/**
 * DeepSeek-V3's routing at toy width: 256 routed experts, top-8 chosen within the 4 best of 8 groups, 1 shared
 * expert; expert width to model width about as in V3 (2048 / 7168).
 */
export const v3Shape: Omit<LayerShape, 'tokens'> = {
  dModel: 128, nRoutedExperts: 256, expertHiddenDim: 32, topK: 8, nSharedExperts: 1, nExpertGroups: 8, topKGroups: 4,
};

/** Runs `unit`'s timed steps and frees its weights. */
export async function timeUnit(unit: TimedUnit, repeats: Repeats): Promise<number> {
  try {
    return await timeStep(unit.step, repeats);
  } finally {
    unit.dispose();
  }
}

/** Times `unit` and counts the programs of one forward + backward (after the timing's warm-up). */
async function timeAndCount(unit: TimedUnit, repeats: Repeats): Promise<{ ms: number; programs: number }> {
  try {
    const ms = await timeStep(unit.step, repeats);
    return { ms, programs: await countPrograms(unit.gradients) };
  } finally {
    unit.dispose();
  }
}

/**
 * Forward + backward of the layer at `shape`: dropless on the grouped path and on the reference path, capacity
 * 1.25, a dense SwiGLU of equal activated width, the masked path that runs every expert on every token (fewer
 * runs: it is the slow one), and one plain matmul [T, d] x [d, hidden] as the backend's reachable GFLOP/s. With
 * `slowPaths` false the reference and masked paths are skipped (null).
 */
export async function layerSection(
  name: string, shape: LayerShape, repeats: Repeats, asyncReads: boolean, log: (line: string) => void, slowPaths = true,
): Promise<LayerSection> {
  const x = tf.randomNormal([shape.tokens, shape.dModel], 0, 1, 'float32', 1) as tf.Tensor2D;
  const config = (dispatch: 'dropless' | 'capacity') => benchLayerConfig(shape, dispatch, asyncReads);
  try {
    const hidden = twinHidden(shape, 'activated');
    // The headline ratio from runs that alternate (timing.ts), then each one's programs.
    const [moeUnitOf, denseUnitOf] = [moeUnit(config('dropless'), x, asyncReads), denseUnit(x, hidden, 10)];
    let paired: { moe: number[]; dense: number[]; programs: [number, number] };
    try {
      const [moeTimes, denseTimes] = await timeAlternating([moeUnitOf.step, denseUnitOf.step], repeats);
      paired = {
        moe: moeTimes!, dense: denseTimes!,
        programs: [await countPrograms(moeUnitOf.gradients), await countPrograms(denseUnitOf.gradients)],
      };
    } finally {
      moeUnitOf.dispose();
      denseUnitOf.dispose();
    }
    const moe = { ms: median(paired.moe), programs: paired.programs[0] };
    const dense = { ms: median(paired.dense), programs: paired.programs[1] };
    const moeOverDense = pairedRatio(paired.moe, paired.dense);
    log(`${name}: dense SwiGLU, hidden ${hidden}: ${dense.ms.toFixed(1)} ms, ${dense.programs} ${programUnit()}`);
    log(`${name}: DeepSeekMoE grouped, E=${shape.nRoutedExperts}: ${moe.ms.toFixed(1)} ms, ${moe.programs} ${programUnit()}; ` +
      `MoE / dense ${moeOverDense.ratio.toFixed(2)} [${moeOverDense.iqr.map((v) => v.toFixed(2)).join(', ')}] in pairs`);
    const reference = slowPaths ? await timeAndCount(moeUnit(config('dropless'), x, asyncReads, 'slots'), repeats) : null;
    if (reference) log(`${name}: DeepSeekMoE reference path: ${reference.ms.toFixed(1)} ms, ${reference.programs} ${programUnit()}`);
    const moeCapacity = await timeUnit(moeUnit(config('capacity'), x, asyncReads), repeats);
    log(`${name}: DeepSeekMoE capacity 1.25: ${moeCapacity.toFixed(1)} ms`);
    const naiveMs = slowPaths
      ? await timeUnit(moeUnit(config('dropless'), x, asyncReads, 'masked'), { runs: Math.max(1, Math.ceil(repeats.runs / 2)), warmup: 1 })
      : null;
    if (naiveMs !== null) log(`${name}: DeepSeekMoE masked dense path: ${naiveMs.toFixed(1)} ms`);
    const w = tf.randomNormal([shape.dModel, hidden], 0, 1, 'float32', 20);
    const matmul = await timeStep(() => tf.tidy(() => tf.sum(tf.matMul(x, w))) as tf.Scalar, {
      runs: repeats.runs * 2, warmup: repeats.warmup,
    });
    w.dispose();
    log(`${name}: plain matmul [${shape.tokens}, ${shape.dModel}] x [${shape.dModel}, ${hidden}]: ${matmul.toFixed(2)} ms`);
    const moeFlops = 3 * layerParams(shape).flopsPerToken * shape.tokens; // forward + 2x backward
    return {
      name,
      shape,
      ms: { moe: moe.ms, moeReference: reference?.ms ?? null, moeCapacity, denseActivated: dense.ms, naive: naiveMs, matmul },
      ratios: {
        moeOverDenseActivated: moeOverDense.ratio,
        moeOverDenseActivatedIqr: moeOverDense.iqr,
        referenceOverMoe: reference ? reference.ms / moe.ms : null,
        naiveOverMoe: naiveMs === null ? null : naiveMs / moe.ms,
        capacityOverDropless: moeCapacity / moe.ms,
      },
      programs: {
        unit: programUnit(), moe: moe.programs, moeReference: reference?.programs ?? null, denseActivated: dense.programs,
        moeOverDenseActivated: moe.programs / dense.programs,
      },
      gflops: { moe: moeFlops / (moe.ms * 1e6), matmul: (2 * shape.tokens * shape.dModel * hidden) / (matmul * 1e6) },
    };
  } finally {
    x.dispose();
  }
}
