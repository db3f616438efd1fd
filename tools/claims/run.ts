/**
 * Trains and measures the models of a claim table (tables.ts), seed by seed, with the library's own trainer: the
 * same code in `npm run bench:claims` (Node, wasm) and the Claims page (the training worker).
 */
import {
  countModelParams, DeepSeekLM, evaluateText, generateWithStats, plainModelConfig, resolveModelConfig,
  type ModelConfigInput,
} from 'deepseek-moe-tfjs/model';
import { readModelCheckpoint, specialisationReport, TextDataset, Trainer, upcycle } from 'deepseek-moe-tfjs/train';
import { freeRunningAcceptance } from './free-running.js';
import { teacherForcedAcceptance } from './mtp-acceptance.js';
import { promptsFrom } from './repeats.js';
import { bootstrapInterval } from './stats.js';
import type { ClaimTable, ClaimVariant } from './tables.js';
import type { ClaimResult, RunSettings, SeedResult, VariantResult } from './schema.js';

/**
 * How long a run trains: --quick or the full run; the budget pilot (`budget`) trains ten times the steps on the
 * corpus in `corpus`, a folder of the four domains' .txt files.
 */
export function runSettings(quick: boolean, seeds: number, budget?: { corpus: string }): RunSettings {
  const s = baseSettings(quick, seeds);
  return budget ? { ...s, steps: 10 * s.steps, evalEvery: 10 * s.evalEvery, tokensScale: 10, corpus: budget.corpus } : s;
}

function baseSettings(quick: boolean, seeds: number): RunSettings {
  return quick
    ? {
      quick, seeds, steps: 25, batchSize: 8, seqLen: 32, evalEvery: 25, evalWindows: 2, finalWindows: 4,
      decodeTokens: 16, decodePrompts: 4,
    }
    : {
      quick, seeds, steps: 600, batchSize: 8, seqLen: 64, evalEvery: 50, evalWindows: 8, finalWindows: 32,
      finalWholeTail: true, decodeTokens: 100, decodePrompts: 32,
    };
}

/** The small version the Claims page reruns in the worker: --quick's settings, two seeds. */
export const pageRunSettings: RunSettings = runSettings(true, 2);

/** Progress of a run: which table, model and seed, and the step. */
export interface ClaimProgress {
  claim: string;
  variant: string;
  seed: number;
  step: number;
  steps: number;
}

/** The prompts of the speculative-decoding measure before 2026-12 (runs without decodePrompts). */
const fixedPrompts = ['The ', '子曰：', 'function ', '12 + 7 = '];

/** One model of a table trained with one seed: its figures, and the probes measured on it (fineGrained). */
export interface SeedRun {
  result: SeedResult;
  probes: Record<string, number>;
}

/** Trains the model `variantKey` of a table with one seed, measures it and frees it. */
export async function runSeed(
  table: ClaimTable, variantKey: string, seed: number, s: RunSettings, corpus: Record<string, string>,
  onProgress: (p: ClaimProgress) => void = () => {},
): Promise<SeedRun> {
  const variant = table.variants.find((v) => v.key === variantKey);
  if (!variant) {
    throw new Error(`claims: expected a model of ${table.name} (${table.variants.map((v) => v.key).join(', ')}), ` +
      `but got ${JSON.stringify(variantKey)}.`);
  }
  const dataset = new TextDataset(corpus, { seqLen: s.seqLen });
  const probes: Record<string, number> = {};
  let start: Grown | null = null;
  if (variant.upcycledWith) {
    start = await grownAtWarmStart(table, variant, seed, s, dataset, onProgress);
    probes[`stepZeroGap.${variant.key}`] = start.gap;
  }
  const model = new DeepSeekLM(start ? start.modelConfig : { ...variant.model, seed });
  try {
    const result = await trainAndMeasure(model, dataset, variant, seed, s, table, onProgress, start);
    if (table.name === 'fineGrained' && variant.key === 'm4Shared') {
      probes.m4SharedWithoutShared = await withoutShared(model, s, corpus);
    }
    return { result, probes };
  } finally {
    model.dispose();
  }
}

/** The trainer settings of every model of a run (a warm start's too, so a grown model goes on with its schedule). */
const trainSettings = (s: RunSettings, seed: number, gradAccumSteps = 1) => ({
  steps: s.steps, batchSize: s.batchSize, seqLen: s.seqLen, evalEvery: s.evalEvery, evalWindows: s.evalWindows,
  warmupSteps: Math.min(20, Math.floor(s.steps / 10)), gradAccumSteps, seed,
});

/** A model grown from the table's warm start: its checkpoint, the dense phase's curve, and the step-0 gap. */
interface Grown {
  checkpoint: Uint8Array;
  modelConfig: ModelConfigInput;
  /** The dense phase's periodic validation points. */
  curve: [number, number][];
  /** The grown model's validation loss at the step it grew minus the dense model's there (0 when exact). */
  gap: number;
}

/**
 * Trains the table's warm-start model with this seed for its share of the run's steps (the same schedule and
 * batches as the unbroken dense run), then grows it with the variant's upcycle settings.
 */
async function grownAtWarmStart(
  table: ClaimTable, variant: ClaimVariant, seed: number, s: RunSettings, dataset: TextDataset,
  onProgress: (p: ClaimProgress) => void,
): Promise<Grown> {
  const warm = table.warmStart!;
  const at = Math.round(warm.share * s.steps);
  const model = new DeepSeekLM({ ...warm.model, seed });
  const trainer = new Trainer(model, dataset, trainSettings(s, seed));
  const curve: [number, number][] = [];
  trainer.on('eval', (e) => curve.push([e.step, e.valLoss]));
  trainer.on('step', (e) => {
    onProgress({ claim: table.name, variant: variant.key, seed, step: e.step, steps: s.steps });
    if (e.step >= at) trainer.stop();
  });
  try {
    await trainer.run();
    if (trainer.step !== at) throw new Error(`claims: the warm start stopped at step ${trainer.step}, not ${at}.`);
    const denseLoss = (await trainer.evaluate()).valLoss;
    const grown = upcycle(await trainer.checkpoint(), variant.upcycledWith);
    const modelConfig = readModelCheckpoint(grown.checkpoint).header.modelConfig;
    const probe = new DeepSeekLM(modelConfig);
    const probeTrainer = new Trainer(probe, dataset, trainSettings(s, seed));
    try {
      probeTrainer.restore(grown.checkpoint);
      const gap = (await probeTrainer.evaluate()).valLoss - denseLoss;
      return { checkpoint: grown.checkpoint, modelConfig, curve: curve.filter(([step]) => step < at), gap };
    } finally {
      probeTrainer.dispose();
      probe.dispose();
    }
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

async function trainAndMeasure(
  model: DeepSeekLM, dataset: TextDataset, variant: ClaimVariant, seed: number, s: RunSettings, table: ClaimTable,
  onProgress: (p: ClaimProgress) => void, start: Grown | null = null,
): Promise<SeedResult> {
  const trainer = new Trainer(model, dataset, trainSettings(s, seed, variant.gradAccumSteps));
  const curve: [number, number][] = start ? [...start.curve] : [];
  const maxVioBatch: number[] = [];
  try {
    if (start) {
      trainer.restore(start.checkpoint);
      curve.push([trainer.step, (await trainer.evaluate()).valLoss]); // the grown model at the step it grew
    }
  } catch (e) {
    trainer.dispose();
    throw e;
  }
  let failure: string | null = null;
  trainer.on('step', (e) => {
    if (e.layers.length > 0) maxVioBatch.push(e.layers.reduce((a, l) => a + l.maxViolation, 0) / e.layers.length);
    onProgress({ claim: table.name, variant: variant.key, seed, step: e.step, steps: s.steps });
  });
  trainer.on('eval', (e) => curve.push([e.step, e.valLoss]));
  trainer.on('error', (e) => (failure = e.message));
  try {
    await trainer.run();
  } finally {
    trainer.dispose();
  }
  if (failure) throw new Error(`${table.name}/${variant.key}, seed ${seed}: ${failure}`);
  const final = await finalEvaluation(model, dataset, s);
  const result: SeedResult = {
    seed, valLoss: final.valLoss, domainLoss: final.domainLoss, maxVioGlobal: final.maxVioGlobal,
    maxVioGlobalTrainingMix: final.maxVioGlobalTrainingMix, curve, maxVioBatch,
  };
  if (table.name === 'globalBatch') {
    result.specialisation = (await specialisationReport(model, dataset, s.finalWindows, s.seqLen)).map((b) => b.shares);
  }
  if (table.name === 'mtp' && model.config.mtpDepth > 0) {
    if (s.decodePrompts === undefined) {
      let drafted = 0;
      let accepted = 0;
      for (const prompt of fixedPrompts) {
        const options = { maxNewTokens: s.decodeTokens, temperature: 0, speculative: true };
        const { stats } = await generateWithStats(model, Array.from(new TextEncoder().encode(prompt)), options);
        drafted += stats!.drafted;
        accepted += stats!.accepted;
      }
      if (drafted > 0) result.acceptanceRate = accepted / drafted;
    } else {
      const prompts = promptsFrom(dataset.validationTexts, s.decodePrompts, s.seqLen / 2);
      result.freeRunning = await freeRunningAcceptance(model, prompts, s.decodeTokens);
      const { drafted, accepted } = result.freeRunning;
      if (drafted > 0) result.acceptanceRate = accepted / drafted;
    }
    result.teacherForced = {};
    for (const t of dataset.validationTexts) {
      const maxWindows = s.finalWholeTail ? undefined : s.finalWindows;
      const count = await teacherForcedAcceptance(model, t.bytes, s.seqLen, { maxWindows });
      const [low, high] = bootstrapInterval(count.windows);
      result.teacherForced[t.domain] = { eligible: count.eligible, accepted: count.accepted, low, high };
    }
  }
  return result;
}

/**
 * The final figures: MaxVio_global (both mixes) on more validation windows than the periodic evaluations, and the
 * loss on those windows or, with finalWholeTail, over every byte of each domain's held-out tail (windows of seqLen
 * bytes one after another: eight windows of a domain scored 0.015 nats/byte apart from 32 of the same model).
 */
async function finalEvaluation(model: DeepSeekLM, dataset: TextDataset, s: RunSettings) {
  const trainer = new Trainer(model, dataset, { seqLen: s.seqLen, evalWindows: s.finalWindows, steps: 1 });
  let windows: Awaited<ReturnType<Trainer['evaluate']>>;
  try {
    windows = await trainer.evaluate();
  } finally {
    trainer.dispose(); // its AdamW moments, which evaluation never uses
  }
  const { maxVioGlobal, maxVioGlobalTrainingMix } = windows;
  const balance = { maxVioGlobal, maxVioGlobalTrainingMix };
  if (!s.finalWholeTail) return { valLoss: windows.valLoss, domainLoss: windows.domainLoss, ...balance };
  const domainLoss: Record<string, number> = {};
  for (const t of dataset.validationTexts) {
    const score = await evaluateText(model.view, model.config, t.bytes, { seqLen: s.seqLen, batchSize: 16 });
    domainLoss[t.domain] = score.nll;
  }
  const valLoss = mean(Object.values(domainLoss));
  return { valLoss, domainLoss, ...balance };
}

/**
 * DeepSeekMoE section 4.5's probe: the trained model with a shared expert, evaluated with the shared expert
 * disabled and one more routed expert chosen instead (the same activated compute).
 */
async function withoutShared(model: DeepSeekLM, s: RunSettings, corpus: Record<string, string>): Promise<number> {
  const c = model.plainConfig;
  const moe = { ...c.moe, nSharedExperts: 0, topK: (c.moe.topK ?? 1) + 1 };
  const probe = new DeepSeekLM(plainModelConfig(resolveModelConfig({ ...c, moe })));
  try {
    const values = new Map<string, Float32Array>();
    for (const name of probe.weightNames) values.set(name, (await model.weights[name]!.data()) as Float32Array);
    probe.setWeights(values);
    const { valLoss } = await finalEvaluation(probe, new TextDataset(corpus, { seqLen: s.seqLen }), s);
    return valLoss;
  } finally {
    probe.dispose();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** A table's result from its runs, `runs[variant][seed]` in the table's order: means and spreads over seeds. */
export function claimResult(table: ClaimTable, runs: SeedRun[][]): ClaimResult {
  const probes: Record<string, number[]> = {};
  const variants = table.variants.map((variant, i): VariantResult => {
    const seeds = runs[i]!.map((r) => r.result);
    for (const run of runs[i]!) for (const [k, x] of Object.entries(run.probes)) (probes[k] ??= []).push(x);
    const losses = seeds.map((r) => r.valLoss);
    const accept = seeds.flatMap((r) => (r.acceptanceRate === undefined ? [] : [r.acceptanceRate]));
    const params = countModelParams(variant.model);
    return {
      key: variant.key, label: variant.label, params: { total: params.total, activated: params.activated }, seeds,
      valLoss: { mean: mean(losses), min: Math.min(...losses), max: Math.max(...losses) },
      maxVioGlobal: mean(seeds.map((r) => r.maxVioGlobal)),
      ...(seeds.every((r) => r.maxVioGlobalTrainingMix !== undefined)
        ? { maxVioGlobalTrainingMix: mean(seeds.map((r) => r.maxVioGlobalTrainingMix!)) }
        : {}),
      ...(accept.length > 0 ? { acceptanceRate: mean(accept) } : {}),
    };
  });
  return {
    name: table.name, title: table.title, source: table.source, paper: table.paper, baseline: table.baseline, variants,
    probes,
  };
}

/** Every model of `table`, every seed, one after another: the result with its means and spreads. */
export async function runClaim(
  table: ClaimTable, s: RunSettings, corpus: Record<string, string>, onProgress: (p: ClaimProgress) => void = () => {},
): Promise<ClaimResult> {
  const runs: SeedRun[][] = [];
  for (const variant of table.variants) {
    const seeds: SeedRun[] = [];
    for (let seed = 0; seed < s.seeds; seed++) {
      seeds.push(await runSeed(table, variant.key, seed, s, corpus, onProgress));
    }
    runs.push(seeds);
  }
  return claimResult(table, runs);
}
