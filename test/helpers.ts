import * as tf from '@tensorflow/tfjs';
import {
  backendAvailability, initBackend, moeForward, moeWeightSpecs, resolveMoEConfig, type BackendName,
  type DeepSeekMoEConfig, type MoEConfigInput, type MoEForwardOptions, type MoEOutput, type MoEWeights,
} from 'deepseek-moe-tfjs';

import { oracleForward, oracleSlots, type OracleOptions } from '../tools/oracle/forward.js';

export const inBrowser = typeof window !== 'undefined';

/**
 * Whether tfjs-node's native backend loads here (scripts/tfjs-node-from-wheel.sh installs it where the prebuilt
 * download cannot). CI sets DEEPSEEK_MOE_REQUIRE_TFJS_NODE=1, so there its tests cannot quietly drop out.
 */
export const hasTensorflow = !inBrowser && (await backendAvailability('tensorflow')).available;
if (!inBrowser && !hasTensorflow && process.env.DEEPSEEK_MOE_REQUIRE_TFJS_NODE === '1') {
  throw new Error(`tfjs-node: expected it to load (DEEPSEEK_MOE_REQUIRE_TFJS_NODE=1), but: ${
    (await backendAvailability('tensorflow')).reason}. Run scripts/tfjs-node-from-wheel.sh.`);
}

/** The backends of Node: cpu, wasm, and tfjs-node's 'tensorflow' when it is installed. */
export const nodeBackends: BackendName[] = ['cpu', 'wasm', ...(hasTensorflow ? (['tensorflow'] as const) : [])];

/** The numeric tests run on cpu, wasm and (when installed) tfjs-node in Node, and on webgl and webgpu in Chromium. */
export const backendsUnderTest: BackendName[] = inBrowser
  ? ['webgl', 'webgpu']
  : nodeBackends;

/**
 * Synchronous reads on webgpu go through a canvas that loses the device on SwiftShader, so there the tests take
 * the sync-free route a custom loop would: no finite check in the forward, and the oracle's dropless slots
 * measured ahead.
 */
export const syncReads = (backend: BackendName) => backend !== 'webgpu';

/**
 * Config and forward options for a backend: the default, or the sync-free one on webgpu; `oracle` holds the
 * options of the oracle's forward (tools/oracle) on the same input.
 */
export async function forBackend(backend: BackendName, input: MoEConfigInput, w: MoEWeights, x: tf.Tensor) {
  if (syncReads(backend)) return { config: resolveMoEConfig(input), options: {}, oracle: {} };
  const c = resolveMoEConfig({ ...input, checkFinite: false });
  const slots = c.dispatch === 'dropless' ? await oracleSlots(x, w, c) : undefined;
  return { config: c, options: {}, oracle: slots === undefined ? {} : { slots } };
}

export async function useBackend(name: BackendName): Promise<void> {
  await initBackend(name);
}

/** Deterministic weights (seeded in JS, so every backend sees the same numbers). Bias, when on, is random too. */
export function seededWeights(config: DeepSeekMoEConfig, seed = 1, biasScale = 0.05): MoEWeights {
  const w: Record<string, tf.Tensor | null> = { sharedW1: null, sharedW3: null, sharedW2: null, sharedGate: null, expertBias: null };
  moeWeightSpecs(config).forEach((spec, i) => {
    const std = spec.initStd === 0 ? biasScale : spec.initStd;
    w[spec.name] = tf.randomNormal(spec.shape, 0, std, 'float32', seed * 100 + i);
  });
  return w as unknown as MoEWeights;
}

export function config(input: MoEConfigInput): DeepSeekMoEConfig {
  return resolveMoEConfig(input);
}

/** Weight names with gradients, in a fixed order (the selection bias has none). */
function trainableNames(w: MoEWeights): (keyof MoEWeights)[] {
  return (Object.keys(w) as (keyof MoEWeights)[]).filter((k) => w[k] !== null && k !== 'expertBias');
}

/** A forward of the layer: the library's moeForward, or the oracle's (tools/oracle) with its options. */
export type Forward = (x: tf.Tensor, w: MoEWeights, c: DeepSeekMoEConfig, options: { training?: boolean }) => MoEOutput;
export const libraryForward = (options: MoEForwardOptions = {}): Forward =>
  (x, w, c, o) => moeForward(x, w, c, { ...options, ...o });
export const oracle = (options: OracleOptions = {}): Forward => (x, w, c, o) => oracleForward(x, w, c, { ...options, ...o });

/**
 * The loss sum(output * probe) + balance losses as a function of [x, ...trainable weights], for tf.grads;
 * `inputs(x)` lists those tensors in order, `names` the weights'. `forward`: the library's by default.
 */
export function probeLoss(
  w: MoEWeights, c: DeepSeekMoEConfig, options: MoEForwardOptions, probe: tf.Tensor, forward = libraryForward(options),
) {
  const names = trainableNames(w);
  const f = (...args: tf.Tensor[]) => {
    const weights = { ...w } as Record<string, tf.Tensor | null>;
    names.forEach((n, i) => (weights[n] = args[i + 1]!));
    // Training: capacity drops apply (evaluation runs dropless).
    const { output, losses } = forward(args[0]!, weights as unknown as MoEWeights, c, { training: true });
    return tf.add(tf.sum(tf.mul(output, probe)), losses.total) as tf.Scalar;
  };
  return { names, f, inputs: (x: tf.Tensor) => [x, ...names.map((n) => w[n]!)] };
}

export async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const v = (await d.data())[0]!;
  d.dispose();
  return v;
}

export async function maxAbs(a: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(a)));
  const v = (await d.data())[0]!;
  d.dispose();
  return v;
}

/** |a - b| relative to the larger magnitude, floored at 1 (float32 sums of a few hundred terms). */
export async function relDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const scale = Math.max(1, await maxAbs(a), await maxAbs(b));
  return (await maxAbsDiff(a, b)) / scale;
}
