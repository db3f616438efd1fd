/**
 * npm run bench:quality -- [--steps 300] [--batch-size 16] [--eval-every 100] [--seed 0] [--backend wasm] [--json]
 * Trains the `small` MoE preset and its two dense twins (same activated, same total parameters) for the same
 * tokens, batches and schedule, then compares validation loss (and its curve) and time per step. msPerStep is
 * the median over steps after the first five, evaluation excluded. The last line is JSON:
 * {"steps", "tokens", "valLoss": {"moe", "denseActivated", "denseTotal"}, "msPerStep": {...}, ...}.
 */
import cliProgress from 'cli-progress';
import { parseArgs } from 'node:util';
import { initBackend, type BackendName } from 'deepseek-moe-tfjs';
import {
  DeepSeekLM, countModelParams, denseTwin, plainModelConfig, preset, resolveModelConfig, type ResolvedModelConfig,
} from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer } from 'deepseek-moe-tfjs/train';
import { bundledCorpus } from '../tools/corpus.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '300' },
    'eval-every': { type: 'string', default: '100' },
    seed: { type: 'string', default: '0' },
    'batch-size': { type: 'string', default: '16' },
    backend: { type: 'string', default: 'wasm' },
    json: { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps);
const batchSize = Number(values['batch-size']);
const evalEvery = Number(values['eval-every']);
const seed = Number(values.seed);
for (const [flag, v, min] of [
  ['steps', steps, 1], ['batch-size', batchSize, 1], ['eval-every', evalEvery, 1], ['seed', seed, 0],
] as const) {
  if (!Number.isInteger(v) || v < min) {
    console.error(`bench:quality: expected --${flag} to be an integer >= ${min}, but got '${values[flag]}'.`);
    process.exit(2);
  }
}
const backend = await initBackend(values.backend as BackendName);
const moe = resolveModelConfig({ ...plainModelConfig(preset('small')), seed });
const variants: [key: 'moe' | 'denseActivated' | 'denseTotal', config: ResolvedModelConfig][] = [
  ['moe', moe], ['denseActivated', denseTwin(moe, 'activated')], ['denseTotal', denseTwin(moe, 'total')],
];
const seqLen = moe.maxSeqLen;
const dataset = new TextDataset(bundledCorpus(), { seqLen });
const evalWindows = 32;
const say = (s: string) => (values.json ? process.stderr.write(`${s}\n`) : console.log(s));

const valLoss: Record<string, number> = {};
const curve: Record<string, [step: number, valLoss: number][]> = {};
const domainLoss: Record<string, Record<string, number>> = {};
/** MaxVio_global (Loss-Free Balancing) of the MoE model's blocks on the validation set, at each evaluation. */
const maxVioGlobal: [step: number, mean: number, perBlock: number[]][] = [];
/** MaxVio_batch: the max violation of each step's batch, averaged over the MoE blocks. */
const maxVioBatch: number[] = [];
const msPerStep: Record<string, number> = {};
const params: Record<string, { total: number; activated: number }> = {};
for (const [key, config] of variants) {
  const model = new DeepSeekLM(config);
  const trainer = new Trainer(model, dataset, {
    steps, batchSize, seqLen, evalEvery, evalWindows, seed, warmupSteps: Math.min(20, Math.floor(steps / 10)),
  });
  const bar = new cliProgress.SingleBar({
    format: `${key.padEnd(15)} [{bar}] {value}/{total} loss {loss}`, stream: process.stderr, noTTYOutput: true,
    notTTYSchedule: 20000,
  });
  const times: number[] = [];
  bar.start(steps, 0, { loss: '-' });
  trainer.on('step', (e) => {
    times.push(e.msPerStep);
    if (e.layers.length > 0) maxVioBatch.push(e.layers.reduce((a, l) => a + l.maxViolation, 0) / e.layers.length);
    bar.update(e.step, { loss: e.loss.toFixed(3) });
  });
  trainer.on('eval', (e) => {
    (curve[key] ??= []).push([e.step, e.valLoss]);
    valLoss[key] = e.valLoss;
    domainLoss[key] = e.domainLoss;
    if (e.layers.length > 0) maxVioGlobal.push([e.step, e.maxVioGlobal, e.layers.map((l) => l.maxVioGlobal)]);
  });
  trainer.on('error', (e) => {
    throw new Error(e.message);
  });
  await trainer.run();
  bar.stop();
  const warm = times.slice(Math.min(5, times.length - 1)).sort((a, b) => a - b);
  msPerStep[key] = warm[Math.floor(warm.length / 2)]!;
  const p = countModelParams(config);
  params[key] = { total: p.total, activated: p.activated };
  say(`${key}: ${(p.total / 1e6).toFixed(2)}M total, ${(p.activated / 1e6).toFixed(2)}M activated; val loss ` +
    `${valLoss[key]!.toFixed(4)}; ${msPerStep[key]!.toFixed(0)} ms/step`);
  trainer.dispose();
  model.dispose();
}
const result = {
  backend, seed, steps, tokens: steps * batchSize * seqLen, batchSize, seqLen, evalWindowsPerDomain: evalWindows,
  valLoss, msPerStep, params, domainLoss, curve,
  balance: { maxVioGlobal, maxVioBatchLast: maxVioBatch.slice(-Math.min(20, maxVioBatch.length)) },
  ratios: {
    moeVsDenseActivatedMs: msPerStep.moe! / msPerStep.denseActivated!,
    moeVsDenseTotalMs: msPerStep.moe! / msPerStep.denseTotal!,
  },
};
if (!values.json) {
  const gap = (a: number, b: number) => `${(a - b >= 0 ? '+' : '')}${(a - b).toFixed(4)}`;
  console.log(`MoE - dense(activated) val loss: ${gap(valLoss.moe!, valLoss.denseActivated!)} nats/byte; MoE - ` +
    `dense(total): ${gap(valLoss.moe!, valLoss.denseTotal!)}`);
  const last = maxVioGlobal[maxVioGlobal.length - 1];
  const recent = result.balance.maxVioBatchLast;
  if (last) {
    console.log(`MoE balance: MaxVio_global ${last[1].toFixed(3)} on the validation set ` +
      `(per block ${last[2].map((v) => v.toFixed(3)).join(', ')}); ` +
      `MaxVio_batch ${(recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(3)} ` +
      `over the last ${recent.length} steps`);
  }
}
console.log(JSON.stringify(result));
