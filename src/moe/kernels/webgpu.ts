/**
 * The grouped kernels on webgpu: WGSL programs run through the backend's runWebGPUProgram (webgpu/*.ts). One
 * program per kernel, except the routing plan and expertsUpGradX (two each).
 */
import * as tf from '@tensorflow/tfjs';
import { kernelInputs, kernelNames, type KernelKey } from './spec.js';
import { balanceKernels } from './webgpu/balance.js';
import { combineKernels } from './webgpu/combine.js';
import { expertKernels } from './webgpu/experts.js';
import type { GpuKernel, WebGPUBackend } from './webgpu/program.js';
import { routingKernels } from './webgpu/routing.js';

const kernels: { [K in KernelKey]: GpuKernel<K> } = {
  ...routingKernels, ...expertKernels, ...combineKernels, ...balanceKernels,
};

for (const key of Object.keys(kernels) as KernelKey[]) {
  const required = kernelInputs[key].filter((name) => !name.endsWith('?'));
  tf.registerKernel({
    kernelName: kernelNames[key],
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      for (const name of required) {
        if (!inputs[name]) throw new Error(`${kernelNames[key]}: expected input '${name}', but got none.`);
      }
      const run = kernels[key] as GpuKernel<KernelKey>;
      return run(inputs as Record<string, tf.TensorInfo>, attrs as never, backend as WebGPUBackend);
    },
  });
}
