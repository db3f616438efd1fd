/**
 * The DeepSeekMoE layer configuration: one plain, JSON-safe object, validated once by `resolveMoEConfig`.
 * Field names follow DeepSeek-V3's `inference/model.py` (in camelCase) and the DeepSeekMoE paper.
 */
import { ConfigChecker, show } from '../validate.js';

/** How router logits become expert affinities: DeepSeek-V2 uses softmax, DeepSeek-V3 sigmoid. */
export type ScoreFunc = 'softmax' | 'sigmoid';
/** How a group of experts is scored for group-limited routing: V2 takes the max, V3 the sum of the top two. */
export type GroupScoreFunc = 'max' | 'sumTop2';
/** How tokens reach their experts; chosen once, at construction. */
export type DispatchMode = 'dropless' | 'capacity';
/** Which assignments an expert past its capacity keeps: the earliest tokens, or those of highest affinity. */
export type DropPolicy = 'position' | 'probs';
/** Over which tokens the balance losses count f_i: each micro-batch's, or the whole global batch's. */
export type BalanceScope = 'microBatch' | 'globalBatch';
/** The auxiliary-loss-free bias step: the paper's sign rule, or the same made zero-mean (torchtitan). */
export type BiasUpdate = 'sign' | 'signCentered';

/** A complete, validated layer config (what resolveMoEConfig returns); the fields are documented one by one. */
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
  /**
   * 'sign' (the Loss-Free Balancing paper, DeepSeek-V3): b_i += gamma * sign(meanLoad - load_i). 'signCentered'
   * (torchtitan): the same step minus its mean over experts, so the biases keep summing to zero.
   */
  biasUpdate: BiasUpdate;
  /**
   * 'microBatch': the balance losses count f_i over the tokens of each forward call (a micro-batch).
   * 'globalBatch': over the whole optimizer step's batch when the trainer accumulates gradients (Qwen's "Demons in
   * the Detail", Megatron's global_aux_loss): f_i is the global batch's and each micro-batch's P_i is scaled by its
   * share of the tokens, so the gradient does not depend on how the batch is split. Without accumulation, or
   * outside the trainer, a call is its own global batch and both scopes agree.
   */
  balanceScope: BalanceScope;
  dispatch: DispatchMode;
  /**
   * With dispatch 'capacity', each expert takes at most ceil(capacityFactor * T * K / E) tokens of a training
   * call. Evaluation and generation (training false) run dropless, as DeepSeek-V2 describes.
   */
  capacityFactor: number;
  /**
   * Which tokens an expert past capacity keeps: 'position', its earliest ones; 'probs', those with the highest
   * affinity s_(i,t) (Megatron's moe_token_drop_policy 'probs'; DeepSeek-V2 drops the lowest-affinity tokens).
   */
  dropPolicy: DropPolicy;
  /**
   * Qwen2-MoE's gated shared expert: the shared experts' output scaled per token by sigmoid(x w_g), w_g [d, 1].
   * Off (false) in DeepSeekMoE.
   */
  sharedExpertGate: boolean;
  /**
   * Throw on NaN or infinite input. It costs one GPU-to-CPU read per call (none with moeForward's
   * `deferFiniteCheck` or `inputChecked`), so set it false for sync-free steps.
   */
  checkFinite: boolean;
  /** Seed for the weight initialisers; null draws a fresh seed. */
  seed: number | null;
}

/** What a user writes: the four shape fields are required, everything else has a default. */
export type MoEConfigInput = Pick<DeepSeekMoEConfig, 'dModel' | 'nRoutedExperts' | 'topK' | 'expertHiddenDim'> &
  Partial<DeepSeekMoEConfig>;

/** The defaults of every optional layer field (DeepSeek-V3-like choices are not forced: softmax scoring, no groups). */
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
  biasUpdate: 'sign',
  balanceScope: 'microBatch',
  dispatch: 'dropless',
  capacityFactor: 1.25,
  dropPolicy: 'position',
  sharedExpertGate: false,
  checkFinite: true,
  seed: null,
};

const configKeys = ['dModel', 'nRoutedExperts', 'topK', 'expertHiddenDim', ...Object.keys(moeConfigDefaults)];

const check: ConfigChecker = new ConfigChecker('DeepSeekMoE config');

const notesShown = new Set<string>();

/**
 * What configs saved by earlier versions hold that this one computes another way: `expertCompute` (there is one
 * routed path now) and dispatch 'dense' (every expert on every token, masked: the same outputs as 'dropless').
 * They keep loading, with a note (once per distinct note).
 */
function withoutRetiredFields(input: MoEConfigInput): MoEConfigInput {
  const { expertCompute, ...rest } = input as MoEConfigInput & { expertCompute?: unknown };
  const note = (message: string) => {
    if (!notesShown.has(message)) console.info(`DeepSeekMoE config: ${message}`);
    notesShown.add(message);
  };
  if (expertCompute !== undefined) {
    note(`expertCompute (${show(expertCompute)}) is no longer a setting: every backend runs the one routed path; ignored.`);
  }
  if ((rest.dispatch as string) === 'dense') {
    note("dispatch 'dense' (every expert on every token, masked) computes what 'dropless' does; it runs as 'dropless'.");
    return { ...rest, dispatch: 'dropless' };
  }
  return rest;
}

/** Validates a user config, fills in defaults, and returns a complete, frozen config. Throws naming the field. */
export function resolveMoEConfig(input: MoEConfigInput): DeepSeekMoEConfig {
  check.fields(input, configKeys, ['expertCompute']);
  const c: DeepSeekMoEConfig = { ...moeConfigDefaults, ...withoutRetiredFields(input) };
  check.int('dModel', c.dModel, 1);
  check.int('nRoutedExperts', c.nRoutedExperts, 1);
  check.int('nSharedExperts', c.nSharedExperts, 0);
  check.int('topK', c.topK, 1);
  check.int('expertHiddenDim', c.expertHiddenDim, 1);
  check.oneOf('scoreFunc', c.scoreFunc, ['softmax', 'sigmoid']);
  check.bool('normTopK', c.normTopK);
  check.number('routeScale', c.routeScale, { min: 0, minOpen: true });
  check.int('nExpertGroups', c.nExpertGroups, 1);
  check.int('topKGroups', c.topKGroups, 1);
  check.oneOf('groupScoreFunc', c.groupScoreFunc, ['max', 'sumTop2']);
  check.number('routerJitter', c.routerJitter, { min: 0 });
  check.require(c.routerJitter < 1, `expected routerJitter to be below 1, but got ${show(c.routerJitter)}.`);
  for (const name of ['alpha1', 'alpha2', 'seqAlpha', 'zLossCoef', 'biasUpdateSpeed'] as const) check.number(name, c[name], { min: 0 });
  check.bool('auxFreeBias', c.auxFreeBias);
  check.oneOf('biasUpdate', c.biasUpdate, ['sign', 'signCentered']);
  check.oneOf('balanceScope', c.balanceScope, ['microBatch', 'globalBatch']);
  check.oneOf('dispatch', c.dispatch, ['dropless', 'capacity']);
  check.number('capacityFactor', c.capacityFactor, { min: 0, minOpen: true });
  check.oneOf('dropPolicy', c.dropPolicy, ['position', 'probs']);
  check.bool('sharedExpertGate', c.sharedExpertGate);
  check.bool('checkFinite', c.checkFinite);
  if (c.seed !== null) check.int('seed', c.seed, 0);

  const fail = (message: string) => check.fail(message);
  if (c.sharedExpertGate && c.nSharedExperts === 0) {
    fail('expected nSharedExperts >= 1 for sharedExpertGate, but got 0.');
  }
  if (c.topK > c.nRoutedExperts) fail(`expected topK (${c.topK}) to be at most nRoutedExperts (${c.nRoutedExperts}).`);
  if (c.nRoutedExperts % c.nExpertGroups !== 0) {
    fail(`expected nRoutedExperts (${c.nRoutedExperts}) to be divisible by nExpertGroups (${c.nExpertGroups}).`);
  }
  if (c.topKGroups > c.nExpertGroups) fail(`expected topKGroups (${c.topKGroups}) to be at most nExpertGroups (${c.nExpertGroups}).`);
  const perGroup = c.nRoutedExperts / c.nExpertGroups;
  const reachable = c.topKGroups * perGroup;
  if (c.topK > reachable) {
    fail(
      `expected topK (${c.topK}) to be at most topKGroups (${c.topKGroups}) * experts per group (nRoutedExperts / ` +
        `nExpertGroups = ${perGroup}) = ${reachable}, the experts a token can reach.`,
    );
  }
  if (c.groupScoreFunc === 'sumTop2' && c.nExpertGroups > 1 && perGroup < 2) {
    fail(`expected at least 2 experts per group (nRoutedExperts / nExpertGroups) for groupScoreFunc 'sumTop2', but got ${perGroup}.`);
  }
  return Object.freeze(c);
}
