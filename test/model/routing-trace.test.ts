/**
 * traceRouting against a hand computation: with the attention's output projection zeroed, a byte's MoE input is
 * rmsNorm(its embedding), so its experts, gates and shared share follow from the weights in plain arithmetic.
 * Then the windows of a long text, capacity drops under the training dispatch, the views and the refusals.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, denseTwin, encode, traceRouting, type ModelConfigInput } from 'deepseek-moe-tfjs/model';
import { characterSpans, expertLegend, topExpert, type RoutingTrace } from 'deepseek-moe-tfjs/config';
import { nodeBackends } from '../helpers.js';

const config: ModelConfigInput = {
  vocabSize: 256, dModel: 8, nLayers: 1, nDenseLayers: 0, interDim: 16, nHeads: 2, headDim: 4, maxSeqLen: 8,
  attention: 'mha', seed: 3,
  moe: {
    nRoutedExperts: 4, topK: 2, expertHiddenDim: 4, nSharedExperts: 1, scoreFunc: 'sigmoid', normTopK: true,
    routeScale: 2, auxFreeBias: true,
  },
};

const values = (m: DeepSeekLM) => new Map(m.weightNames.map((n) => [n, Float32Array.from(m.weights[n]!.dataSync())]));
const expertBias = [0, 0, 0, 0.3];

/** The model with its attention's output zeroed (so h = embedding) and a selection bias that favours expert 3. */
function handModel(input: ModelConfigInput = config): DeepSeekLM {
  const model = new DeepSeekLM(input);
  const w = values(model);
  w.set('blocks.0.attn.wo', new Float32Array(w.get('blocks.0.attn.wo')!.length));
  if (w.has('blocks.0.moe.expertBias')) w.set('blocks.0.moe.expertBias', Float32Array.from(expertBias));
  model.setWeights(w);
  return model;
}

const silu = (x: number) => x / (1 + Math.exp(-x));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** x [n] times W [n, m] stored row-major from `offset`. */
const vecMat = (x: number[], W: Float32Array, m: number, offset = 0) =>
  Array.from({ length: m }, (_, j) => x.reduce((a, xi, i) => a + xi * W[offset + i * m + j]!, 0));
const swiGLUOf = (x: number[], w1: Float32Array, w3: Float32Array, w2: Float32Array, h: number, d: number, e = 0) => {
  const a = vecMat(x, w1, h, e * d * h);
  const b = vecMat(x, w3, h, e * d * h);
  return vecMat(a.map((v, i) => silu(v) * b[i]!), w2, d, e * h * d);
};
const norm = (y: number[]) => Math.sqrt(y.reduce((a, v) => a + v * v, 0));

/** A byte's routes worked out from the weights: top-2 on sigmoid scores plus bias, gates renormalised times 2. */
function byHand(model: DeepSeekLM, byte: number) {
  const w = values(model);
  const d = 8;
  const h = 4;
  const e = Array.from(w.get('embed')!.subarray(byte * d, (byte + 1) * d));
  const rms = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / d + model.config.normEps);
  const gamma = w.get('blocks.0.ffnNorm')!;
  const f = e.map((v, i) => (v / rms) * gamma[i]!);
  const scores = vecMat(f, w.get('blocks.0.moe.routerKernel')!, 4).map(sigmoid);
  const experts = [0, 1, 2, 3].sort((a, b) => scores[b]! + expertBias[b]! - scores[a]! - expertBias[a]!).slice(0, 2);
  const unbiased = [0, 1, 2, 3].sort((a, b) => scores[b]! - scores[a]!).slice(0, 2);
  const sum = scores[experts[0]!]! + scores[experts[1]!]!;
  const gates = experts.map((x) => (2 * scores[x]!) / sum);
  const [w1, w3, w2] = ['expertW1', 'expertW3', 'expertW2'].map((n) => w.get(`blocks.0.moe.${n}`)!);
  const routed = new Array<number>(d).fill(0);
  experts.forEach((x, k) => swiGLUOf(f, w1!, w3!, w2!, h, d, x).forEach((v, i) => (routed[i]! += gates[k]! * v)));
  const [s1, s3, s2] = ['sharedW1', 'sharedW3', 'sharedW2'].map((n) => w.get(`blocks.0.moe.${n}`)!);
  const shared = swiGLUOf(f, s1!, s3!, s2!, h, d);
  return { experts, unbiased, gates, sharedShare: norm(shared) / (norm(shared) + norm(routed)) };
}

/** Byte i's routes in a block, sorted by expert (the router's order is not part of the contract checked here). */
const routesOf = (trace: RoutingTrace, i: number, b = 0) => {
  const block = trace.blocks[b]!;
  return block.experts[i]!.map((e, k) => [e, block.gates[i]![k]!] as const).sort((x, y) => x[0] - y[0]);
};

describe.each(nodeBackends)('traceRouting on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('gives each byte its experts, gates and shared share as worked by hand, over windows of a long text', async () => {
    const model = handModel();
    const before = tf.memory().numTensors;
    // 37 bytes with 2-, 3- and 4-byte characters: five windows of 8 bytes starting every 4.
    const text = 'Cats é 猫 sit; 12+34=46 😀 ok.';
    const trace = await traceRouting(model, text);
    expect(tf.memory().numTensors).toBe(before);
    expect(trace.bytes).toEqual(Array.from(encode(text)));
    expect(trace).toMatchObject({ nRoutedExperts: 4, topK: 2, nSharedExperts: 1, dispatch: 'inference', context: 4 });
    expect(trace.blocks.map((b) => b.block)).toEqual([0]);
    trace.bytes.forEach((byte, i) => {
      const hand = byHand(model, byte);
      const got = routesOf(trace, i);
      const want = hand.experts.map((e, k) => [e, hand.gates[k]!] as const).sort((x, y) => x[0] - y[0]);
      expect(got.map((r) => r[0]), `byte ${i}`).toEqual(want.map((r) => r[0]));
      got.forEach((r, k) => expect(r[1], `byte ${i} gate ${k}`).toBeCloseTo(want[k]![1], 4));
      expect(trace.blocks[0]!.sharedShare![i], `byte ${i} shared share`).toBeCloseTo(hand.sharedShare, 4);
      expect(trace.blocks[0]!.dropped[i]).toEqual([false, false]);
    });
    // The case covers the bias: it picks expert 3 for some bytes whose unbiased top-2 leaves it out.
    const hands = trace.bytes.map((b) => byHand(model, b));
    expect(hands.some((hand) => hand.experts.includes(3) && !hand.unbiased.includes(3))).toBe(true);
    model.dispose();
  });

  it('reports a byte as its own window, run alone, routes it (attention on)', async () => {
    const model = new DeepSeekLM(config);
    const text = 'the quick brown fox jumps over the lazy dog';
    const whole = await traceRouting(model, text);
    // Window w starts at 4 w; byte i >= 8 comes from window floor(i / 4) - 1, at position 4 + i mod 4.
    for (const i of [0, 5, 8, 13, 22, 42]) {
      const start = i < 8 ? 0 : 4 * (Math.floor(i / 4) - 1);
      const alone = await traceRouting(model, text.slice(start, start + 8));
      expect(routesOf(whole, i), `byte ${i}`).toEqual(routesOf(alone, i - start));
    }
    model.dispose();
  });

  it('shows capacity drops under the training dispatch: each expert keeps its first C assignments', async () => {
    const moe = { ...config.moe, dispatch: 'capacity' as const, capacityFactor: 0.5, auxFreeBias: false };
    const model = new DeepSeekLM({ ...config, moe });
    const text = 'aaaaaaaa';
    const inference = await traceRouting(model, text);
    expect(inference.blocks[0]!.dropped.flat().some((x) => x)).toBe(false);
    const trace = await traceRouting(model, text, { dispatch: 'training' });
    const block = trace.blocks[0]!;
    // One window of 8 tokens, 16 assignments, 4 experts: C = ceil(0.5 * 16 / 4) = 2 tokens per expert.
    const seen = new Map<number, number>();
    block.experts.forEach((row, t) => row.forEach((e, k) => {
      const n = seen.get(e) ?? 0;
      expect(block.dropped[t]![k], `token ${t} expert ${e}`).toBe(n >= 2);
      seen.set(e, n + 1);
    }));
    const overflow = [...seen.values()].reduce((a, n) => a + Math.max(0, n - 2), 0);
    expect(block.dropped.flat().filter((x) => x).length).toBe(overflow);
    expect(block.dropped.flat().some((x) => x)).toBe(true); // all 8 tokens are 'a': their 2 experts overflow
    // A byte whose every assignment was dropped has no top expert, and its output is all shared.
    const allDropped = block.dropped.findIndex((r) => r.every((x) => x));
    expect(topExpert(block, allDropped)).toBe(-1);
    expect(block.sharedShare![allDropped]).toBeCloseTo(1, 6);
    model.dispose();
  });

  it('refuses an empty or too long text and an unknown dispatch, by name', async () => {
    const model = new DeepSeekLM(config);
    await expect(traceRouting(model, '')).rejects.toThrow(/expected a non-empty text, but got ''/);
    const dense = new DeepSeekLM(denseTwin(config, 'activated'));
    await expect(traceRouting(dense, 'x')).rejects.toThrow(/expected a model with MoE blocks, but this one is dense/);
    dense.dispose();
    await expect(traceRouting(model, 'x'.repeat(8193))).rejects.toThrow(/at most 8192 UTF-8 bytes .* but got 8193/);
    await expect(traceRouting(model, 'x', { dispatch: 'fast' as never }))
      .rejects.toThrow(/expected dispatch 'inference' or 'training', but got 'fast'/);
    model.dispose();
  });
});

describe('routing views (no TF.js)', () => {
  it('splits UTF-8 characters into byte spans and describes each expert by what it took', () => {
    expect(characterSpans('a中é😀')).toEqual([
      { text: 'a', start: 0, end: 1 }, { text: '中', start: 1, end: 4 }, { text: 'é', start: 4, end: 6 },
      { text: '😀', start: 6, end: 10 },
    ]);
    // Bytes: '1' '+' '2' 'x' ' '; the digits and '+' go to expert 5, 'x' and the space to expert 2.
    const text = '1+2x ';
    const experts = [[5, 1], [5, 1], [5, 0], [2, 5], [1, 2]];
    const gates = [[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.3, 0.7]];
    const trace: RoutingTrace = {
      text, bytes: Array.from(encode(text)), characters: characterSpans(text), nRoutedExperts: 8, topK: 2,
      nSharedExperts: 0, dispatch: 'inference', context: 0,
      blocks: [{ block: 1, experts, gates, dropped: experts.map(() => [false, false]), sharedShare: null }],
    };
    expect([0, 1, 2, 3, 4].map((i) => topExpert(trace.blocks[0]!, i))).toEqual([5, 5, 5, 2, 2]);
    const legend = expertLegend(trace, trace.blocks[0]!);
    expect(legend.map((e) => [e.expert, e.bytes])).toEqual([[5, 3], [2, 2]]);
    expect(legend[0]!.description).toBe("expert 5: 60% of these bytes: mostly digits, most often '1', '+', '2'");
    expect(legend[1]!.description).toBe("expert 2: 40% of these bytes: letters and spaces, most often 'x', space");
  });
});
