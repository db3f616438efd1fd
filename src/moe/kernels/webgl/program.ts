/**
 * What every webgl kernel shares: the slice of the webgl backend it uses, the program it hands over, views of its
 * inputs and the plan's reads. The backend turns a program into a fragment shader (one fragment per output
 * element, or per 2x2 block when the output is packed) with a sampler `getName(...)` per input and `setOutput(v)`.
 */
import type * as tf from '@tensorflow/tfjs';
import type { NativeKernel } from '../adapter.js';
import type { KernelKey } from '../contract.js';

/** A program as `runWebGLProgram` takes it (the backend's GPGPUProgram, without the fields we leave unset). */
export interface GLProgram {
  variableNames: string[];
  outputShape: number[];
  /** The fragment shader's body; also the program cache's key, so every constant baked into it belongs here. */
  userCode: string;
  packedInputs?: boolean;
  packedOutput?: boolean;
}

/** The slice of the webgl backend (MathBackendWebGL) our kernels use. */
export interface WebGLBackend {
  runWebGLProgram(program: GLProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType): tf.TensorInfo;
  disposeIntermediateTensorInfo(info: tf.TensorInfo): void;
}

export type GLKernel<K extends KernelKey> = NativeKernel<K, WebGLBackend>;

/**
 * The same tensor seen as 1-D, for random access by a flat index (ids [T, K] by assignment a). Unpacked textures
 * are row-major, so this is free; the backend repacks a packed one, as its own reshape does.
 */
export const flat = (t: tf.TensorInfo): tf.TensorInfo => ({ ...t, shape: [t.shape.reduce((a, b) => a * b, 1)] });

/** The sampler TF.js generates for an input: 'w1' is read with getW1(...). */
const samplerOf = (name: string) => 'get' + name[0]!.toUpperCase() + name.slice(1);

/** A GLSL float literal that reads back as the same float32. */
export const glFloat = (v: number) => v.toPrecision(9);

/**
 * Integer reads of the plan [2A + E + 1] in a packed program (int32 values live exactly in float textures).
 * Texel j of a packed 1-D tensor holds entries 2j and 2j + 1 in x and y. Rows past A count as empty, so a 2-row
 * block at an odd A's end reads nothing.
 */
export const planReads = (A: number) => `
  float entry(vec4 texel, int i) { return (i & 1) == 0 ? texel.x : texel.y; }
  int planAt(int i) { return int(entry(getPlan(i), i)); }
  // Row of assignment a, or ${A} when dropped.
  int rowOf(int a) { return planAt(a); }
  // Assignment in row r, or ${A} when the row is empty.
  int assignmentIn(int r) { return r < ${A} ? planAt(${A} + r) : ${A}; }
  int startOf(int e) { return planAt(${2 * A} + e); }
`;
/** The expert of assignment a, from ids seen flat [A] (packed). */
export const idReads = 'int idOf(int a) { return int(entry(getIds(a), a)); }';

/** A packed [B, R, C] input of a program: its name, the tensor to pass, and how to sample texel (b, r, c). */
export interface Stacked {
  name: string;
  input: tf.TensorInfo;
  at: (b: string, r: string, c: string) => string;
}

/**
 * A packed [B, R, C] input, seen as the 2-D [B R, C] when R is even: the same texels (each batch's rows pair up
 * evenly), sampled without the 3-D sampler's integer divisions, which made the expert matmuls 1.7x slower on
 * SwiftShader. With R odd a texel would straddle two batches, so the 3-D sampler stays.
 */
export function stacked(name: string, t: tf.TensorInfo): Stacked {
  const [B, R, C] = t.shape as [number, number, number];
  const get = samplerOf(name);
  return R % 2 === 0
    ? { name, input: { ...t, shape: [B * R, C] }, at: (b, r, c) => `${get}((${b}) * ${R} + ${r}, ${c})` }
    : { name, input: t, at: (b, r, c) => `${get}(${b}, ${r}, ${c})` };
}
