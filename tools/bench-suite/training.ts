/** The training section: tokens/s of the `small` model and its two dense twins, through the library's Trainer. */
import {
  DeepSeekLM, countModelParams, denseTwin, plainModelConfig, preset, resolveModelConfig, type ResolvedModelConfig,
} from 'deepseek-moe-tfjs/model';
import { Rng, TextDataset, Trainer } from 'deepseek-moe-tfjs/train';
import { median } from './timing.js';
import type { TrainingSection, TrainingVariant } from './schema.js';

export interface TrainingPlan {
  batchSize: number;
  seqLen: number;
  warmup: number;
  steps: number;
}

export const trainingPlans: Record<'quick' | 'full', TrainingPlan> = {
  quick: { batchSize: 2, seqLen: 64, warmup: 1, steps: 3 },
  full: { batchSize: 8, seqLen: 128, warmup: 2, steps: 5 },
};

/** Printable bytes from a seeded generator: the step's cost does not depend on the text. */
function syntheticCorpus(bytes: number): Record<string, string> {
  const rng = new Rng(7);
  return { synthetic: Array.from({ length: bytes }, () => String.fromCharCode(32 + Math.floor(rng.next() * 95))).join('') };
}

async function timeTraining(config: ResolvedModelConfig, dataset: TextDataset, plan: TrainingPlan): Promise<TrainingVariant> {
  const model = new DeepSeekLM(config);
  const trainer = new Trainer(model, dataset, {
    steps: plan.warmup + plan.steps, batchSize: plan.batchSize, seqLen: plan.seqLen, evalEvery: 0, evalWindows: 1, warmupSteps: 0,
  });
  const times: number[] = [];
  let failure = '';
  trainer.on('step', (e) => e.step > plan.warmup && times.push(e.msPerStep));
  trainer.on('error', (e) => (failure = e.message));
  try {
    await trainer.run();
  } finally {
    trainer.dispose();
    model.dispose();
  }
  if (failure) throw new Error(`training bench: ${failure}`);
  const msPerStep = median(times);
  const p = countModelParams(config);
  return { total: p.total, activated: p.activated, msPerStep, tokensPerSecond: (plan.batchSize * plan.seqLen * 1000) / msPerStep };
}

/**
 * With `asyncReads` (webgpu, webgl) the MoE blocks use capacity dispatch (factor 1.5, no finite check), as the
 * lab does, so no step makes a synchronous read; elsewhere the preset's dropless dispatch.
 */
export async function trainingSection(plan: TrainingPlan, asyncReads: boolean, tick: (label: string) => void): Promise<TrainingSection> {
  const small = plainModelConfig(preset('small'));
  const moeConfig = resolveModelConfig(asyncReads
    ? { ...small, moe: { ...small.moe, dispatch: 'capacity', capacityFactor: 1.5, checkFinite: false } }
    : small);
  const dataset = new TextDataset(syntheticCorpus(64 * 1024), { seqLen: plan.seqLen });
  const variants = { moe: moeConfig, denseActivated: denseTwin(moeConfig, 'activated'), denseTotal: denseTwin(moeConfig, 'total') };
  const result = {} as Record<keyof typeof variants, TrainingVariant>;
  for (const [name, config] of Object.entries(variants) as [keyof typeof variants, ResolvedModelConfig][]) {
    result[name] = await timeTraining(config, dataset, plan);
    tick(`training ${name}: ${result[name].tokensPerSecond.toFixed(0)} tokens/s`);
  }
  return {
    model: 'small', batchSize: plan.batchSize, seqLen: plan.seqLen, steps: plan.steps, dispatch: moeConfig.moeConfig.dispatch,
    ...result,
    ratios: {
      moeOverDenseActivatedTokensPerSecond: result.moe.tokensPerSecond / result.denseActivated.tokensPerSecond,
      moeOverDenseTotalTokensPerSecond: result.moe.tokensPerSecond / result.denseTotal.tokensPerSecond,
    },
  };
}
