/**
 * The four DeepSeek claims `npm run bench:claims` reproduces at toy scale: for each, the models to train side by
 * side and the paper's own figures to print beside ours. TF.js-free (the demos' Claims page reads it too).
 *
 * Full runs use the `small` shape (d 128, 4 layers, the first dense, MLA); --quick the `tiny` shape. Within a
 * table every MoE model has the same total and activated parameters (within 2%: only the router, d E, differs).
 */
import { denseTwin, plainModelConfig, preset, resolveModelConfig, resolveUpcycle } from 'deepseek-moe-tfjs/config';
import type { ModelConfig, ModelConfigInput, UpcycleConfigInput } from 'deepseek-moe-tfjs/config';

export type ClaimName = 'fineGrained' | 'lossFree' | 'globalBatch' | 'mtp' | 'upcycling' | 'budget';
/** The tables of the main run (the budget pilot, `budget`, runs on its own). */
export const claimNames: ClaimName[] = ['fineGrained', 'lossFree', 'globalBatch', 'mtp', 'upcycling'];

/** One model of a table. */
export interface ClaimVariant {
  key: string;
  label: string;
  model: ModelConfig;
  /** Micro-batches per optimizer step (the global-batch claim). */
  gradAccumSteps?: number;
  /**
   * Starts from the table's warm-start model trained for part of the run, grown by upcycle with these settings
   * (the upcycling claim); `model` is then the grown model's config.
   */
  upcycledWith?: UpcycleConfigInput;
}

/** A figure from the paper, to print beside ours. */
export interface PaperFigure {
  label: string;
  value: string;
}

export interface ClaimTable {
  name: ClaimName;
  title: string;
  /** Where the paper's figures are from. */
  source: string;
  paper: PaperFigure[];
  /** The model the others are compared with, seed by seed (a key of `variants`). */
  baseline: string;
  variants: ClaimVariant[];
  /** The dense model the upcycled variants grow from, trained for `share` of the run's steps first. */
  warmStart?: { model: ModelConfig; share: number };
}

type Moe = ModelConfigInput['moe'];

/** The shape of every table: `small` (full) or `tiny` (--quick), with one MoE setting swapped in. */
function shape(quick: boolean, moe: Moe, extra: Partial<ModelConfig> = {}): ModelConfig {
  const base = preset(quick ? 'tiny' : 'small');
  return plainModelConfig(resolveModelConfig({ ...base, ...extra, moe: { ...moe } }));
}

/**
 * 1. DeepSeekMoE (2024): GShard's few large experts (16, top-2: the paper's sparsity), the same parameters cut into
 * m = 2 and m = 4 times as many experts m times narrower (top-2m), and m = 4 with one of them an isolated shared
 * expert (one routed choice fewer); against dense models of the activated and of the total size. Held equal in
 * every MoE row: total and activated expert parameters, the preset's gate (sigmoid scores, top-K renormalised to
 * sum to 1, times routeScale = K, so the routed output's scale does not shrink as experts get finer) and its
 * balancing (the loss-free bias, u 0.001, and the sequence-wise loss, alpha 0.0001).
 */
function fineGrained(quick: boolean): ClaimTable {
  const h = quick ? 16 : 48; // GShard's expert width (the preset's); 8 (quick) or 16 experts, top-2
  const E = quick ? 8 : 16;
  const gate = preset(quick ? 'tiny' : 'small').moe;
  const moe = (experts: number, shared: number, topK: number, width: number): Moe => ({
    ...gate, nRoutedExperts: experts, nSharedExperts: shared, topK, expertHiddenDim: width, routeScale: topK,
  });
  const gshard = shape(quick, moe(E, 0, 2, h));
  return {
    name: 'fineGrained',
    title: 'Fine-grained experts and shared-expert isolation (DeepSeekMoE)',
    source: 'DeepSeekMoE (Dai et al., 2024), Table 1 (2B models, 100B tokens, Pile loss in nats per token, not per ' +
      'byte: at 3-4 bytes a token, divide by about 3.5 to compare with our nats/byte) and section 4.5',
    paper: [
      {
        label: 'Dense (0.2B, the activated size of a top-1 MoE; our dense row has top-2 GShard\'s), nats/token',
        value: '2.060',
      },
      { label: 'GShard (16 experts, top-2), nats/token', value: '1.867' },
      { label: 'DeepSeekMoE (1 shared + 63 routed, top-7), nats/token', value: '1.808' },
      {
        label: 'DeepSeekMoE with its shared expert disabled at evaluation (one more routed expert), nats/token',
        value: '2.414',
      },
    ],
    baseline: 'gshard',
    variants: [
      {
        key: 'denseActivated', label: 'dense, activated size',
        model: plainModelConfig(denseTwin(gshard, 'activated')),
      },
      { key: 'gshard', label: `GShard: ${E} experts of h ${h}, top-2`, model: gshard },
      {
        key: 'm2', label: `fine-grained m = 2: ${2 * E} of h ${h / 2}, top-4`,
        model: shape(quick, moe(2 * E, 0, 4, h / 2)),
      },
      {
        key: 'm4', label: `fine-grained m = 4: ${4 * E} of h ${h / 4}, top-8`,
        model: shape(quick, moe(4 * E, 0, 8, h / 4)),
      },
      {
        key: 'm4Shared', label: `m = 4 + 1 shared: 1 + ${4 * E - 1} of h ${h / 4}, top-7`,
        model: shape(quick, moe(4 * E - 1, 1, 7, h / 4)),
      },
      {
        key: 'denseTotal', label: 'dense, total size (the ceiling)',
        model: plainModelConfig(denseTwin(gshard, 'total')),
      },
    ],
  };
}

/**
 * 2. Auxiliary-loss-free balancing (Wang et al., 2024): sigmoid gate; no balancing, the balance loss at
 * alpha 0.001, the bias at u = 0.001, and u = 0.0001 and 0.01.
 */
function lossFree(quick: boolean): ClaimTable {
  const base = preset(quick ? 'tiny' : 'small').moe;
  const gate: Moe = { ...base, scoreFunc: 'sigmoid', normTopK: true, seqAlpha: 0, alpha1: 0, auxFreeBias: false };
  const bias = (u: number): Moe => ({ ...gate, auxFreeBias: true, biasUpdateSpeed: u });
  return {
    name: 'lossFree',
    title: 'Auxiliary-loss-free load balancing',
    source: 'Wang et al., 2024, "Auxiliary-Loss-Free Load Balancing Strategy for Mixture-of-Experts" (1B, 100B tokens)',
    paper: [
      { label: 'balance loss (alpha 0.001): perplexity per token / MaxVio_global', value: '9.56 / 0.72' },
      { label: 'loss-free bias (u 0.001): perplexity per token / MaxVio_global', value: '9.50 / 0.04' },
      { label: 'u = 0.0001', value: 'converges slowly (MaxVio_batch stays high early)' },
      { label: 'u = 0.01', value: 'oscillates late in training' },
    ],
    baseline: 'auxLoss',
    variants: [
      { key: 'none', label: 'no balancing', model: shape(quick, gate) },
      { key: 'auxLoss', label: 'balance loss, alpha 0.001', model: shape(quick, { ...gate, alpha1: 0.001 }) },
      { key: 'bias1e-3', label: 'loss-free bias, u 0.001', model: shape(quick, bias(0.001)) },
      { key: 'bias1e-4', label: 'loss-free bias, u 0.0001', model: shape(quick, bias(0.0001)) },
      { key: 'bias1e-2', label: 'loss-free bias, u 0.01', model: shape(quick, bias(0.01)) },
    ],
  };
}

/** 3. Qwen's "Demons in the Detail": the balance loss over micro-batches of a few sequences, or the global batch. */
function globalBatch(quick: boolean): ClaimTable {
  const base = preset(quick ? 'tiny' : 'small').moe;
  const moe = (scope: 'microBatch' | 'globalBatch'): Moe => ({
    ...base, scoreFunc: 'softmax', normTopK: false, routeScale: 1, auxFreeBias: false, seqAlpha: 0, alpha1: 0.01,
    balanceScope: scope,
  });
  return {
    name: 'globalBatch',
    title: 'Balance over the global batch',
    source: 'Qiu et al., 2025, "Demons in the Detail" (Qwen): micro-batch vs global-batch load-balancing loss',
    paper: [
      { label: 'global-batch balance', value: 'lower perplexity, and experts specialise by domain' },
      { label: 'micro-batch balance (near sequence level)', value: 'forces every domain onto every expert' },
    ],
    baseline: 'microBatch',
    variants: [
      {
        key: 'microBatch', label: 'balance loss per micro-batch of 2 sequences', model: shape(quick, moe('microBatch')),
        gradAccumSteps: 4,
      },
      {
        key: 'globalBatch', label: 'balance loss over the global batch of 8', model: shape(quick, moe('globalBatch')),
        gradAccumSteps: 4,
      },
    ],
  };
}

/** 4. DeepSeek-V3's multi-token prediction: one MTP module or none, the same main model. */
function mtp(quick: boolean): ClaimTable {
  const base = preset(quick ? 'tiny' : 'small');
  return {
    name: 'mtp',
    title: 'Multi-token prediction',
    source: 'DeepSeek-V3 technical report, Table 4 (MTP ablation) and section 5.4.3 (speculative decoding)',
    paper: [
      {
        label: 'main-model Pile BPB (bits per byte), small MoE without / with MTP',
        value: 'about equal; benchmarks improve',
      },
      { label: 'acceptance of the second token in speculative decoding (tokens, not bytes)', value: '85-90%' },
    ],
    baseline: 'noMtp',
    variants: [
      { key: 'noMtp', label: 'no MTP', model: shape(quick, base.moe) },
      {
        key: 'mtp', label: 'one MTP module, lambda 0.3',
        model: shape(quick, base.moe, { mtpDepth: 1, mtpLambda: 0.3 }),
      },
    ],
  };
}

/**
 * 5. Sparse upcycling (Komatsuzaki et al., 2022): a dense model trained for two thirds of the run, then either
 * trained on as it is or grown into a MoE (upcycle) and trained on, at equal extra tokens (half the dense run's,
 * the paper's ~50%); and the same MoE trained from scratch for the whole run (equal total tokens). The dense
 * model is the preset's upcycling twin (width (S + K) h), so every MoE row has the preset MoE's activated and
 * total expert widths; the fine-grained row grows into the preset MoE itself (m = S + K, exact at the step it
 * grows), the sparse row into copies of the whole FFN (m = 1, top-1: under the renormalised gate a single gate
 * is 1, so its router learns only through the balancing).
 */
function upcycling(quick: boolean): ClaimTable {
  const moe = shape(quick, preset(quick ? 'tiny' : 'small').moe);
  const dense = denseTwin(moe, 'upcycle');
  const grown = (settings: UpcycleConfigInput) => plainModelConfig(resolveUpcycle(dense, settings).modelConfig);
  const m = moe.moe;
  const fine: UpcycleConfigInput = {};
  const copies = (m.nSharedExperts! + m.nRoutedExperts!) * m.expertHiddenDim! / dense.twinInterDim;
  const sparse: UpcycleConfigInput = {
    granularity: 1, moe: { nSharedExperts: 0, nRoutedExperts: copies, topK: 1, routeScale: 1 },
  };
  return {
    name: 'upcycling',
    title: 'Upcycling a dense model into a MoE',
    source: 'Komatsuzaki et al., 2022, "Sparse Upcycling" (T5 and ViT, from dense checkpoints); Megatron-core ' +
      'granular upcycling; Qwen1.5-MoE (upcycled from Qwen-1.8B)',
    paper: [
      {
        label: 'upcycled T5 and ViT against their dense models trained on, extra compute about 50% of the dense run',
        value: 'upcycled significantly better (SuperGLUE, ImageNet)',
      },
      {
        label: 'upcycled against MoEs from scratch on 100% of the dense pretraining budget',
        value: 'upcycled better',
      },
    ],
    baseline: 'denseContinued',
    warmStart: { model: plainModelConfig(dense), share: 2 / 3 },
    variants: [
      {
        key: 'denseContinued', label: `dense, width ${dense.twinInterDim}, trained on`, model: plainModelConfig(dense),
      },
      {
        key: 'fineUpcycled',
        label: `upcycled at 2/3: ${m.nSharedExperts} shared + ${m.nRoutedExperts} routed slices of h ` +
          `${m.expertHiddenDim}, top-${m.topK}`,
        model: grown(fine), upcycledWith: fine,
      },
      {
        key: 'sparseUpcycled', label: `upcycled at 2/3: ${copies} copies of the dense FFN, top-1`,
        model: grown(sparse), upcycledWith: sparse,
      },
      { key: 'moeScratch', label: 'the same MoE from scratch', model: moe },
    ],
  };
}

/**
 * 6. The budget pilot: the fine-grained table's two dense models, GShard and DeepSeekMoE (m = 4 + shared), one
 * seed each, trained on ten times the tokens (runSettings' budget) from a corpus ten times larger: does the gap
 * between the dense models, the room the MoE claims live in, open with more tokens?
 */
export function budgetTable(quick: boolean): ClaimTable {
  const table = fineGrained(quick);
  return {
    ...table, name: 'budget', title: 'Budget pilot: the fine-grained table\'s ends at ten times the tokens',
    variants: table.variants.filter((v) => ['denseActivated', 'gshard', 'm4Shared', 'denseTotal'].includes(v.key)),
  };
}

/** Every table of the main run, full or quick. */
export function claimTables(quick: boolean): ClaimTable[] {
  return [fineGrained(quick), lossFree(quick), globalBatch(quick), mtp(quick), upcycling(quick)];
}

/** One table by name (the budget pilot's too), full or quick. */
export function claimTable(name: string, quick: boolean): ClaimTable {
  const table = [...claimTables(quick), budgetTable(quick)].find((t) => t.name === name);
  if (!table) {
    throw new Error(`claims: expected one of ${[...claimNames, 'budget'].join(', ')}, but got ${JSON.stringify(name)}.`);
  }
  return table;
}
