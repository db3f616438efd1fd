import * as tf from '@tensorflow/tfjs';
import type { DeepSeekMoEConfig } from './config.js';
import type { MoEWeights } from './moe.js';
import { checkWeightSizes } from '../validate.js';
import { moeWeightSpecs, type MoEWeightSpec } from './specs.js';

export { moeWeightSpecs, type MoEWeightSpec } from './specs.js';

/**
 * The initializer for a spec; seeds are offset per weight so weights differ yet repeat for a fixed seed. The
 * offset starts at 1: TF.js treats a seed of 0 as no seed at all and draws a fresh one.
 */
export function initializerFor(spec: MoEWeightSpec, index: number, seed: number | null): ReturnType<typeof tf.initializers.zeros> {
  if (spec.initStd === 0) return tf.initializers.zeros();
  return tf.initializers.truncatedNormal({ stddev: spec.initStd, seed: seed === null ? undefined : seed + index + 1 });
}

/** Fresh variables for a custom training loop; dispose them with `disposeMoEWeights`. */
export function createMoEWeights(config: DeepSeekMoEConfig): MoEWeights {
  const w: MoEWeights = {
    routerKernel: null!, expertW1: null!, expertW3: null!, expertW2: null!,
    sharedW1: null, sharedW3: null, sharedW2: null, sharedGate: null, expertBias: null,
  };
  const specs = moeWeightSpecs(config);
  checkWeightSizes('DeepSeekMoE config', specs);
  try {
    specs.forEach((spec, i) => {
      const value = tf.tidy(() => initializerFor(spec, i, config.seed).apply(spec.shape, 'float32'));
      (w as unknown as Record<string, tf.Tensor>)[spec.name] = tf.variable(value, spec.trainable, undefined, 'float32');
      value.dispose();
    });
  } catch (e) {
    disposeMoEWeights(w); // an allocation failed part way: nothing is left behind
    throw e;
  }
  return w;
}

/** Frees the variables createMoEWeights made. */
export function disposeMoEWeights(w: MoEWeights): void {
  for (const t of Object.values(w)) if (t) (t as tf.Tensor).dispose();
}
