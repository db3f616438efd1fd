/**
 * The DeepSeekMoE layer configuration: one plain, JSON-safe object, validated once by `resolveMoEConfig`.
 * Field names follow DeepSeek-V3's `inference/model.py` (in camelCase) and the DeepSeekMoE paper.
 */

/** How router logits become expert affinities: DeepSeek-V2 uses softmax, DeepSeek-V3 sigmoid. */
export type ScoreFunc = 'softmax' | 'sigmoid';
/** How a group of experts is scored for group-limited routing: V2 takes the max, V3 the sum of the top two. */
export type GroupScoreFunc = 'max' | 'sumTop2';
/** How tokens reach their experts; chosen once, at construction. */
export type DispatchMode = 'dropless' | 'capacity' | 'dense';
/** How 'dropless' and 'capacity' run the routed experts: grouped kernels, or the stock-op reference. */
export type ExpertCompute = 'grouped' | 'reference';

export interface DeepSeekMoEConfig {
  /** Model width d: the last dimension of the input and output. */
  dModel: number;
  /** Number of fine-grained routed experts E. */
  nRoutedExperts: number;
  /** Number of always-on shared experts; they form one SwiGLU FFN of width nSharedExperts * expertHiddenDim. */
  nSharedExperts: number;
  /** Routed experts chosen per token, K (DeepSeek's nActivatedExperts). */
  topK: number;
  /** Hidden width h of each expert's SwiGLU FFN. */
  expertHiddenDim: number;
  scoreFunc: ScoreFunc;
  /** Renormalise the K chosen affinities to sum to 1 before scaling. */
  normTopK: boolean;
  /** Multiplies the gate weights (DeepSeek-V3: 2.5). */
  routeScale: number;
  /** Experts are split into this many equal groups (the paper's devices); 1 turns group-limited routing off. */
  nExpertGroups: number;
  /** Each token may pick experts from at most this many groups. */
  topKGroups: number;
  groupScoreFunc: GroupScoreFunc;
  /** Multiplicative jitter on the router input in training: x * U(1 - j, 1 + j). 0 turns it off. */
  routerJitter: number;
  /** Expert-level balance loss factor, DeepSeekMoE's alpha1 (0 = off). */
  alpha1: number;
  /** Device-level (expert-group) balance loss factor, DeepSeekMoE's alpha2 (0 = off). */
  alpha2: number;
  /** DeepSeek-V3's sequence-wise balance loss factor alpha (0 = off). */
  seqAlpha: number;
  /** Router z-loss factor: zLossCoef * mean_t logsumexp(logits_t)^2 (0 = off). */
  zLossCoef: number;
  /** DeepSeek-V3's auxiliary-loss-free balancing: a per-expert bias added to the scores for selection only. */
  auxFreeBias: boolean;
  /** The bias update speed gamma: b_i += gamma * sign(meanLoad - load_i) after each step; 0 freezes the bias. */
  biasUpdateSpeed: number;
  dispatch: DispatchMode;
  /**
   * 'grouped' (default): assignments sorted by expert into contiguous rows, each stage one kernel over all experts
   * (custom programs on webgpu and webgl, XNNPACK on wasm, loops on cpu); falls back to 'reference' on a backend
   * without those kernels. 'reference': today's stock-op path (tokens gathered into [E, capacity] slots, batched
   * matmuls), kept to test the grouped path against.
   */
  expertCompute: ExpertCompute;
  /** With dispatch 'capacity', each expert takes at most ceil(capacityFactor * T * K / E) tokens. */
  capacityFactor: number;
  /**
   * Throw on NaN or infinite input. With 'dropless' this rides on the one read the dispatch already makes;
   * with 'capacity' and 'dense' it costs one GPU-to-CPU read per call, so set it false for sync-free steps.
   */
  checkFinite: boolean;
  /** Seed for the weight initialisers; null draws a fresh seed. */
  seed: number | null;
}

/** What a user writes: the four shape fields are required, everything else has a default. */
export type MoEConfigInput = Pick<DeepSeekMoEConfig, 'dModel' | 'nRoutedExperts' | 'topK' | 'expertHiddenDim'> &
  Partial<DeepSeekMoEConfig>;

export const moeConfigDefaults: Omit<DeepSeekMoEConfig, 'dModel' | 'nRoutedExperts' | 'topK' | 'expertHiddenDim'> = {
  nSharedExperts: 0,
  scoreFunc: 'softmax',
  normTopK: false,
  routeScale: 1,
  nExpertGroups: 1,
  topKGroups: 1,
  groupScoreFunc: 'max',
  routerJitter: 0,
  alpha1: 0,
  alpha2: 0,
  seqAlpha: 0,
  zLossCoef: 0,
  auxFreeBias: false,
  biasUpdateSpeed: 0.001,
  dispatch: 'dropless',
  expertCompute: 'grouped',
  capacityFactor: 1.25,
  checkFinite: true,
  seed: null,
};

const configKeys = ['dModel', 'nRoutedExperts', 'topK', 'expertHiddenDim', ...Object.keys(moeConfigDefaults)];

const fail = (message: string): never => {
  throw new Error(`DeepSeekMoE config: ${message}`);
};
const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : String(v));

function positiveInt(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(`expected ${name} to be a positive integer, but got ${show(v)}.`);
}
function nonNegativeInt(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`expected ${name} to be a non-negative integer, but got ${show(v)}.`);
}
function nonNegative(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`expected ${name} to be a finite number >= 0, but got ${show(v)}.`);
}
function oneOf(name: string, v: unknown, options: readonly string[]): void {
  if (typeof v !== 'string' || !options.includes(v)) fail(`expected ${name} to be one of ${options.map(show).join(', ')}, but got ${show(v)}.`);
}
function bool(name: string, v: unknown): void {
  if (typeof v !== 'boolean') fail(`expected ${name} to be a boolean, but got ${show(v)}.`);
}

/** Validates a user config, fills in defaults, and returns a complete, frozen config. Throws naming the field. */
export function resolveMoEConfig(input: MoEConfigInput): DeepSeekMoEConfig {
  if (input == null || typeof input !== 'object') fail(`expected a config object, but got ${show(input)}.`);
  for (const key of Object.keys(input)) {
    if (!configKeys.includes(key)) fail(`unknown field '${key}'; known fields are ${configKeys.join(', ')}.`);
  }
  const c: DeepSeekMoEConfig = { ...moeConfigDefaults, ...input };
  positiveInt('dModel', c.dModel);
  positiveInt('nRoutedExperts', c.nRoutedExperts);
  nonNegativeInt('nSharedExperts', c.nSharedExperts);
  positiveInt('topK', c.topK);
  positiveInt('expertHiddenDim', c.expertHiddenDim);
  oneOf('scoreFunc', c.scoreFunc, ['softmax', 'sigmoid']);
  bool('normTopK', c.normTopK);
  if (typeof c.routeScale !== 'number' || !Number.isFinite(c.routeScale) || c.routeScale <= 0) {
    fail(`expected routeScale to be a finite number > 0, but got ${show(c.routeScale)}.`);
  }
  positiveInt('nExpertGroups', c.nExpertGroups);
  positiveInt('topKGroups', c.topKGroups);
  oneOf('groupScoreFunc', c.groupScoreFunc, ['max', 'sumTop2']);
  nonNegative('routerJitter', c.routerJitter);
  if (c.routerJitter >= 1) fail(`expected routerJitter to be below 1, but got ${show(c.routerJitter)}.`);
  for (const name of ['alpha1', 'alpha2', 'seqAlpha', 'zLossCoef', 'biasUpdateSpeed'] as const) nonNegative(name, c[name]);
  bool('auxFreeBias', c.auxFreeBias);
  oneOf('dispatch', c.dispatch, ['dropless', 'capacity', 'dense']);
  oneOf('expertCompute', c.expertCompute, ['grouped', 'reference']);
  if (typeof c.capacityFactor !== 'number' || !Number.isFinite(c.capacityFactor) || c.capacityFactor <= 0) {
    fail(`expected capacityFactor to be a finite number > 0, but got ${show(c.capacityFactor)}.`);
  }
  bool('checkFinite', c.checkFinite);
  if (c.seed !== null) nonNegativeInt('seed', c.seed);

  if (c.topK > c.nRoutedExperts) fail(`expected topK (${c.topK}) to be at most nRoutedExperts (${c.nRoutedExperts}).`);
  if (c.nRoutedExperts % c.nExpertGroups !== 0) {
    fail(`expected nRoutedExperts (${c.nRoutedExperts}) to be divisible by nExpertGroups (${c.nExpertGroups}).`);
  }
  if (c.topKGroups > c.nExpertGroups) fail(`expected topKGroups (${c.topKGroups}) to be at most nExpertGroups (${c.nExpertGroups}).`);
  const reachable = c.topKGroups * (c.nRoutedExperts / c.nExpertGroups);
  if (c.topK > reachable) {
    fail(`expected topK (${c.topK}) to be at most topKGroups * experts per group (${reachable}), the experts a token can reach.`);
  }
  if (c.groupScoreFunc === 'sumTop2' && c.nExpertGroups > 1 && c.nRoutedExperts / c.nExpertGroups < 2) {
    fail(`expected at least 2 experts per group for groupScoreFunc 'sumTop2', but got ${c.nRoutedExperts / c.nExpertGroups}.`);
  }
  return Object.freeze(c);
}
