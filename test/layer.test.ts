import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeepSeekMoE, deepSeekMoE, expertBiasUpdate, moeLayersOf, type DeepSeekMoELayerArgs } from 'deepseek-moe-tfjs';
import { useBackend, nodeBackends } from './helpers.js';

const layerArgs: DeepSeekMoELayerArgs = {
  dModel: 16, nRoutedExperts: 8, nSharedExperts: 1, topK: 2, expertHiddenDim: 8,
  scoreFunc: 'sigmoid', normTopK: true, auxFreeBias: true, biasUpdateSpeed: 0.01, seqAlpha: 0.001, seed: 1,
};

function tinyModel(args: DeepSeekMoELayerArgs = layerArgs): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 16, inputShape: [6, 16], kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }));
  model.add(deepSeekMoE(args));
  model.add(tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }));
  return model;
}

/** A fixed nonlinear teacher the MoE model can learn. */
function data(n = 64) {
  const x = tf.randomNormal([n, 6, 16], 0, 1, 'float32', 10);
  const teacher = tf.randomNormal([16, 4], 0, 0.5, 'float32', 11);
  const y = tf.tanh(tf.reshape(tf.matMul(tf.reshape(x, [n * 6, 16]), teacher), [n, 6, 4]));
  return { x, y };
}

describe.each(nodeBackends)('DeepSeekMoE layer on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('model.fit lowers the loss, and the bias callback moves the selection bias', async () => {
    const model = tinyModel();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const { x, y } = data();
    const history = await model.fit(x, y, { epochs: 25, batchSize: 16, shuffle: false, verbose: 0, callbacks: [expertBiasUpdate(model)] });
    const loss = history.history.loss as number[];
    expect(loss[loss.length - 1]!).toBeLessThan(loss[0]! * 0.5);
    const moe = moeLayersOf(model)[0]!;
    const bias = await moe.biasValues();
    expect(bias.length).toBe(8);
    expect(bias.some((b) => b !== 0)).toBe(true);
    expect(Math.abs(bias[0]!)).toBeCloseTo(Math.round(Math.abs(bias[0]!) / 0.01) * 0.01, 4); // moves in steps of gamma
    const stats = moe.routingStats!;
    expect(Array.from(await stats.expertLoad.data()).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('model.fit adds the balance losses to the training loss', async () => {
    const { x, y } = data(16);
    const fitLoss = async (alpha1: number) => {
      const model = tinyModel({ ...layerArgs, alpha1, seqAlpha: 0 });
      model.compile({ optimizer: tf.train.sgd(0), loss: 'meanSquaredError' });
      const h = await model.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0 });
      return (h.history.loss as number[])[0]!;
    };
    const without = await fitLoss(0);
    const withLoss = await fitLoss(1);
    // sum f_i P_i is near 1 for a fresh router; with alpha1 = 1 the loss grows by about that much.
    expect(withLoss - without).toBeGreaterThan(0.8);
    expect(withLoss - without).toBeLessThan(2);
  });

  it('save and load round-trip exactly: weights, selection bias, config and outputs', async () => {
    const model = tinyModel();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const { x, y } = data(16);
    await model.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, callbacks: [expertBiasUpdate(model)] });
    let saved: tf.io.ModelArtifacts | null = null;
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    const original = moeLayersOf(model)[0]!;
    const restored = moeLayersOf(loaded)[0]!;
    expect(restored).toBeInstanceOf(DeepSeekMoE);
    expect(restored.moeConfig).toEqual(original.moeConfig);
    expect(Array.from(await restored.biasValues())).toEqual(Array.from(await original.biasValues()));
    expect((await original.biasValues()).some((b) => b !== 0)).toBe(true);
    const a = await (model.predict(x) as tf.Tensor).data();
    const b = await (loaded.predict(x) as tf.Tensor).data();
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('getConfig carries every field and rebuilds the same layer', () => {
    const layer = deepSeekMoE({ ...layerArgs, name: 'moe_1' });
    const cfg = layer.getConfig();
    expect(cfg).toMatchObject({ name: 'moe_1', nRoutedExperts: 8, topK: 2, scoreFunc: 'sigmoid', biasUpdateSpeed: 0.01 });
    const rebuilt = new DeepSeekMoE(cfg as unknown as DeepSeekMoELayerArgs);
    expect(rebuilt.moeConfig).toEqual(layer.moeConfig);
  });

  it('a layer saved before expertCompute was retired (its getConfig wrote it) still rebuilds', () => {
    const layer = deepSeekMoE({ ...layerArgs, name: 'moe_old' });
    const saved = { ...layer.getConfig(), expertCompute: 'grouped', dispatch: 'dense' };
    const info = console.info;
    console.info = () => {};
    try {
      const rebuilt = new DeepSeekMoE(saved as unknown as DeepSeekMoELayerArgs);
      expect(rebuilt.moeConfig).toEqual({ ...layer.moeConfig, dispatch: 'dropless' });
    } finally {
      console.info = info;
    }
  });

  it('accepts [tokens, d] as well as [batch, seq, d] and keeps the shape', () => {
    const layer = deepSeekMoE(layerArgs);
    expect((layer.apply(tf.ones([5, 16])) as tf.Tensor).shape).toEqual([5, 16]);
    expect((layer.apply(tf.ones([2, 3, 16])) as tf.Tensor).shape).toEqual([2, 3, 16]);
  });

  it('tf.memory().numTensors is unchanged across 20 training steps (custom loop with bias updates)', async () => {
    const model = tinyModel({ ...layerArgs, alpha1: 0.01, zLossCoef: 0.001 });
    const moe = moeLayersOf(model)[0]!;
    const optimizer = tf.train.adam(0.01);
    const { x, y } = data(8);
    const step = () => {
      optimizer.minimize(() => {
        const pred = model.apply(x, { training: true }) as tf.Tensor;
        return tf.add(tf.losses.meanSquaredError(y, pred), moe.balanceLoss!) as tf.Scalar;
      });
      moe.updateBias();
    };
    step(); // the optimizer creates its slots on the first step
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) step();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('tf.memory().numTensors is unchanged across 20 calls outside any tidy (inference and training)', () => {
    const layer = deepSeekMoE(layerArgs);
    const x = tf.randomNormal([2, 6, 16], 0, 1, 'float32', 1);
    (layer.apply(x, { training: true }) as tf.Tensor).dispose(); // builds the weights; keeps stats and load
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) (layer.apply(x, { training: i % 2 === 0 }) as tf.Tensor).dispose();
    layer.updateBias();
    (layer.apply(x, { training: true }) as tf.Tensor).dispose(); // pending load held again, as before
    expect(tf.memory().numTensors).toBe(before);
  });

  it('tf.memory().numTensors is unchanged across 20 model.fit batches', async () => {
    const model = tinyModel();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const { x, y } = data(8);
    const callbacks = [expertBiasUpdate(model)];
    await model.fit(x, y, { epochs: 1, batchSize: 8, verbose: 0, callbacks });
    const before = tf.memory().numTensors;
    await model.fit(x, y, { epochs: 20, batchSize: 8, verbose: 0, callbacks });
    expect(tf.memory().numTensors).toBe(before);
  });
});
