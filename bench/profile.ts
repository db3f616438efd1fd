/**
 * npm run bench:profile -- [--backend wasm|cpu|tensorflow] [--dispatch dropless|capacity] [--top 15]
 * Kernel time of one forward + backward step of the layer at the bench's reference shape, by kernel and by
 * kernel and input shapes: where to look before optimising. (Node backends; tf.profile's times are wall
 * clock per kernel, and custom gradients show up as unnamed scopes that include their inner kernels.)
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import {
  createMoEWeights, moeForward, initBackend, resolveMoEConfig, type BackendName, type DispatchMode,
} from 'deepseek-moe-tfjs';
import { referenceShape } from '../tools/bench-suite/layer.js';
import { moeLoss } from '../tools/bench-suite/steps.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    dispatch: { type: 'string', default: 'dropless' },
    top: { type: 'string', default: '15' },
  },
});
await initBackend(values.backend as BackendName);
const s = referenceShape;
const config = resolveMoEConfig({
  dModel: s.dModel, nRoutedExperts: s.nRoutedExperts, topK: s.topK, expertHiddenDim: s.expertHiddenDim,
  nSharedExperts: s.nSharedExperts, scoreFunc: 'sigmoid', normTopK: true, auxFreeBias: true, seqAlpha: 0.0001,
  dispatch: values.dispatch as DispatchMode, seed: 1,
});
const x = tf.randomNormal([s.tokens, s.dModel], 0, 1, 'float32', 1);
const w = createMoEWeights(config);
const { f, inputs } = moeLoss(w, (xx, ww) => moeForward(xx, ww, config));
const step = async () => {
  const total = tf.tidy(() => tf.grads(f)(inputs(x)).map((g) => tf.sum(g)).reduce((a, b) => tf.add(a, b)));
  await total.data();
  total.dispose();
};
await step(); // warm-up
const info = await tf.profile(step);

const top = Number(values.top);
const table = (key: (k: (typeof info.kernels)[number]) => string) => {
  const sums = new Map<string, number>();
  for (const k of info.kernels) sums.set(key(k), (sums.get(key(k)) ?? 0) + (Number(k.kernelTimeMs) || 0));
  return [...sums].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) => `${ms.toFixed(1).padStart(9)} ms  ${k}`).join('\n');
};
console.log(`${tf.getBackend()}, ${values.dispatch}, ${info.kernels.length} kernels`);
console.log('by kernel:\n' + table((k) => k.name));
console.log('by kernel and input shapes:\n' + table((k) => `${k.name} ${JSON.stringify(k.inputShapes)}`));
