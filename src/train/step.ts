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

/**
 * Runs `f` under the tape and returns the gradients of its loss with respect to `weights` (by their keys). Given
 * several functions (gradient accumulation's micro-batches, each returning its share of the loss), it runs them
 * one at a time and sums their gradients; a readout is averaged over the micro-batches that report it (they are
 * of equal size), a kept tensor summed, and the gradient norm is the sum's.
 */
export function gradientStep(
  weights: Record<string, tf.Variable>, f: (() => StepOutputs) | (() => StepOutputs)[],
): GradientStep {
  const names = Object.keys(weights);
  if (names.length === 0) throw new Error('gradientStep: expected at least one trainable weight, but got none.');
  const micro = Array.isArray(f) ? f : [f];
  const readouts = new Map<string, tf.Tensor[]>();
  const kept = new Map<string, tf.Tensor[]>();
  const held = () => [...readouts.values(), ...kept.values()].flat();
  let grads: Record<string, tf.Tensor> | null = null;
  const differentiate = (g: () => StepOutputs) => {
    let outputs: tf.Tensor[] = [];
    const { value, grads: byVariable } = tf.variableGrads(() => {
      const out = g();
      for (const [into, from] of [[readouts, out.readouts], [kept, out.kept]] as const) {
        for (const [name, t] of Object.entries(from ?? {})) into.set(name, [...(into.get(name) ?? []), tf.keep(t)]);
      }
      outputs = [...Object.values(out.readouts ?? {}), ...Object.values(out.kept ?? {})];
      return out.loss;
    }, names.map((n) => weights[n]!));
    if (!outputs.includes(value)) value.dispose(); // the loss may be a readout
    const next: Record<string, tf.Tensor> = {};
    for (const name of names) {
      const d = byVariable[weights[name]!.name];
      if (!d) {
        throw new Error(`gradientStep: expected a gradient for weight '${name}', but the loss does not depend on it.`);
      }
      next[name] = grads ? tf.add(grads[name]!, d) : d;
    }
    return next;
  };
  const sum = (ts: tf.Tensor[]) => ts.reduce((a, b) => tf.add(a, b)); // chained adds: addN sums wrongly on webgpu
  let packed: tf.Tensor;
  let summedKept: Record<string, tf.Tensor>;
  try {
    for (const g of micro) {
      const next: Record<string, tf.Tensor> = tf.tidy(() => differentiate(g));
      if (grads) tf.dispose(Object.values(grads));
      grads = next;
    }
    const total = grads!;
    packed = tf.tidy(() => {
      const gradNorm = tf.sqrt(
        names.reduce((acc: tf.Tensor, n) => tf.add(acc, tf.sum(tf.square(total[n]!))), tf.scalar(0)),
      );
      const means = [...readouts.values()].map((ts) => (ts.length === 1 ? ts[0]! : tf.div(sum(ts), ts.length)));
      return tf.concat([gradNorm, ...means].map((t) => tf.reshape(t, [-1])));
    });
    summedKept = Object.fromEntries(
      [...kept].map(([name, ts]) => [name, ts.length === 1 ? ts[0]! : tf.tidy(() => sum(ts))]),
    );
  } catch (e) {
    // kept out of the tape's scope: freed here when the step fails
    tf.dispose([...held(), ...Object.values(grads ?? {})]);
    throw e;
  }
  tf.dispose([...readouts.values()].flat()); // packed
  for (const ts of kept.values()) if (ts.length > 1) tf.dispose(ts); // summed
  const layout = [['gradNorm', 1] as const, ...[...readouts].map(([n, ts]) => [n, ts[0]!.size] as const)];
  return {
    grads: grads!,
    kept: summedKept,
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
