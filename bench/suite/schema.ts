/**
 * The bench result: one JSON file per backend and run, the same whether `npm run bench` wrote it in Node or the
 * bench page in a visitor's browser, so `npm run bench:compare` can set any two side by side. Times are medians
 * in ms over warm runs; bytes are tensor bytes as tf.memory() counts them.
 */

export const benchSchemaId = 'deepseek-moe-tfjs/bench@1';

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

/** One DeepSeekMoE layer shape: T tokens of width d, E routed experts of width h, top-K, shared experts. */
export interface LayerShape {
  tokens: number;
  dModel: number;
  nRoutedExperts: number;
  topK: number;
  expertHiddenDim: number;
  nSharedExperts: number;
}

/** Forward + backward of the layer at the reference shape, against a dense SwiGLU of equal activated width. */
export interface LayerSection {
  shape: LayerShape;
  ms: { moe: number; moeCapacity: number; denseActivated: number; naive: number; matmul: number };
  ratios: { moeOverDenseActivated: number; naiveOverMoe: number; capacityOverDropless: number };
  gflops: { moe: number; matmul: number };
}

/** One point of a scaling series: the MoE layer and its two dense twins, timed in the same run. */
export interface ScalingPoint {
  nRoutedExperts: number;
  topK: number;
  totalParams: number;
  activatedParams: number;
  ms: { moe: number; denseActivated: number; denseTotal: number };
  ratios: { moeOverDenseActivated: number; moeOverDenseTotal: number };
}

export interface ScalingSection {
  /** d, h and shared experts of every point (tokens included). */
  shape: Omit<LayerShape, 'nRoutedExperts' | 'topK'>;
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
  ratios: { moeOverDenseActivatedTokensPerSecond: number; moeOverDenseTotalTokensPerSecond: number };
}

export const breakdownStages = ['router', 'dispatch', 'routedExperts', 'sharedExperts', 'combine', 'losses'] as const;
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
  shape: Omit<LayerShape, 'nRoutedExperts' | 'topK'>;
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
  layer: LayerSection;
  scaling: ScalingSection;
  training: TrainingSection;
  breakdown: BreakdownSection;
  memory: MemorySection;
}
