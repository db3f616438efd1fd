/** The training section: tokens/s of the `small` model and its two dense twins, through the library's Trainer. */
import {
  DeepSeekLM, countModelParams, denseTwin, plainModelConfig, preset, resolveModelConfig, type ResolvedModelConfig,
} from 'deepseek-moe-tfjs/model';
import { Rng, TextDataset, Trainer } from 'deepseek-moe-tfjs/train';
import { median, pairedRatio } from './timing.js';
import type { TrainingSection, TrainingVariant } from './schema.js';

export interface TrainingPlan {
  batchSize: number;
  seqLen: number;
  warmup: number;
  steps: number;
}

export const trainingPlans: Record<'quick' | 'full', TrainingPlan> = {
  quick: { batchSize: 2, seqLen: 64, warmup: 1, steps: 3 },
  full: { batchSize: 8, seqLen: 128, warmup: 2, steps: 8 },
};

/** Printable bytes from a seeded generator: the step's cost does not depend on the text. */
function syntheticCorpus(bytes: number): Record<string, string> {
  const rng = new Rng(7);
  return { synthetic: Array.from({ length: bytes }, () => String.fromCharCode(32 + Math.floor(rng.next() * 95))).join('') };
}

/**
 * Trains the models in turns, one step each per round (forward order in even rounds, backward in odd), so every
 * round sees the same machine: one trainer steps while the others are held at a step boundary. Returns each
 * model's step times, round by round, after `warmup` rounds.
 */
async function trainInTurns(configs: ResolvedModelConfig[], dataset: TextDataset, plan: TrainingPlan): Promise<number[][]> {
  const models = configs.map((c) => new DeepSeekLM(c));
  const trainers = models.map((model) => new Trainer(model, dataset, {
    steps: plan.warmup + plan.steps, batchSize: plan.batchSize, seqLen: plan.seqLen,
    evalEvery: 0, evalWindows: 1, warmupSteps: 0,
  }));
  const n = trainers.length;
  const rounds = Array.from({ length: plan.warmup + plan.steps }, (_, r) => r);
  const turns = rounds.flatMap((r) => trainers.map((_, j) => (r % 2 === 0 ? j : n - 1 - j)));
  const times = trainers.map(() => [] as number[]);
  const failures: string[] = [];
  let turn = 0;
  try {
    for (const t of trainers) void t.pause(); // held before their first step
    const runs = trainers.map((t) => t.run());
    trainers.forEach((t, j) => {
      t.on('error', (e) => {
        failures.push(e.message);
        for (const other of trainers) other.stop(); // a held run ends at once: nobody waits on a step that never comes
      });
      t.on('step', (e) => {
        if (e.step > plan.warmup) times[j]!.push(e.msPerStep);
        void t.pause();
        turn++;
        const next = trainers[turns[turn] ?? -1];
        // A trainer's last step is followed by its final evaluation: the next one starts once that is over.
        if (next) void (e.step === plan.warmup + plan.steps ? runs[j]!.then(() => next.resume()) : next.resume());
      });
    });
    trainers[turns[0]!]!.resume();
    await Promise.all(runs);
  } finally {
    trainers.forEach((t) => t.dispose());
    models.forEach((m) => m.dispose());
  }
  if (failures.length > 0) throw new Error(`training bench: ${failures[0]}`);
  return times;
}

const variantOf = (config: ResolvedModelConfig, times: number[], plan: TrainingPlan): TrainingVariant => {
  const msPerStep = median(times);
  const p = countModelParams(config);
  const tokensPerSecond = (plan.batchSize * plan.seqLen * 1000) / msPerStep;
  return { total: p.total, activated: p.activated, msPerStep, tokensPerSecond };
};

/**
 * With `asyncReads` (webgpu, webgl) the MoE blocks use capacity dispatch (factor 1.5, no finite check), as the
 * lab does, so no step makes a synchronous read; elsewhere the preset's dropless dispatch.
 */
export async function trainingSection(
  plan: TrainingPlan, asyncReads: boolean, tick: (label: string) => void,
): Promise<TrainingSection> {
  const small = plainModelConfig(preset('small'));
  const moeConfig = resolveModelConfig(asyncReads
    ? { ...small, moe: { ...small.moe, dispatch: 'capacity', capacityFactor: 1.5, checkFinite: false } }
    : small);
  const dataset = new TextDataset(syntheticCorpus(64 * 1024), { seqLen: plan.seqLen });
  const configs = [moeConfig, denseTwin(moeConfig, 'activated'), denseTwin(moeConfig, 'total')];
  const [moeMs, activatedMs, totalMs] = await trainInTurns(configs, dataset, plan) as [number[], number[], number[]];
  const [moe, denseActivated, denseTotal] = [moeMs, activatedMs, totalMs].map((t, i) => variantOf(configs[i]!, t, plan)) as
    [TrainingVariant, TrainingVariant, TrainingVariant];
  // tokens/s ratios: the dense twin's step time over the MoE's, round by round
  const activated = pairedRatio(activatedMs, moeMs);
  const total = pairedRatio(totalMs, moeMs);
  const perSecond = (v: TrainingVariant) => v.tokensPerSecond.toFixed(0);
  tick(`training: moe ${perSecond(moe)} tokens/s, dense =activated ${perSecond(denseActivated)}, ` +
    `=total ${perSecond(denseTotal)}; moe / =activated ${activated.ratio.toFixed(2)}`);
  return {
    model: 'small', batchSize: plan.batchSize, seqLen: plan.seqLen, steps: plan.steps,
    dispatch: moeConfig.moeConfig.dispatch,
    moe, denseActivated, denseTotal,
    ratios: {
      moeOverDenseActivatedTokensPerSecond: activated.ratio, moeOverDenseActivatedIqr: activated.iqr,
      moeOverDenseTotalTokensPerSecond: total.ratio, moeOverDenseTotalIqr: total.iqr,
    },
  };
}
