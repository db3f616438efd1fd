/** The layer's weight list (names, shapes, initial scales), TF.js-free so file formats can use it. */
import type { DeepSeekMoEConfig } from './config.js';
import type { MoEWeights } from './moe.js';

/** One weight of the layer: its name (as saved), shape, initial standard deviation (0 = zeros) and trainability. */
export interface MoEWeightSpec {
  name: keyof MoEWeights;
  shape: number[];
  initStd: number;
  trainable: boolean;
}

/**
 * The layer's weights. Initial scales are fan-in (LeCun) per expert: 1/sqrt(d) into an expert, 1/sqrt(h) out
 * of it. The selection bias starts at zero and is not trainable: only the balance update moves it.
 */
export function moeWeightSpecs(config: DeepSeekMoEConfig): MoEWeightSpec[] {
  const { dModel: d, nRoutedExperts: E, expertHiddenDim: h, nSharedExperts } = config;
  const hs = nSharedExperts * h;
  const specs: MoEWeightSpec[] = [
    { name: 'routerKernel', shape: [d, E], initStd: 1 / Math.sqrt(d), trainable: true },
    { name: 'expertW1', shape: [E, d, h], initStd: 1 / Math.sqrt(d), trainable: true },
    { name: 'expertW3', shape: [E, d, h], initStd: 1 / Math.sqrt(d), trainable: true },
    { name: 'expertW2', shape: [E, h, d], initStd: 1 / Math.sqrt(h), trainable: true },
  ];
  if (hs > 0) {
    specs.push(
      { name: 'sharedW1', shape: [d, hs], initStd: 1 / Math.sqrt(d), trainable: true },
      { name: 'sharedW3', shape: [d, hs], initStd: 1 / Math.sqrt(d), trainable: true },
      { name: 'sharedW2', shape: [hs, d], initStd: 1 / Math.sqrt(hs), trainable: true },
    );
  }
  if (config.sharedExpertGate) {
    specs.push({ name: 'sharedGate', shape: [d, 1], initStd: 1 / Math.sqrt(d), trainable: true });
  }
  if (config.auxFreeBias) specs.push({ name: 'expertBias', shape: [E], initStd: 0, trainable: false });
  return specs;
}
