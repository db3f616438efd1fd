/** Timing and memory helpers shared by every bench section: warm-up, then timed runs, medians. */
import * as tf from '@tensorflow/tfjs';

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface Repeats {
  runs: number;
  warmup: number;
}

/**
 * Times `step` after warm-up and returns the median in ms. `step` returns one scalar that depends on every
 * result, and the clock stops after its (awaited) read, so no backend can still be computing.
 */
export async function timeStep(step: () => Promise<tf.Scalar> | tf.Scalar, { runs, warmup }: Repeats): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    // Back to the event loop between runs (untimed): on cpu and wasm every read resolves as a microtask, and
    // without this no timer (the progress bar's redraw) would fire until the suite ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const t0 = performance.now();
    const done = await step();
    await done.data();
    done.dispose();
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return median(times);
}

/** Forward + backward of f w.r.t. every input, reduced to one scalar so a single read forces all of it. */
export function forwardBackward(f: (...xs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    const grads = tf.grads(f)(inputs);
    return grads.map((g) => tf.sum(g)).reduce((a, b) => tf.add(a, b)) as tf.Scalar;
  });
}

/**
 * Peak tensor bytes one `step` allocates above what was already live (tf.profile's per-kernel snapshot of
 * tf.memory().numBytes), after one warm-up call so lazily built constants do not count.
 */
export async function peakBytes(step: () => Promise<tf.Scalar> | tf.Scalar): Promise<number> {
  const warm = await step();
  await warm.data();
  warm.dispose();
  const before = tf.memory().numBytes;
  const info = await tf.profile(async () => {
    const done = await step();
    await done.data();
    done.dispose();
  });
  return Math.max(0, info.peakBytes - before);
}

/** Bytes held by these tensors. */
export const tensorBytes = (ts: (tf.Tensor | null)[]): number =>
  ts.reduce((n, t) => n + (t === null ? 0 : t.size * (t.dtype === 'float32' || t.dtype === 'int32' ? 4 : 1)), 0);

/** A ratio from runs that alternate: the median of the per-run ratios and their spread. */
export interface PairedRatio {
  /** Median over the runs of a_i / b_i. */
  ratio: number;
  /** Interquartile range of the per-run ratios: [25th, 75th percentile]. */
  iqr: [number, number];
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))]!;

/** The median and interquartile range of a_i / b_i over matched runs. */
export function pairedRatio(a: number[], b: number[]): PairedRatio {
  const ratios = a.map((x, i) => x / b[i]!);
  const sorted = [...ratios].sort((x, y) => x - y);
  return { ratio: median(ratios), iqr: [quantile(sorted, 0.25), quantile(sorted, 0.75)] };
}

/** One timed run of `step`, in ms, its result read before the clock stops. */
async function timeOnce(step: () => Promise<tf.Scalar> | tf.Scalar): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  const t0 = performance.now();
  const done = await step();
  await done.data();
  done.dispose();
  return performance.now() - t0;
}

/**
 * Times several steps in runs that alternate, after `warmup` runs of each: run i times every step once, in
 * forward order when i is even and backward when odd, so none always goes first. Returns each step's times, run
 * by run, for `pairedRatio`. These machines drift within minutes: blocks of five runs of each step gave the same
 * code MoE / dense ratios from 0.86 to 2.03; ratios of runs that alternate held within +-0.03.
 */
export async function timeAlternating(
  steps: (() => Promise<tf.Scalar> | tf.Scalar)[], { runs, warmup }: Repeats,
): Promise<number[][]> {
  for (let i = 0; i < warmup; i++) for (const step of steps) await timeOnce(step);
  const times = steps.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    const order = steps.map((_, j) => (i % 2 === 0 ? j : steps.length - 1 - j));
    for (const j of order) times[j]!.push(await timeOnce(steps[j]!));
  }
  return times;
}
