import * as tf from '@tensorflow/tfjs';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { deepSeekMoE, initBackend, type BackendName, type DeepSeekMoE } from '../src/index.js';
import { drawBars, drawHeatmap, drawLine } from './charts.js';

const wasmPaths = {
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
};

// The task: 4 domains (clusters of inputs), each with its own nonlinear target. d = 16, tokens per step 256.
const nDomains = 4;
const dModel = 16;
const tokensPerDomain = 64;
const nRoutedExperts = 16;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $<HTMLSpanElement>('status');

let running = false;
let stopRequested = false;

function makeDomains() {
  const centres = tf.randomNormal([nDomains, dModel], 0, 2, 'float32', 1);
  const targets = tf.randomNormal([nDomains, dModel, dModel], 0, 1 / Math.sqrt(dModel), 'float32', 2);
  /** A batch with tokensPerDomain tokens of each domain: x [D * n, d], y [D * n, d]. */
  const batch = (seed: number) =>
    tf.tidy(() => {
      const noise = tf.randomNormal([nDomains, tokensPerDomain, dModel], 0, 1, 'float32', seed);
      const x = tf.add(noise, tf.expandDims(centres, 1)); // [D, n, d]
      const y = tf.tanh(tf.matMul(x, targets)); // per-domain target
      return { x: tf.reshape(x, [-1, dModel]), y: tf.reshape(y, [-1, dModel]) };
    });
  return { batch };
}

function buildModel(useBias: boolean) {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: dModel, inputShape: [dModel], kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }));
  const moe = deepSeekMoE({
    dModel, nRoutedExperts, nSharedExperts: 1, topK: 2, expertHiddenDim: 16,
    scoreFunc: 'sigmoid', normTopK: true, auxFreeBias: useBias, biasUpdateSpeed: 0.01, seqAlpha: 0.0001,
    // Capacity dispatch with a generous factor: no GPU-to-CPU read in the step, and dropped tokens are shown.
    dispatch: 'capacity', capacityFactor: 2, checkFinite: false, seed: 4,
  });
  model.add(moe);
  model.add(tf.layers.dense({ units: dModel, kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }));
  return { model, moe: moe as DeepSeekMoE };
}

async function train() {
  const preference = ($<HTMLSelectElement>('backend').value || undefined) as BackendName | undefined;
  status.textContent = 'starting backend…';
  const backend = await initBackend(preference, { wasmPaths });
  const { batch } = makeDomains();
  const { model, moe } = buildModel($<HTMLInputElement>('bias').checked);
  const optimizer = tf.train.adam(0.01);
  const losses: number[] = [];
  const started = performance.now();
  running = true;
  for (let step = 1; !stopRequested; step++) {
    const { x, y } = batch(step);
    const loss = optimizer.minimize(() => {
      const pred = model.apply(x, { training: true }) as tf.Tensor;
      return tf.add(tf.losses.meanSquaredError(y, pred), moe.balanceLoss ?? 0) as tf.Scalar;
    }, true)!;
    moe.updateBias();
    tf.dispose([x, y]);
    if (step % 10 === 0) {
      const lossValue = (await loss.data())[0]!;
      losses.push(lossValue);
      await render(step, lossValue, losses, moe, model, batch, backend, started);
    }
    loss.dispose();
    await tf.nextFrame();
  }
  running = false;
  status.textContent = `paused (${backend})`;
}

async function render(
  step: number, loss: number, losses: number[], moe: DeepSeekMoE, model: tf.Sequential,
  batch: (seed: number) => { x: tf.Tensor; y: tf.Tensor }, backend: string, started: number,
) {
  const stats = moe.routingStats!;
  const [load, dropped, violation, entropy] = await Promise.all([
    stats.expertLoad.data(), stats.droppedFraction.data(), stats.maxViolation.data(), stats.routerEntropy.data(),
  ]);
  const bias = moe.moeConfig.auxFreeBias ? await moe.biasValues() : new Float32Array(nRoutedExperts);
  // Domain x expert: route each domain's tokens alone (inference mode) and read the layer's load.
  const { x, y } = batch(0);
  y.dispose();
  const heat: number[][] = [];
  for (let dom = 0; dom < nDomains; dom++) {
    const xs = tf.slice(x, [dom * tokensPerDomain, 0], [tokensPerDomain, dModel]);
    tf.tidy(() => {
      model.apply(xs, { training: false });
    });
    heat.push(Array.from(await moe.routingStats!.expertLoad.data()));
    xs.dispose();
  }
  x.dispose();
  drawLine($<HTMLCanvasElement>('loss'), losses);
  drawBars($<HTMLCanvasElement>('load'), Array.from(load), Array.from(bias));
  drawHeatmap($<HTMLCanvasElement>('heat'), heat);
  const seconds = (performance.now() - started) / 1000;
  $<HTMLPreElement>('numbers').textContent = [
    `backend          ${backend}`,
    `step             ${step}  (${(step / seconds).toFixed(1)} steps/s)`,
    `loss             ${loss.toFixed(4)}`,
    `max violation    ${violation[0]!.toFixed(3)}  (max load / mean load - 1)`,
    `dropped          ${(100 * dropped[0]!).toFixed(2)} %`,
    `router entropy   ${entropy[0]!.toFixed(3)} nats`,
    `tensors          ${tf.memory().numTensors}`,
  ].join('\n');
  status.textContent = `training on ${backend}`;
}

$<HTMLButtonElement>('start').addEventListener('click', () => {
  if (running) return;
  stopRequested = false;
  $<HTMLButtonElement>('start').disabled = true;
  $<HTMLButtonElement>('pause').disabled = false;
  $<HTMLSelectElement>('backend').disabled = true;
  train().catch((e: unknown) => {
    status.textContent = `error: ${(e as Error).message}`;
    running = false;
  });
});
$<HTMLButtonElement>('pause').addEventListener('click', () => {
  stopRequested = true;
  $<HTMLButtonElement>('pause').disabled = true;
  $<HTMLButtonElement>('start').disabled = false;
  $<HTMLSelectElement>('backend').disabled = false;
});
