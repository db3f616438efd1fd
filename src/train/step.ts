/**
 * One training step's gradient and its read-back, shared by every training loop here (the trainer, the
 * playground's classifier): the gradients of a loss keyed by the caller's names (the checkpoint names, not the
 * engine's variable names), the global gradient norm, and every value the loop reports packed into one tensor
 * that one awaited read brings back, split by name. No offsets are counted by hand.
 */
import * as tf from '@tensorflow/tfjs';

/** What the function given to gradientStep returns. */
export interface StepOutputs {
  /** The loss to differentiate. */
  loss: tf.Scalar;
  /** Values to report, each of any shape: read back together by GradientStep.read(). */
  readouts?: Record<string, tf.Tensor>;
  /** Tensors the loop needs after the step without reading them (the expert counts for the bias update). */
  kept?: Record<string, tf.Tensor>;
}

/** What gradientStep returns: the gradients, the kept tensors, and the one read of the readouts. */
export interface GradientStep {
  /** d loss / d weight, keyed as the weights were; the caller applies and disposes them. */
  grads: Record<string, tf.Tensor>;
  kept: Record<string, tf.Tensor>;
  /**
   * The readouts and 'gradNorm' (the global gradient norm, before any clipping), by name, flattened: one awaited
   * read. Call it once; it frees the packed tensor.
   */
  read(): Promise<Record<string, Float32Array>>;
}

/** Runs `f` under the tape and returns the gradients of its loss with respect to `weights` (by their keys). */
export function gradientStep(weights: Record<string, tf.Variable>, f: () => StepOutputs): GradientStep {
  const names = Object.keys(weights);
  if (names.length === 0) throw new Error('gradientStep: expected at least one trainable weight, but got none.');
  let readouts: Record<string, tf.Tensor> = {};
  let kept: Record<string, tf.Tensor> = {};
  const differentiate = () => {
    const { value, grads: byVariable } = tf.variableGrads(() => {
      const out = f();
      readouts = out.readouts ?? {};
      kept = out.kept ?? {};
      for (const t of [...Object.values(readouts), ...Object.values(kept)]) tf.keep(t);
      return out.loss;
    }, names.map((n) => weights[n]!));
    if (![...Object.values(readouts), ...Object.values(kept)].includes(value)) value.dispose(); // the loss may be a readout
    const grads: Record<string, tf.Tensor> = {};
    for (const name of names) {
      const g = byVariable[weights[name]!.name];
      if (!g) throw new Error(`gradientStep: expected a gradient for weight '${name}', but the loss does not depend on it.`);
      grads[name] = g;
    }
    // Chained adds: addN sums wrongly on webgpu (TF.js 4.22).
    const gradNorm = tf.sqrt(names.reduce((acc: tf.Tensor, n) => tf.add(acc, tf.sum(tf.square(grads[n]!))), tf.scalar(0)));
    const packed = tf.concat([gradNorm, ...Object.values(readouts)].map((t) => tf.reshape(t, [-1])));
    return { packed, grads };
  };
  let built: ReturnType<typeof differentiate>;
  try {
    built = tf.tidy(differentiate);
  } catch (e) {
    tf.dispose(Object.values(kept)); // kept out of the tape's scope: freed here when the step fails
    throw e;
  } finally {
    tf.dispose(Object.values(readouts)); // packed (or given up)
  }
  const { packed, grads } = built;
  const layout = [['gradNorm', 1] as const, ...Object.entries(readouts).map(([n, t]) => [n, t.size] as const)];
  return {
    grads,
    kept,
    async read() {
      try {
        const values = (await packed.data()) as Float32Array;
        const out: Record<string, Float32Array> = {};
        let offset = 0;
        for (const [name, size] of layout) {
          out[name] = values.subarray(offset, offset + size);
          offset += size;
        }
        return out;
      } finally {
        packed.dispose();
      }
    },
  };
}
