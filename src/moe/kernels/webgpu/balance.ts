/**
 * The per-token reductions of the scores on webgpu: the router's entropy and the balance losses' weighted
 * affinities with their gradient. One thread per token, each reading its row of E scores (contract.ts).
 */
import { f32, i32, runFlat, type GpuKernel } from './program.js';

/** Token t's score sum (1 when not normalising) and the offset of its block's weights: WGSL helpers. */
const tokenHelpers = (normalise: boolean) => `
  fn scoreSum(t : i32) -> f32 {
    ${normalise ? `var sum = 0.0;
    for (var j = 0; j < uniforms.nExperts; j++) { sum += scores[t * uniforms.nExperts + j]; }
    return sum;` : 'return 1.0;'}
  }`;

/** Where token t's block of weights starts. */
const blockHelper = `
  fn weightsAt(t : i32) -> i32 {
    return (t * uniforms.weightsShape.x / uniforms.nTokens) * uniforms.nExperts;
  }`;

const weightedHelpers = (normalise: boolean) => `${tokenHelpers(normalise)}${blockHelper}
  fn weighted(t : i32) -> f32 {
    let w = weightsAt(t);
    var acc = 0.0;
    for (var j = 0; j < uniforms.nExperts; j++) { acc += weights[w + j] * scores[t * uniforms.nExperts + j]; }
    return acc;
  }`;

const routerEntropy: GpuKernel<'routerEntropy'> = ({ scores }, { normalise }, backend) => {
  const [T, E] = scores!.shape as [number, number];
  return runFlat(backend, {
    key: `routerEntropy_${normalise}`, inputs: [scores!], names: ['scores'], outputShape: [T], dtype: 'float32', n: T,
    uniforms: [i32('nExperts', E)], helpers: tokenHelpers(normalise),
    body: `
      let sum = scoreSum(index);
      var h = 0.0;
      for (var j = 0; j < uniforms.nExperts; j++) {
        let p = scores[index * uniforms.nExperts + j] / sum;
        h -= p * log(max(p, 1e-12));
      }
      result[index] = h;`,
  });
};

const affinityBalance: GpuKernel<'affinityBalance'> = ({ scores, weights }, { normalise, scale }, backend) => {
  const [T, E] = scores!.shape as [number, number];
  return runFlat(backend, {
    key: `affinityBalance_${normalise}`, inputs: [scores!, weights!], names: ['scores', 'weights'],
    outputShape: [T], dtype: 'float32', n: T, uniforms: [i32('nExperts', E), i32('nTokens', T), f32('scale', scale)],
    helpers: weightedHelpers(normalise),
    body: 'result[index] = uniforms.scale * weighted(index) / scoreSum(index);',
  });
};

const affinityBalanceGrad: GpuKernel<'affinityBalanceGrad'> = (inputs, { normalise, scale }, backend) => {
  const { dy, scores, weights } = inputs;
  const [T, E] = scores!.shape as [number, number];
  return runFlat(backend, {
    // Unnormalised, the gradient does not read the scores: a binding the shader leaves unused is invalid.
    key: `affinityBalanceGrad_${normalise}`, inputs: normalise ? [dy!, scores!, weights!] : [dy!, weights!],
    names: normalise ? ['dy', 'scores', 'weights'] : ['dy', 'weights'],
    outputShape: [T, E], dtype: 'float32', n: T, uniforms: [i32('nExperts', E), i32('nTokens', T), f32('scale', scale)],
    helpers: normalise ? weightedHelpers(normalise) : blockHelper,
    body: `
      let sum = ${normalise ? 'scoreSum(index)' : '1.0'};
      let L = ${normalise ? 'uniforms.scale * weighted(index) / sum' : '0.0'};
      let w = weightsAt(index);
      let factor = dy[0] / sum;
      for (var j = 0; j < uniforms.nExperts; j++) {
        result[index * uniforms.nExperts + j] = factor * (uniforms.scale * weights[w + j] - L);
      }`,
  });
};

export const balanceKernels = { routerEntropy, affinityBalance, affinityBalanceGrad };
