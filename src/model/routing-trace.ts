/**
 * traceRouting: a text through the model once, and where the router sent each byte in each MoE block (experts,
 * gates, drops, the shared experts' share), read back in one read. Views of the result: routing-view.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { checkFiniteInputs, type DeepSeekLM } from './model.js';
import { characterSpans, type BlockRouting, type RoutingTrace } from './routing-view.js';
import { encode } from './tokenizer.js';

/** Options of traceRouting. */
export interface RoutingTraceOptions {
  /**
   * 'inference' (default): dropless, as evaluation and generation run. 'training': the training dispatch, so
   * capacity drops (dispatch 'capacity') and router jitter (seeded by `seed`) show.
   */
  dispatch?: 'inference' | 'training';
  /** Seeds router jitter under dispatch 'training'. Default 0. */
  seed?: number;
}

/** The longest text traced in one call, in UTF-8 bytes. */
export const maxTraceBytes = 8192;

/**
 * Runs `text` through the model and returns, per MoE block and per byte, the K experts chosen, their gates,
 * whether each was dropped, and the shared experts' share of the output norm. A text longer than the model's
 * maxSeqLen S goes in windows of S bytes that start every S/2 bytes, all in one batch: each byte is reported from
 * the first window that holds it at position S/2 or later (or from the first window), so it saw at least S/2
 * bytes of context. One forward, one read.
 */
export async function traceRouting(
  model: DeepSeekLM, text: string, options: RoutingTraceOptions = {},
): Promise<RoutingTrace> {
  if (typeof text !== 'string' || text.length === 0) {
    const got = typeof text === 'string' ? "''" : typeof text;
    throw new Error(`traceRouting: expected a non-empty text, but got ${got}.`);
  }
  const dispatch = options.dispatch ?? 'inference';
  if (dispatch !== 'inference' && dispatch !== 'training') {
    throw new Error(`traceRouting: expected dispatch 'inference' or 'training', but got '${String(dispatch)}'.`);
  }
  if (model.config.ffn !== 'moe') {
    throw new Error("traceRouting: expected a model with MoE blocks, but this one is dense (ffn 'dense').");
  }
  const bytes = Array.from(encode(text));
  if (bytes.length > maxTraceBytes) {
    throw new Error(`traceRouting: expected at most ${maxTraceBytes} UTF-8 bytes of text, but got ${bytes.length}.`);
  }
  const c = model.config;
  const S = Math.min(c.maxSeqLen, bytes.length);
  const stride = Math.max(1, Math.floor(S / 2));
  const starts = [0];
  while (starts.at(-1)! + S < bytes.length) starts.push(starts.at(-1)! + stride);
  // Each byte from the window it sits at or past the middle of; the first window's first half from the first.
  const source = bytes.map((_, i) => {
    const w = i < S ? 0 : Math.min(starts.length - 1, Math.floor((i - S) / stride) + 1);
    return w * S + (i - starts[w]!);
  });
  const windows = starts.flatMap((s) => Array.from({ length: S }, (_, j) => bytes[s + j] ?? 0));
  const K = c.moeConfig.topK;
  let blocks: number[] = [];
  const packed = tf.tidy(() => {
    const ids = tf.tensor2d(windows, [starts.length, S], 'int32');
    const training = dispatch === 'training';
    const { moe } = model.forward(ids, { tokenRoutes: true, training, jitterSeed: options.seed ?? 0 });
    blocks = moe.map((m) => m.block);
    if (moe.length === 0) return tf.zeros([0]);
    // Per block [W S, 3 K + 1]: experts, gates, dropped, shared share; then the blocks' non-finite counts.
    const rows = moe.map(({ routes: r }) => tf.concat([
      tf.cast(r!.ids, 'float32'), r!.gates, r!.dropped, tf.reshape(r!.sharedShare, [-1, 1]),
    ], 1));
    return tf.concat([tf.reshape(tf.stack(rows), [-1]), tf.stack(moe.map((m) => m.nonFiniteInputs))]);
  });
  const read = await packed.data();
  packed.dispose();
  const width = 3 * K + 1;
  const perBlock = starts.length * S * width;
  checkFiniteInputs(blocks, read.subarray(blocks.length * perBlock));
  const routing = blocks.map((block, b): BlockRouting => {
    const at = (i: number) => b * perBlock + source[i]! * width;
    const rows = bytes.map((_, i) => read.subarray(at(i), at(i) + width));
    return {
      block,
      experts: rows.map((r) => Array.from(r.subarray(0, K), Math.round)),
      gates: rows.map((r) => Array.from(r.subarray(K, 2 * K))),
      dropped: rows.map((r) => Array.from(r.subarray(2 * K, 3 * K), (x) => x > 0.5)),
      sharedShare: c.moeConfig.nSharedExperts > 0 ? rows.map((r) => r[3 * K]!) : null,
    };
  });
  return {
    text, bytes, characters: characterSpans(text), nRoutedExperts: c.moeConfig.nRoutedExperts, topK: K,
    nSharedExperts: c.moeConfig.nSharedExperts, dispatch, context: starts.length > 1 ? stride : 0, blocks: routing,
  };
}
