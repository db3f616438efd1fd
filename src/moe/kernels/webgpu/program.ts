/**
 * How the grouped kernels run WGSL on webgpu: a program object for the backend's runWebGPUProgram, which adds the
 * header (one `array<f32>` or `array<i32>` binding per input, named as in `names`, the output `result`, and a
 * `uniforms` struct with each input's shape, e.g. `uniforms.xShape`, plus the uniforms declared here).
 * Only types come from the webgpu package, so importing the kernels never loads that backend.
 */
import type * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { NativeKernel } from '../adapter.js';
import type { KernelKey } from '../contract.js';

export type { WebGPUBackend };

/** A kernel body on webgpu: its inputs by name (absent optional ones are missing), attributes, the backend. */
export type GpuKernel<K extends KernelKey> = NativeKernel<K, WebGPUBackend>;

/** A scalar the shader reads as `uniforms.<name>`; sizes go here, so one compiled shader serves every shape. */
export interface Uniform {
  name: string;
  type: 'i32' | 'f32';
  value: number;
}
export const i32 = (name: string, value: number): Uniform => ({ name, type: 'i32', value });
export const f32 = (name: string, value: number): Uniform => ({ name, type: 'f32', value });

export interface Program {
  /** Cache key of the compiled shader: it must tell apart every variant whose code differs. */
  key: string;
  inputs: tf.TensorInfo[];
  /** The WGSL names of the inputs, in order. */
  names: string[];
  outputShape: number[];
  dtype: 'float32' | 'int32';
  uniforms: Uniform[];
  /** WGSL: module-scope declarations and `fn main()`. Every input and `uniforms` must be used (auto layout). */
  code: string;
  workgroupSize: [number, number, number];
  /** Workgroups along x, y, z. */
  dispatch: [number, number, number];
}

export function run(backend: WebGPUBackend, p: Program): tf.TensorInfo {
  const program: WebGPUProgram = {
    variableNames: p.names,
    outputShape: p.outputShape,
    shaderKey: `DeepSeekMoE_${p.key}`,
    // A layout with y makes the header call main() without an index argument; the code reads the builtins.
    dispatchLayout: { x: [0], y: [1] },
    dispatch: p.dispatch,
    workgroupSize: p.workgroupSize,
    uniforms: p.uniforms.map((u) => `${u.name} : ${u.type},`).join(' '),
    getUserCode: () => p.code,
  };
  const data = p.uniforms.map((u) => ({ type: u.type === 'i32' ? 'int32' : 'float32', data: [u.value] }));
  return backend.runWebGPUProgram(program, p.inputs, p.dtype, data);
}

const flatWorkgroup = 64;

/**
 * A program with one thread per item, `n` items: `body` sees `index` (0 <= index < uniforms.n). The flat index
 * spans the x and y workgroup counts, as the backend spreads a dispatch past 65535 workgroups over y.
 */
export function runFlat(backend: WebGPUBackend, p: Omit<Program, 'code' | 'workgroupSize' | 'dispatch'> & {
  n: number;
  helpers?: string;
  body: string;
}): tf.TensorInfo {
  const groups = Math.ceil(p.n / flatWorkgroup);
  const [x, y] = groups > 65535 ? [65535, Math.ceil(groups / 65535)] : [groups, 1];
  const code = `${p.helpers ?? ''}
    fn main() {
      let index = i32((workgroupId.y * numWorkgroups.x + workgroupId.x) * ${flatWorkgroup}u + localIndex);
      if (index >= uniforms.n) { return; }
      ${p.body}
    }`;
  return run(backend, {
    ...p, code, uniforms: [i32('n', p.n), ...p.uniforms], workgroupSize: [flatWorkgroup, 1, 1], dispatch: [x, y, 1],
  });
}
