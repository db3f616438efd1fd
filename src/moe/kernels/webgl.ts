/**
 * The grouped kernels on webgl: GLSL programs run through the backend's runWebGLProgram (webgl/*.ts). A fragment
 * shader writes one output element (or one 2x2 block), so every kernel is a gather; the plan's two inverse maps
 * let each output find its inputs without scatters. The routing and combine kernels are plain per-element loops;
 * the expert matmuls are packed programs (webgl/rows.ts) near tf.matMul's speed.
 */
import * as tf from '@tensorflow/tfjs';
import { kernelNames, type KernelAttrs, type KernelKey } from './spec.js';
import { affinityBalance, affinityBalanceGrad, routerEntropy } from './webgl/balance.js';
import { combine, combineGrad, combineGradGates } from './webgl/combine.js';
import {
  expertsDown, expertsDownGradH, expertsDownGradW, expertsUp, expertsUpGradW, expertsUpGradX,
} from './webgl/experts.js';
import type { GLKernel, WebGLBackend } from './webgl/program.js';
import { countExperts, gateWeights, gateWeightsGrad, routingPlan, selectExperts } from './webgl/routing.js';

const kernels: { [K in KernelKey]: GLKernel<K> } = {
  selectExperts, countExperts, routingPlan, gateWeights, gateWeightsGrad,
  expertsUp, expertsUpGradX, expertsUpGradW, expertsDown, expertsDownGradH, expertsDownGradW,
  combine, combineGrad, combineGradGates, routerEntropy, affinityBalance, affinityBalanceGrad,
};

for (const key of Object.keys(kernels) as KernelKey[]) {
  const kernel = kernels[key] as GLKernel<KernelKey>;
  tf.registerKernel({
    kernelName: kernelNames[key],
    backendName: 'webgl',
    kernelFunc: ({ inputs, attrs, backend }) =>
      kernel(inputs, attrs as unknown as KernelAttrs[KernelKey], backend as unknown as WebGLBackend),
  });
}
