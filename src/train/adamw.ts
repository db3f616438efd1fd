import * as tf from '@tensorflow/tfjs';

/** A variable holding `value`, which is then disposed (a variable keeps its own reference to the data). */
export function variableOf(value: tf.Tensor, trainable = false): tf.Variable {
  const v = tf.variable(value, trainable);
  value.dispose();
  return v;
}

/** Adam with decoupled weight decay (Loshchilov and Hutter), on named variables; its state is plain tensors. */
export class AdamW {
  /** Updates applied so far (the bias corrections use it). */
  step = 0;
  readonly m: Record<string, tf.Variable> = {};
  readonly v: Record<string, tf.Variable> = {};

  constructor(
    weights: Record<string, tf.Variable>,
    readonly decays: Set<string>,
    readonly beta1: number,
    readonly beta2: number,
    readonly epsilon: number,
  ) {
    for (const [name, w] of Object.entries(weights)) {
      this.m[name] = variableOf(tf.zerosLike(w));
      this.v[name] = variableOf(tf.zerosLike(w));
    }
  }

  /** w -= lr (mHat / (sqrt(vHat) + eps) + wd w), with gradients scaled by gradScale (clipping). */
  apply(weights: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number, weightDecay: number, gradScale: number): void {
    this.step += 1;
    const { beta1: b1, beta2: b2, epsilon } = this;
    const c1 = 1 - Math.pow(b1, this.step);
    const c2 = 1 - Math.pow(b2, this.step);
    tf.tidy(() => {
      for (const [name, g0] of Object.entries(grads)) {
        const w = weights[name]!;
        const g = gradScale === 1 ? g0 : tf.mul(g0, gradScale);
        const m = tf.add(tf.mul(this.m[name]!, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[name]!, b2), tf.mul(tf.square(g), 1 - b2));
        this.m[name]!.assign(m);
        this.v[name]!.assign(v);
        let update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        if (weightDecay > 0 && this.decays.has(name)) update = tf.add(update, tf.mul(w, weightDecay));
        w.assign(tf.sub(w, tf.mul(update, lr)));
      }
    });
  }

  dispose(): void {
    for (const t of [...Object.values(this.m), ...Object.values(this.v)]) t.dispose();
  }
}
