import * as tf from '@tensorflow/tfjs';
import { moeWeightSpecs, type DeepSeekMoEConfig, type MoEWeights } from '../src/index.js';

/** Seeded weights as plain tensors (the bench differentiates w.r.t. them directly). */
export function seededWeights(config: DeepSeekMoEConfig, seed = 1): MoEWeights {
  const w: Record<string, tf.Tensor | null> = { sharedW1: null, sharedW3: null, sharedW2: null, expertBias: null };
  moeWeightSpecs(config).forEach((spec, i) => {
    w[spec.name] = spec.initStd === 0 ? tf.zeros(spec.shape) : tf.randomNormal(spec.shape, 0, spec.initStd, 'float32', seed * 100 + i);
  });
  return w as unknown as MoEWeights;
}
