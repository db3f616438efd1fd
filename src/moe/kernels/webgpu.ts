/**
 * The kernel contract on webgpu: WGSL programs run through the backend's runWebGPUProgram (webgpu/*.ts). One
 * program per kernel, except the routing plan and expertsUpGradX (two each). Every kernel is native, so the host
 * reads (a canvas round trip on webgpu) are never taken.
 */
import { hostAccess, type BackendAdapter } from './adapter.js';
import { balanceKernels } from './webgpu/balance.js';
import { combineKernels } from './webgpu/combine.js';
import { expertKernels } from './webgpu/experts.js';
import type { WebGPUBackend } from './webgpu/program.js';
import { routingKernels } from './webgpu/routing.js';

export const webgpuAdapter: BackendAdapter<WebGPUBackend> = {
  backendName: 'webgpu',
  kernels: { ...routingKernels, ...expertKernels, ...combineKernels, ...balanceKernels },
  ...hostAccess,
};
