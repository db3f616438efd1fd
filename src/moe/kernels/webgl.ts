/**
 * The kernel contract on webgl: GLSL programs run through the backend's runWebGLProgram (webgl/*.ts). A fragment
 * shader writes one output element (or one 2x2 block), so every kernel is a gather; the plan's two inverse maps
 * let each output find its inputs without scatters. The routing and combine kernels are plain per-element loops;
 * the expert matmuls are packed programs (webgl/rows.ts) near tf.matMul's speed. Every kernel is native.
 */
import { hostAccess, type BackendAdapter } from './adapter.js';
import { affinityBalance, affinityBalanceGrad, routerEntropy } from './webgl/balance.js';
import { combine, combineGrad, combineGradGates } from './webgl/combine.js';
import {
  expertsDown, expertsDownGradH, expertsDownGradW, expertsUp, expertsUpGradW, expertsUpGradX,
} from './webgl/experts.js';
import type { WebGLBackend } from './webgl/program.js';
import { countExperts, gateWeights, gateWeightsGrad, routingPlan, selectExperts } from './webgl/routing.js';

export const webglAdapter: BackendAdapter<WebGLBackend> = {
  backendName: 'webgl',
  kernels: {
    selectExperts, countExperts, routingPlan, gateWeights, gateWeightsGrad,
    expertsUp, expertsUpGradX, expertsUpGradW, expertsDown, expertsDownGradH, expertsDownGradW,
    combine, combineGrad, combineGradGates, routerEntropy, affinityBalance, affinityBalanceGrad,
  },
  ...hostAccess,
};
