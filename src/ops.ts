import * as tf from '@tensorflow/tfjs';

/**
 * A tensor on the same data as `x` that the gradient tape does not see (torch's `.detach()`): no copy, no tape
 * node, so ops built on it (TopK, which has no gradient) are never reached by backprop. The backend's own
 * reference count is raised first, as TF.js kernels do when they share data (reshape); without it, disposing
 * either tensor frees the buffer under the other one (webgpu then hands it to the next op).
 */
export function stopGradient<R extends tf.Rank>(x: tf.Tensor<R>): tf.Tensor<R> {
  tf.backend().incRef(x.dataId);
  return tf.engine().makeTensorFromDataId(x.dataId, x.shape, x.dtype) as tf.Tensor<R>;
}

/** SiLU (swish): a * sigmoid(a). */
export function silu<T extends tf.Tensor>(a: T): T {
  return tf.mul(a, tf.sigmoid(a));
}

/** int32 range scaled by `step`: [0, step, 2 step, ...], `n` entries. */
export function rangeInt(n: number, step = 1): tf.Tensor1D {
  return tf.range(0, n * step, step, 'int32');
}

/**
 * 1.0 where `mask` is true, else 0.0. Not `tf.cast(mask, 'float32')`: on webgpu (TF.js 4.22) a cast from bool
 * hands later transposes and reductions the comparison's input buffer instead of the mask.
 */
export function maskToFloat(mask: tf.Tensor): tf.Tensor {
  return tf.where(mask, tf.ones(mask.shape), tf.zeros(mask.shape));
}

/**
 * A one-hot float mask [..., depth] from int32 indices. TF.js 4.22 gets a different form wrong on each side:
 * on wasm the float32 form is wrong, so it is built in int32 and cast (50x faster there than a broadcast
 * equality); on webgpu the int32 form holds float bit patterns, so the float32 form is used everywhere else.
 * tf.oneHot rejects depth 1, where every index is 0 and the mask is all ones.
 */
export function oneHotFloat(indices: tf.Tensor, depth: number): tf.Tensor {
  if (depth === 1) return tf.ones([...indices.shape, 1]);
  if (tf.getBackend() === 'wasm') return tf.cast(tf.oneHot(indices, depth, 1, 0, 'int32'), 'float32');
  return tf.oneHot(indices, depth, 1, 0, 'float32');
}

type Save = (tensors: tf.Tensor[]) => void;
type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

/**
 * tf.customGrad with typed tensor inputs, `save` second. Tensors the gradient needs must go through `save`:
 * a closure-captured tensor is disposed before backprop runs.
 */
export function customOp(
  f: (inputs: tf.Tensor[], save: Save) => { value: tf.Tensor; gradFunc: GradFunc },
): (...inputs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as Save;
    return f(args as tf.Tensor[], save);
  }) as Parameters<typeof tf.customGrad>[0]);
}
