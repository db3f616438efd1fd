/**
 * The routing playground's model: a point p in [-1, 1]^2 goes through h = tanh(p Win + bin) [d], then
 * h + DeepSeekMoE(h), then a linear head to class logits. Small enough to learn a 2-D task in seconds, so the
 * page can paint which routed expert owns each part of the plane while it trains.
 */
import * as tf from '@tensorflow/tfjs';
import {
  createMoEWeights, moeForward, resolveMoEConfig, route, updateExpertBias,
  type DeepSeekMoEConfig, type MoEWeights,
} from 'deepseek-moe-tfjs';
import { ConfigChecker } from 'deepseek-moe-tfjs/config';
import { crossEntropy } from 'deepseek-moe-tfjs/model';
import { AdamW, Rng, gradientStep, variableOf } from 'deepseek-moe-tfjs/train';
import { planeGrid, planeTask, planeTaskNames, type PlaneData, type PlaneTaskName } from './plane.js';

/** A bool mask as 0/1 floats (TF.js 4.22's cast from bool corrupts later reads on webgpu). */
const asFloat = (mask: tf.Tensor) => tf.where(mask, tf.ones(mask.shape), tf.zeros(mask.shape));

/** How the playground keeps experts busy: the expert-level balance loss, V3's selection bias, or nothing. */
export type Balancing = 'auxLoss' | 'bias' | 'none';

/** The layer's fields the playground sets (dModel: the width of the features the router and experts see). */
type LayerFields = 'dModel' | 'nRoutedExperts' | 'nSharedExperts' | 'topK' | 'expertHiddenDim' | 'scoreFunc';

export interface PlaneClassifierConfig extends Pick<DeepSeekMoEConfig, LayerFields> {
  task: PlaneTaskName;
  /** Training points. */
  nPoints: number;
  balancing: Balancing;
  /** alpha1 for 'auxLoss', the bias update speed gamma for 'bias'; unused for 'none'. */
  balanceStrength: number;
  learningRate: number;
  batchSize: number;
  seed: number;
}

export type PlaneClassifierConfigInput = Partial<PlaneClassifierConfig>;

export const planeClassifierDefaults: PlaneClassifierConfig = {
  task: 'spirals', nPoints: 1024, dModel: 16, nRoutedExperts: 8, nSharedExperts: 1, topK: 2, expertHiddenDim: 16,
  scoreFunc: 'sigmoid', balancing: 'bias', balanceStrength: 0.01, learningRate: 0.02, batchSize: 256, seed: 0,
};

/** One training step of the classifier, as plain numbers. */
export interface PlaneStepReport {
  step: number;
  loss: number;
  /** Share of the batch classified right. */
  accuracy: number;
  /** Share of the step's assignments each routed expert took: [E]. */
  expertLoad: number[];
  /** max load / mean load - 1. */
  maxViolation: number;
  routerEntropy: number;
  /** The selection bias the step routed with: [E] (empty unless balancing is 'bias'). */
  bias: number[];
  msPerStep: number;
}

/** The plane on an R x R grid (row-major from the top left), as plain arrays. */
export interface RoutingMap {
  resolution: number;
  /** The routed expert each grid point is sent to first (highest biased score): [R * R]. */
  expert: Uint8Array;
  /** That expert's share of the token's affinities, rescaled so 0 = uniform and 1 = all of it: [R * R]. */
  confidence: Float32Array;
  /** The predicted class: [R * R]. */
  predicted: Uint8Array;
}

const check: ConfigChecker = new ConfigChecker('plane classifier config');

/** Validates the config and derives the layer's. Throws naming the field. */
export function resolvePlaneClassifierConfig(
  input: PlaneClassifierConfigInput,
): { config: PlaneClassifierConfig; moeConfig: DeepSeekMoEConfig } {
  check.fields(input, Object.keys(planeClassifierDefaults));
  const c = { ...planeClassifierDefaults, ...input };
  check.oneOf('task', c.task, planeTaskNames);
  check.oneOf('balancing', c.balancing, ['auxLoss', 'bias', 'none']);
  for (const name of ['nPoints', 'batchSize'] as const) check.int(name, c[name], 1);
  for (const name of ['learningRate', 'balanceStrength'] as const) check.number(name, c[name], { min: 0 });
  check.int('seed', c.seed, 0);
  const moeConfig = resolveMoEConfig({
    dModel: c.dModel, nRoutedExperts: c.nRoutedExperts, nSharedExperts: c.nSharedExperts, topK: c.topK,
    expertHiddenDim: c.expertHiddenDim, scoreFunc: c.scoreFunc, normTopK: c.scoreFunc === 'sigmoid',
    alpha1: c.balancing === 'auxLoss' ? c.balanceStrength : 0,
    auxFreeBias: c.balancing === 'bias', biasUpdateSpeed: c.balancing === 'bias' ? c.balanceStrength : 0,
    // No finite check: the layer then reads nothing back, so no backend ever blocks on a sync read.
    checkFinite: false, seed: c.seed,
  });
  return { config: c, moeConfig };
}

export class PlaneClassifier {
  readonly config: PlaneClassifierConfig;
  readonly moeConfig: DeepSeekMoEConfig;
  readonly data: PlaneData;
  step = 0;
  private readonly inW: tf.Variable; // [2, d]
  private readonly inB: tf.Variable; // [d]
  private readonly outW: tf.Variable; // [d, C]
  private readonly outB: tf.Variable; // [C]
  private readonly moe: MoEWeights;
  /** The training points, uploaded once: [N, 2]. */
  private readonly points: tf.Tensor2D;
  private readonly trainable: Record<string, tf.Variable>;
  private readonly optimizer: AdamW;
  private readonly rng: Rng;

  constructor(input: PlaneClassifierConfigInput = {}) {
    const { config, moeConfig } = resolvePlaneClassifierConfig(input);
    this.config = config;
    this.moeConfig = moeConfig;
    this.data = planeTask(config.task, config.nPoints, config.seed);
    this.points = tf.tensor2d(this.data.points, [config.nPoints, 2]);
    const { dModel: d, seed } = config;
    const C = this.data.nClasses;
    // The input layer is wide (std 2.5) so tanh features vary across the plane and the router has shapes to cut.
    this.inW = variableOf(tf.randomNormal([2, d], 0, 2.5, 'float32', seed + 101), true);
    this.inB = variableOf(tf.randomNormal([d], 0, 1, 'float32', seed + 102), true);
    this.outW = variableOf(tf.randomNormal([d, C], 0, 1 / Math.sqrt(d), 'float32', seed + 103), true);
    this.outB = variableOf(tf.zeros([C]), true);
    this.moe = createMoEWeights(moeConfig);
    this.trainable = { inW: this.inW, inB: this.inB, outW: this.outW, outB: this.outB };
    for (const [name, w] of Object.entries(this.moe)) if (w && name !== 'expertBias') this.trainable[name] = w as tf.Variable;
    this.optimizer = new AdamW(this.trainable, new Set(), 0.9, 0.999, 1e-8);
    this.rng = new Rng(seed + 7);
  }

  /** tanh(p Win + bin): [N, d]. */
  private features(points: tf.Tensor2D): tf.Tensor2D {
    return tf.tanh(tf.add(tf.matMul(points, this.inW), this.inB)) as tf.Tensor2D;
  }

  private logits(h: tf.Tensor2D, training: boolean) {
    const out = moeForward(h, this.moe, this.moeConfig, { training });
    const logits = tf.add(tf.matMul(tf.add(h, out.output) as tf.Tensor2D, this.outW), this.outB) as tf.Tensor2D;
    return { logits, out };
  }

  /** One AdamW step on a random batch; one awaited read (the report). */
  async trainStep(): Promise<PlaneStepReport> {
    const start = performance.now();
    const { batchSize: B, learningRate } = this.config;
    const idx = new Int32Array(B);
    for (let i = 0; i < B; i++) idx[i] = this.rng.int(this.config.nPoints);
    const points = tf.gather(this.points, idx) as tf.Tensor2D; // [B, 2]
    const labels = tf.tensor1d(Array.from(idx, (i) => this.data.labels[i]!), 'int32');
    const step = gradientStep(this.trainable, () => {
      const { logits, out } = this.logits(this.features(points), true);
      const loss = crossEntropy(logits, labels);
      const accuracy = tf.mean(asFloat(tf.equal(tf.argMax(logits, -1), labels)));
      const bias = this.moe.expertBias ? tf.clone(this.moe.expertBias) : tf.zeros([0]);
      const { expertLoad, maxViolation, routerEntropy } = out.stats;
      return {
        loss: tf.add(loss, out.losses.total) as tf.Scalar,
        readouts: { loss, accuracy, expertLoad, maxViolation, routerEntropy, bias },
        kept: { counts: out.expertCounts },
      };
    });
    this.optimizer.apply(this.trainable, step.grads, learningRate, 0, 1);
    tf.dispose(Object.values(step.grads));
    const counts = step.kept.counts as tf.Tensor1D;
    if (this.moe.expertBias) updateExpertBias(this.moe.expertBias as tf.Variable, counts, this.moeConfig.biasUpdateSpeed);
    tf.dispose([points, labels, counts]);
    const values = await step.read();
    this.step += 1;
    return {
      step: this.step,
      loss: values.loss![0]!,
      accuracy: values.accuracy![0]!,
      expertLoad: Array.from(values.expertLoad!),
      maxViolation: values.maxViolation![0]!,
      routerEntropy: values.routerEntropy![0]!,
      bias: Array.from(values.bias!),
      msPerStep: performance.now() - start,
    };
  }

  /** Routes an R x R grid over the plane (inference); one awaited read. */
  async routingMap(resolution: number): Promise<RoutingMap> {
    if (!Number.isInteger(resolution) || resolution < 2 || resolution > 256) {
      throw new Error(`routingMap: expected resolution to be an integer in [2, 256], but got ${resolution}.`);
    }
    const N = resolution * resolution;
    const E = this.moeConfig.nRoutedExperts;
    const points = tf.tensor2d(planeGrid(resolution), [N, 2]);
    const h = tf.tidy(() => this.features(points));
    const packed = tf.tidy(() => {
      const { scores, topKIndices } = route(h, this.moe.routerKernel, this.moe.expertBias, this.moeConfig, false);
      const first = tf.slice(topKIndices, [0, 0], [N, 1]); // [N, 1]
      const p = tf.div(scores, tf.sum(scores, -1, true)); // affinities as shares: [N, E]
      const share = tf.sum(tf.mul(p, asFloat(tf.equal(tf.range(0, E, 1, 'int32'), first))), -1); // [N]
      const confidence = tf.clipByValue(tf.div(tf.sub(share, 1 / E), 1 - 1 / E), 0, 1);
      const predicted = tf.argMax(this.logits(h, false).logits, -1);
      return tf.concat([tf.reshape(tf.cast(first, 'float32'), [N]), confidence, tf.cast(predicted, 'float32')]);
    });
    tf.dispose([points, h]);
    const values = await packed.data();
    packed.dispose();
    return {
      resolution,
      expert: Uint8Array.from(values.subarray(0, N)),
      confidence: Float32Array.from(values.subarray(N, 2 * N)),
      predicted: Uint8Array.from(values.subarray(2 * N)),
    };
  }

  dispose(): void {
    this.optimizer.dispose();
    tf.dispose([this.points, this.inW, this.inB, this.outW, this.outB]);
    for (const w of Object.values(this.moe)) if (w) (w as tf.Tensor).dispose();
  }
}
