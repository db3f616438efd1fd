import * as tf from '@tensorflow/tfjs';
import { Rng } from '../rng.js';
import { show } from '../validate.js';
import { disposeCache, forwardCached, mtpCached, truncateCache, type DeepSeekLM, type KVCache } from './model.js';

/** How generate and Trainer.sample draw tokens. */
export interface SampleOptions {
  /** Tokens to generate. */
  maxNewTokens: number;
  /** Softmax temperature; 0 picks the most likely token. Default 1. */
  temperature?: number;
  /** Sample among the topK most likely tokens only; 0 keeps all. Default 0. */
  topK?: number;
  /** A generator to draw from (its state advances), or a seed. Default seed 0. */
  rng?: Rng | number;
  /**
   * Self-speculative decoding with the first MTP module (a model with mtpDepth >= 1, temperature 0): it drafts the
   * token after next, the main model verifies it in the same step as the next one, and the output is exactly plain
   * greedy decoding's. Default false.
   */
  speculative?: boolean;
}

/** How speculative decoding went (generateWithStats). */
export interface SpeculationStats {
  /** Main-model forward calls (the prompt's included). */
  mainSteps: number;
  /** Drafts the main model verified, and how many it accepted. */
  drafted: number;
  accepted: number;
  /** accepted / drafted (0 when nothing was drafted). */
  acceptanceRate: number;
  /** Tokens generated per main-model forward call. */
  tokensPerStep: number;
  /**
   * Each verified draft in order: the index in the generated tokens of the token it guessed, the guess, and
   * whether the main model agreed (then `tokens[position] === token`).
   */
  drafts: { position: number; token: number; accepted: boolean }[];
}

/** Draws one token from logits (a plain array) with temperature and top-k. */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature === 0) return best;
  let order = Array.from(logits.keys());
  if (topK > 0 && topK < logits.length) order = order.sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, topK);
  const weights = order.map((i) => Math.exp((logits[i]! - logits[best]!) / temperature));
  let r = rng.next() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < order.length; j++) {
    r -= weights[j]!;
    if (r < 0) return order[j]!;
  }
  return order[order.length - 1]!;
}

/** The most tokens one call generates (a page's worker stays busy until they are all out). */
export const maxGenerated = 100_000;

/** Checks generate's arguments; throws naming the field. */
function checkArguments(model: DeepSeekLM, prompt: ArrayLike<number>, options: SampleOptions): void {
  if (options == null || typeof options !== 'object') throw new Error(`generate: expected an options object, but got ${show(options)}.`);
  const { maxNewTokens, temperature = 1, topK = 0, speculative = false } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0 || maxNewTokens > maxGenerated) {
    throw new Error(`generate: expected maxNewTokens to be an integer in [0, ${maxGenerated}], but got ${show(maxNewTokens)}.`);
  }
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new Error(`generate: expected temperature to be a finite number >= 0, but got ${show(temperature)}.`);
  }
  if (!Number.isInteger(topK) || topK < 0) throw new Error(`generate: expected topK to be a non-negative integer, but got ${show(topK)}.`);
  if (typeof speculative !== 'boolean') {
    throw new Error(`generate: expected speculative to be a boolean, but got ${show(speculative)}.`);
  }
  if (speculative && model.config.mtpDepth === 0) {
    throw new Error('generate: expected a model with MTP modules (mtpDepth >= 1) for speculative decoding, ' +
      'but mtpDepth is 0.');
  }
  if (speculative && temperature !== 0) {
    throw new Error(`generate: expected temperature 0 with speculative (drafts are verified greedily), ` +
      `but got ${show(temperature)}.`);
  }
  const V = model.config.vocabSize;
  for (const t of Array.from(prompt)) {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`generate: expected prompt token ids in [0, ${V}), but got ${show(t)}.`);
  }
}

/**
 * Continues `prompt` (token ids) with the KV cache: one forward over the prompt, then one position per new
 * token. When the cache reaches maxSeqLen, the last half of the context is re-read into a fresh cache.
 * Returns the new tokens only.
 */
export async function generate(
  model: DeepSeekLM, prompt: ArrayLike<number>, options: SampleOptions,
): Promise<number[]> {
  return (await generateWithStats(model, prompt, options)).tokens;
}

/** generate, and with `speculative` how the drafts fared (stats is null otherwise). */
export async function generateWithStats(
  model: DeepSeekLM, prompt: ArrayLike<number>, options: SampleOptions,
): Promise<{ tokens: number[]; stats: SpeculationStats | null }> {
  checkArguments(model, prompt, options);
  const { maxNewTokens, temperature = 1, topK = 0, speculative = false } = options;
  const rng = options.rng instanceof Rng ? options.rng : new Rng(options.rng ?? 0);
  const context = Array.from(prompt);
  if (context.length === 0) context.push(10); // an empty prompt starts from a newline
  const run = new Decoder(model, context, speculative);
  try {
    while (run.out.length < maxNewTokens) {
      if (speculative) await run.speculativeStep(maxNewTokens);
      else run.emit(sampleToken(await run.mainStep(null), temperature, topK, rng));
    }
  } finally {
    run.dispose();
  }
  const { mainSteps, drafted, accepted, drafts } = run;
  const stats = speculative
    ? {
      mainSteps, drafted, accepted, acceptanceRate: drafted ? accepted / drafted : 0,
      tokensPerStep: run.out.length / Math.max(1, mainSteps), drafts,
    }
    : null;
  return { tokens: run.out, stats };
}

/**
 * One sequence being decoded: the main model's KV cache and, for speculation, the first MTP module's, which holds
 * the same positions. Each main step processes `pending` (the prompt, a re-read window, or the last token) and
 * optionally one draft after it, exactly as plain decoding would process them one by one, so the greedy result
 * does not change; a rejected draft's position is cut from the cache.
 */
class Decoder {
  readonly out: number[] = [];
  mainSteps = 0;
  drafted = 0;
  accepted = 0;
  readonly drafts: SpeculationStats['drafts'] = [];
  private cache: KVCache | null = null;
  private mtp: KVCache | null = null;
  private pending: number[];
  /** Main-model states [n, d] of positions the MTP cache does not hold yet, and the token after each. */
  private mtpHidden: tf.Tensor2D[] = [];
  private mtpAhead: number[] = [];
  private draft: number | null = null;
  private readonly maxLen: number;
  private readonly V: number;

  constructor(
    private readonly model: DeepSeekLM, private readonly context: number[], private readonly speculative: boolean,
  ) {
    this.maxLen = model.config.maxSeqLen;
    this.V = model.config.vocabSize;
    this.pending = context.slice(-this.maxLen);
  }

  emit(token: number): void {
    this.out.push(token);
    this.context.push(token);
    this.pending = [token];
  }

  /**
   * Runs the main model on `pending` (plus `draft`, when given) and returns the logits after the last pending
   * token and, with a draft, after the draft: one read. Keeps the new positions' states for the MTP module.
   */
  async mainStep(draft: number | null): Promise<Float32Array> {
    this.resetIfFull();
    const ids = tf.tensor1d(draft === null ? this.pending : [...this.pending, draft], 'int32');
    const step = forwardCached(this.model.view, this.model.config, ids, this.cache);
    ids.dispose();
    this.cache = step.cache;
    this.mainSteps += 1;
    const n = this.pending.length;
    const rows = draft === null ? 1 : 2;
    // One read per step: the logits after the last pending token (and after the draft), then the MoE blocks'
    // non-finite input counts.
    const last = tf.tidy(() => tf.concat([
      tf.reshape(tf.slice(step.logits, [n - 1, 0], [rows, this.V]), [rows * this.V]),
      tf.reshape(step.moe.reduce((s: tf.Tensor, m) => tf.add(s, m.nonFiniteInputs), tf.scalar(0)), [1]),
    ]));
    if (this.speculative) this.mtpHidden.push(tf.keep(tf.slice(step.hidden, 0, n + rows - 1)));
    // all but the cache
    tf.dispose([step.logits, step.hidden, step.balanceLoss, step.moe] as unknown as tf.TensorContainer);
    const read = (await last.data()) as Float32Array;
    last.dispose();
    const nonFinite = read[rows * this.V]!;
    if (nonFinite > 0) {
      throw new Error(`generate: expected finite MoE inputs, but got ${nonFinite} NaN or infinite values.`);
    }
    return read.subarray(0, rows * this.V);
  }

  /** One main step with the pending draft, if there is room for it; then the next draft. */
  async speculativeStep(maxNewTokens: number): Promise<void> {
    this.resetIfFull();
    const length = this.cache?.length ?? 0;
    // Plain decoding would process the draft right after `pending`, in the same cache, only when it fits.
    const room = this.cache !== null && length + this.pending.length + 1 <= this.maxLen;
    const draft = room && this.out.length + 2 <= maxNewTokens ? this.draft : null;
    const n = this.pending.length;
    const logits = await this.mainStep(draft);
    const next = argmax(logits.subarray(0, this.V));
    const ahead = [...this.pending.slice(1), next];
    this.emit(next);
    if (draft !== null) {
      this.drafted += 1;
      this.drafts.push({ position: this.out.length - 1, token: draft, accepted: draft === next });
      if (draft === next) {
        this.accepted += 1;
        const after = argmax(logits.subarray(this.V));
        ahead.push(after);
        this.emit(after);
      } else {
        this.cache = truncateCache(this.cache!, length + n);
        const rows = this.mtpHidden.pop()!;
        this.mtpHidden.push(tf.keep(tf.tidy(() => tf.slice(rows, 0, n))));
        rows.dispose();
      }
    }
    this.mtpAhead.push(...ahead);
    this.draft = this.out.length < maxNewTokens ? await this.nextDraft() : null;
  }

  /** Feeds the MTP module the positions it lacks and reads its guess for the token after the next one. */
  private async nextDraft(): Promise<number> {
    const c = this.model.config;
    const logits = tf.tidy(() => {
      const hidden = this.mtpHidden.length === 1 ? this.mtpHidden[0]! : (tf.concat(this.mtpHidden) as tf.Tensor2D);
      const ahead = tf.tensor1d(this.mtpAhead, 'int32');
      const step = mtpCached(this.model.view, c, hidden, ahead, this.mtp);
      this.mtp = step.cache;
      return tf.slice(step.logits, [this.mtpAhead.length - 1, 0], [1, this.V]);
    });
    tf.dispose(this.mtpHidden);
    this.mtpHidden = [];
    this.mtpAhead = [];
    const values = (await logits.data()) as Float32Array;
    logits.dispose();
    return argmax(values);
  }

  /** When `pending` does not fit, re-reads the last half of the context into fresh caches (as plain decoding does). */
  private resetIfFull(): void {
    if (!this.cache || this.cache.length + this.pending.length <= this.maxLen) return;
    for (const cache of [this.cache, this.mtp]) if (cache) disposeCache(cache);
    tf.dispose(this.mtpHidden);
    this.cache = this.mtp = null;
    this.mtpHidden = [];
    this.mtpAhead = [];
    this.pending = this.context.slice(-Math.floor(this.maxLen / 2));
  }

  dispose(): void {
    for (const cache of [this.cache, this.mtp]) if (cache) disposeCache(cache);
    tf.dispose(this.mtpHidden);
  }
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
