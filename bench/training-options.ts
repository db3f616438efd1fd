/**
 * npm run bench:options -- [--preset tiny] [--steps 300] [--backend wasm] [--tokens 200] [--json]
 * What the reference stacks' training options cost and give, measured side by side in one run:
 * - multi-token prediction: ms per training step with and without one MTP module (the same model otherwise),
 *   the validation loss of each main model, and self-speculative greedy decoding against plain greedy decoding
 *   (acceptance rate, tokens per main-model step, ms per generated token, and that the texts are identical);
 * - gradient accumulation: ms per optimizer step of the same global batch in 1 and 2 micro-batches, and with
 *   balanceScope 'globalBatch' (its extra tape-free forward per micro-batch).
 * Step times are medians over the steps after the first five. The last line is JSON.
 */
import { parseArgs } from 'node:util';
import { initBackend, type BackendName } from 'deepseek-moe-tfjs';
import {
  DeepSeekLM, generate, generateWithStats, preset, presets, type ModelConfigInput,
} from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer, type TrainConfigInput } from 'deepseek-moe-tfjs/train';
import { bundledCorpus } from '../tools/corpus.js';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'tiny' },
    steps: { type: 'string', default: '300' },
    tokens: { type: 'string', default: '200' },
    backend: { type: 'string', default: 'wasm' },
    json: { type: 'boolean', default: false },
  },
});
const fail = (message: string): never => {
  console.error(`bench:options: ${message}`);
  process.exit(2);
};
const presetName = values.preset!;
if (!(presetName in presets)) {
  fail(`expected --preset to be one of ${Object.keys(presets).join(', ')}, but got '${presetName}'.`);
}
const steps = Number(values.steps);
const tokens = Number(values.tokens);
for (const [flag, v] of [['steps', steps], ['tokens', tokens]] as const) {
  if (!Number.isInteger(v) || v < 10) fail(`expected --${flag} to be an integer >= 10, but got '${values[flag]}'.`);
}
const backend = await initBackend(values.backend as BackendName);
const say = (s: string) => (values.json ? process.stderr.write(`${s}\n`) : console.log(s));
const base = preset(presetName);
const seqLen = Math.min(64, base.maxSeqLen);
const dataset = new TextDataset(bundledCorpus(), { seqLen });
const median = (xs: number[]) => {
  const sorted = xs.slice(Math.min(5, xs.length - 1)).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** Trains `config` and returns the model (the caller disposes it), its median ms per step and final validation loss. */
async function train(config: ModelConfigInput, options: TrainConfigInput) {
  const model = new DeepSeekLM(config);
  const trainer = new Trainer(model, dataset, {
    batchSize: 8, seqLen, evalEvery: 0, evalWindows: 8, warmupSteps: Math.min(20, Math.floor(steps / 10)), ...options,
  });
  const times: number[] = [];
  let valLoss = NaN;
  trainer.on('step', (e) => times.push(e.msPerStep));
  trainer.on('eval', (e) => (valLoss = e.valLoss));
  trainer.on('error', (e) => fail(e.message));
  await trainer.run();
  trainer.dispose();
  return { model, msPerStep: median(times), valLoss };
}

// Multi-token prediction: the same main model with and without one module, the same batches.
say(`${presetName} on ${backend}: ${steps} steps of 8 x ${seqLen} tokens, with and without an MTP module`);
const plain = await train(base, { steps });
const mtp = await train({ ...base, mtpDepth: 1 }, { steps });
const prompts = ['The ', '子曰：', 'function ', '12 + 7 = '];
let plainMs = 0;
let specMs = 0;
let identical = true;
const totals = { mainSteps: 0, drafted: 0, accepted: 0, tokens: 0 };
for (const prompt of prompts) {
  const ids = Array.from(new TextEncoder().encode(prompt));
  let start = performance.now();
  const greedy = await generate(mtp.model, ids, { maxNewTokens: tokens, temperature: 0 });
  plainMs += performance.now() - start;
  start = performance.now();
  const spec = await generateWithStats(mtp.model, ids, { maxNewTokens: tokens, temperature: 0, speculative: true });
  specMs += performance.now() - start;
  identical &&= spec.tokens.every((t, i) => t === greedy[i]);
  for (const k of ['mainSteps', 'drafted', 'accepted'] as const) totals[k] += spec.stats![k];
  totals.tokens += tokens;
}
const speculation = {
  acceptanceRate: totals.accepted / totals.drafted, tokensPerMainStep: totals.tokens / totals.mainSteps,
  msPerTokenPlain: plainMs / totals.tokens, msPerTokenSpeculative: specMs / totals.tokens, identicalToGreedy: identical,
};
say(`MTP: ${mtp.msPerStep.toFixed(1)} ms/step against ${plain.msPerStep.toFixed(1)} without ` +
  `(${(mtp.msPerStep / plain.msPerStep).toFixed(2)}x); main-model validation loss ${mtp.valLoss.toFixed(4)} against ` +
  `${plain.valLoss.toFixed(4)} (one seed: differences below a few 0.01 are noise)`);
const { msPerTokenPlain, msPerTokenSpeculative } = speculation;
say(`speculative greedy decoding: ${(100 * speculation.acceptanceRate).toFixed(1)}% of drafts accepted, ` +
  `${speculation.tokensPerMainStep.toFixed(2)} tokens per main-model step, ${msPerTokenSpeculative.toFixed(2)} ` +
  `ms/token against ${msPerTokenPlain.toFixed(2)} plain (${(msPerTokenPlain / msPerTokenSpeculative).toFixed(2)}x); ` +
  `identical to plain greedy: ${identical}`);
plain.model.dispose();
mtp.model.dispose();

// Gradient accumulation: the same global batch of 8 sequences, whole or in two micro-batches.
const balanced = { ...base, moe: { ...base.moe, alpha1: 0.01 } };
const accumSteps = Math.min(steps, 40);
const accumulation: Record<string, number> = {};
for (const [key, config, gradAccumSteps] of [
  ['one batch', balanced, 1], ['2 micro-batches, microBatch', balanced, 2],
  ['2 micro-batches, globalBatch', { ...balanced, moe: { ...balanced.moe, balanceScope: 'globalBatch' as const } }, 2],
] as const) {
  const run = await train(config, { steps: accumSteps, gradAccumSteps });
  accumulation[key] = run.msPerStep;
  run.model.dispose();
}
const one = accumulation['one batch']!;
say(`accumulation (${accumSteps} steps of 8 sequences): ${Object.entries(accumulation).map(([k, v]) =>
  `${k} ${v.toFixed(1)} ms (${(v / one).toFixed(2)}x)`).join(', ')}`);

console.log(JSON.stringify({
  backend, preset: presetName, steps, seqLen, batchSize: 8,
  mtp: {
    msPerStep: mtp.msPerStep, msPerStepWithout: plain.msPerStep, valLoss: mtp.valLoss, valLossWithout: plain.valLoss,
  },
  speculation, accumulation,
}));
