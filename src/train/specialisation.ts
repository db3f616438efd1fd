import * as tf from '@tensorflow/tfjs';
import type { TextDataset } from '../data/dataset.js';
import { checkFiniteInputs, type DeepSeekLM } from '../model/model.js';
import { isMoEBlock } from '../model/weights.js';

/** For one MoE block: shares[domain][expert], the share of that domain's assignments the expert took. */
export interface BlockSpecialisation {
  block: number;
  domains: string[];
  shares: number[][];
}

/**
 * Expert specialisation: runs `windows` validation windows of each domain through the model and counts, per MoE
 * block, where each domain's tokens were routed. A balanced but specialised model shows each domain
 * concentrated on a few experts, and different experts for different domains.
 */
export async function specialisationReport(
  model: DeepSeekLM, dataset: TextDataset, windows: number, seqLen: number,
): Promise<BlockSpecialisation[]> {
  const perDomain: number[][][] = []; // [domain][block][expert]
  for (let i = 0; i < dataset.domains.length; i++) {
    const batch = dataset.validationBatch(i, windows, seqLen);
    let blocks: number[] = [];
    const counts = tf.tidy(() => {
      const ids = tf.tensor2d(batch.ids, [batch.batchSize, seqLen], 'int32');
      const { moe } = model.forward(ids);
      blocks = moe.map((m) => m.block);
      // [nBlocks, E + 1]: each block's expert counts, then its non-finite input count.
      return moe.length > 0 ? tf.stack(moe.map((m) => tf.concat([m.expertCounts, tf.reshape(m.nonFiniteInputs, [1])]))) : tf.zeros([0, 1]);
    });
    const [nBlocks = 0, width = 1] = counts.shape;
    const E = width - 1;
    const read = await counts.data();
    counts.dispose();
    checkFiniteInputs(blocks, Array.from({ length: nBlocks }, (_, b) => read[b * width + E]!));
    const values = Float32Array.from({ length: nBlocks * E }, (_, j) => read[Math.floor(j / E) * width + (j % E)]!);
    perDomain.push(Array.from({ length: nBlocks }, (_, b) => Array.from(values.subarray(b * E, (b + 1) * E))));
  }
  const blocks = Array.from({ length: model.config.nLayers }, (_, i) => i).filter((i) => isMoEBlock(model.config, i));
  return blocks.map((block, b) => ({
    block,
    domains: dataset.domains,
    shares: perDomain.map((byBlock) => {
      const counts = byBlock[b]!;
      const total = counts.reduce((x, y) => x + y, 0);
      return counts.map((n) => n / total);
    }),
  }));
}
