/**
 * The bench result: one JSON file per backend and run, the same whether `npm run bench` wrote it in Node or the
 * bench page in a visitor's browser, so `npm run bench:compare` can set any two side by side. Times are medians
 * in ms over warm runs; bytes are tensor bytes as tf.memory() counts them.
 */

export const benchSchemaId = 'deepseek-moe-tfjs/bench@3';

/** Where a model's parameters sit (the stacked bars); router and norms are folded into `other`. */
export interface ParamParts {
  embeddings: number;
  attention: number;
  denseFfn: number;
  sharedExperts: number;
  routedExperts: number;
  head: number;
  other: number;
}

export interface ModelParamsRow {
  name: string;
  kind: 'preset' | 'denseTwin' | 'published';
  total: number;
  activated: number;
  activatedRatio: number;
  totalParts: ParamParts;
  activatedParts: ParamParts;
  /** KV-cache bytes per token over all layers at `kvBytesPerElement`: as built (MLA) and as plain multi-head attention. */
  kvCache: { mlaBytesPerToken: number | null; mhaBytesPerToken: number; bytesPerElement: number };
}

/**
 * One DeepSeekMoE layer shape: T tokens of width d, E routed experts of width h, top-K, shared experts, and
 * group-limited routing (topKGroups of nExpertGroups; 1 of 1 is off).
 */
export interface LayerShape {
  tokens: number;
  dModel: number;
  nRoutedExperts: number;
  topK: number;
  expertHiddenDim: number;
  nSharedExperts: number;
  nExpertGroups: number;
  topKGroups: number;
}

/**
 * Forward + backward of one layer shape on the grouped path (the default) and on the stock-op reference path,
 * against a dense SwiGLU of equal activated width, with the GPU programs (or TF.js kernels) each one runs.
 */
export interface LayerSection {
  /** What the shape stands for, e.g. 'reference' or 'DeepSeek-V3 shape'. */
  name: string;
  shape: LayerShape;
  /**
   * `naive` (the masked path running every expert on every token) and the reference path are null where they would
   * take too long (the reference path at E = 256 runs thousands of kernels a step).
   */
  ms: { moe: number; moeReference: number | null; moeCapacity: number; denseActivated: number; naive: number | null; matmul: number };
  /**
   * MoE / dense: the median of the ratios of runs that alternate (timing.ts `timeAlternating`), with their
   * interquartile range. The other ratios divide medians.
   */
  ratios: {
    moeOverDenseActivated: number; moeOverDenseActivatedIqr: [number, number]; referenceOverMoe: number | null;
    naiveOverMoe: number | null; capacityOverDropless: number;
  };
  /** Programs dispatched on webgpu and webgl, TF.js kernels run elsewhere, per forward + backward. */
  programs: {
    unit: 'programs' | 'ops' | 'kernels'; moe: number; moeReference: number | null; denseActivated: number; moeOverDenseActivated: number;
  };
  gflops: { moe: number; matmul: number };
}

/**
 * One point of a scaling series: the MoE layer and its two dense twins, timed in the same run. The twin of equal
 * total is not timed (null) when one run of it would exceed the baseline budget (scaling.ts), predicted from the
 * twin of equal activated size by their widths.
 */
export interface ScalingPoint {
  nRoutedExperts: number;
  topK: number;
  totalParams: number;
  activatedParams: number;
  ms: { moe: number; denseActivated: number; denseTotal: number | null };
  /** Medians of the ratios of runs that alternate, with their interquartile ranges. */
  ratios: {
    moeOverDenseActivated: number; moeOverDenseActivatedIqr: [number, number];
    moeOverDenseTotal: number | null; moeOverDenseTotalIqr: [number, number] | null;
  };
}

/** The fixed part of the scaling and memory series' shapes. */
export type SeriesShape = Omit<LayerShape, 'nRoutedExperts' | 'topK' | 'nExpertGroups' | 'topKGroups'>;

export interface ScalingSection {
  /** d, h and shared experts of every point (tokens included). */
  shape: SeriesShape;
  /** Routed experts grow at fixed topK: activated size fixed, total grows. */
  experts: ScalingPoint[];
  /** topK grows at fixed routed experts: total size fixed, activated grows. */
  topK: ScalingPoint[];
}

export interface TrainingVariant {
  total: number;
  activated: number;
  msPerStep: number;
  tokensPerSecond: number;
}

/** Training steps (forward, backward, AdamW, bias update) of the `small` model and its dense twins. */
export interface TrainingSection {
  model: string;
  batchSize: number;
  seqLen: number;
  /** Timed steps per variant (after `warmup` untimed ones). */
  steps: number;
  /** The MoE blocks' dispatch mode in this run. */
  dispatch: string;
  moe: TrainingVariant;
  denseActivated: TrainingVariant;
  denseTotal: TrainingVariant;
  /** Medians of the per-round ratios (the three models take turns step by step), with interquartile ranges. */
  ratios: {
    moeOverDenseActivatedTokensPerSecond: number; moeOverDenseActivatedIqr: [number, number];
    moeOverDenseTotalTokensPerSecond: number; moeOverDenseTotalIqr: [number, number];
  };
}

/**
 * The grouped path's stages: router (scores and expert selection), plan (counts and the routing plan), gates,
 * routed experts (both grouped matmuls, the token gather fused in), combine, shared experts, balance losses.
 */
export const breakdownStages = ['router', 'plan', 'gates', 'routedExperts', 'combine', 'sharedExperts', 'losses'] as const;
export type BreakdownStage = (typeof breakdownStages)[number];

/** Each stage of the layer timed alone (forward + backward) at the reference shape, as a share of the whole layer. */
export interface BreakdownSection {
  shape: LayerShape;
  layerMs: number;
  stages: Record<BreakdownStage, { ms: number; share: number }>;
  /** layerMs minus the stages' sum: glue, and the noise of timing parts apart (may be negative). */
  unaccountedMs: number;
}

export interface MemoryPoint {
  nRoutedExperts: number;
  topK: number;
  totalParams: number;
  activatedParams: number;
  /** The layer's weight tensors. */
  weightBytes: number;
  /**
   * Peak tensor bytes during one forward call above what was live before it: every intermediate the call holds
   * until it returns (the activations a training step's tape keeps, and the routing plan's scratch).
   */
  forwardPeakBytes: number;
  /** Peak tensor bytes of one forward + backward: activations plus gradients, whose weight part is the size of the weights. */
  stepPeakBytes: number;
}

export interface MemorySection {
  shape: SeriesShape;
  experts: MemoryPoint[];
  topK: MemoryPoint[];
}

export interface BenchResult {
  schema: typeof benchSchemaId;
  /** ISO time the run started. */
  date: string;
  mode: 'quick' | 'full';
  backend: string;
  environment: {
    runtime: 'node' | 'browser';
    /** Node version and OS, or the browser's user agent. */
    description: string;
    cores: number | null;
    /** The GPU adapter, when the page could name it. */
    device: string | null;
    tfjsVersion: string;
  };
  settings: { runs: number; warmup: number; tokens: number };
  /** Wall time of the whole suite on this backend, s. */
  seconds: number;
  params: ModelParamsRow[];
  /** The reference shape at the run's token count. */
  layer: LayerSection;
  /** More shapes: the reference at T = 256 (the lab's batch) in a full run, and DeepSeek-V3's routing at toy width. */
  otherLayers: LayerSection[];
  scaling: ScalingSection;
  training: TrainingSection;
  breakdown: BreakdownSection;
  memory: MemorySection;
}
