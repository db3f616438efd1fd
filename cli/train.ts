/**
 * npm run train -- [--preset small] [--steps N] [--backend wasm] [--data FILE] [--dense-twin activated|total]
 *                  [--resume] [--checkpoint FILE] ...   (--help lists every flag)
 * Trains the DeepSeek-style LM with a progress bar, prints a per-expert load table at each evaluation, a sample
 * and the expert specialisation report at the end, and keeps a checkpoint on disk (written atomically).
 */
import cliProgress from 'cli-progress';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { backendOrder, initBackend, type BackendName } from 'deepseek-moe-tfjs';
import {
  DeepSeekLM, countModelParams, denseTwin, preset, presets, resolveModelConfig, type ModelConfig,
} from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer, readCheckpoint, type LayerReport } from 'deepseek-moe-tfjs/train';
import { resolveTrainConfig } from 'deepseek-moe-tfjs/config';
import { bundledCorpus, fileCorpus } from '../tools/corpus.js';
import { cliArgs } from './args.js';
import { loadTable, specialisationTable } from './tables.js';

const usage = `Usage: npm run train -- [options]
  --preset NAME          model preset: ${Object.keys(presets).join(', ')} (default small)
  --attention mha|mla    override the preset's attention
  --dense-twin KIND      train the dense twin with the MoE's 'activated' or 'total' parameters
  --steps N              optimizer steps (default 300)
  --batch-size N         sequences per optimizer step (default 16)
  --grad-accum N         micro-batches per optimizer step, dividing --batch-size (default 1)
  --mtp-depth N          DeepSeek-V3 multi-token-prediction modules (default: the preset's, 0)
  --mtp-lambda X         MTP loss factor (default 0.3)
  --alpha1 X             expert-level balance loss factor (default: the preset's, 0)
  --balance-scope S      what alpha1's f_i counts: microBatch or globalBatch (default microBatch)
  --bias-update RULE     sign or signCentered (default sign)
  --dispatch MODE        dropless or capacity (in training only; default dropless)
  --capacity-factor X    slots per expert for capacity, times the mean load (default 1.25)
  --drop-policy P        position or probs: which tokens an expert past capacity keeps (default position)
  --shared-expert-gate   Qwen2-MoE's gated shared expert
  --seq-len N            tokens per sequence (default: the model's maxSeqLen)
  --lr X                 peak learning rate (default 0.003)
  --eval-every N         evaluate and checkpoint every N steps (default 50)
  --backend NAME         tensorflow, wasm, cpu or webgpu (Dawn, optional); default: the best available
  --data FILE            train on this UTF-8 text file instead of the bundled corpus
  --checkpoint FILE      where the checkpoint lives (default checkpoints/<preset>[-dense-<kind>].ckpt)
  --resume               continue from the checkpoint file (the same --steps continues the same schedule
                         exactly; a larger one stretches the cosine decay to the new end)
  --prompt TEXT          prompt of the final sample (default "The ")
  --sample-tokens N      length of the final sample (default 200)
  --seed N               seed of the weights and the batches (default 0)
  --help                 this text`;

const args = cliArgs(usage, {
  preset: { type: 'string' }, attention: { type: 'string' }, 'dense-twin': { type: 'string' },
  steps: { type: 'string' }, 'batch-size': { type: 'string' }, 'seq-len': { type: 'string' }, lr: { type: 'string' },
  'eval-every': { type: 'string' },
  backend: { type: 'string' }, data: { type: 'string' }, checkpoint: { type: 'string' }, resume: { type: 'boolean' },
  prompt: { type: 'string' }, 'sample-tokens': { type: 'string' }, seed: { type: 'string' },
  'grad-accum': { type: 'string' }, 'mtp-depth': { type: 'string' }, 'mtp-lambda': { type: 'string' },
  alpha1: { type: 'string' },
  'balance-scope': { type: 'string' }, 'bias-update': { type: 'string' }, dispatch: { type: 'string' },
  'capacity-factor': { type: 'string' }, 'drop-policy': { type: 'string' }, 'shared-expert-gate': { type: 'boolean' },
});
const { values, integer, choice } = args;
const fail: (message: string) => never = args.fail; // annotated, so the compiler knows it does not return

const presetName = (values.preset as string | undefined) ?? 'small';
if (!(presetName in presets)) {
  fail(`expected --preset to be one of ${Object.keys(presets).join(', ')}, but got '${presetName}'.`);
}
const twin = choice('dense-twin', ['activated', 'total'] as const);
const attention = choice('attention', ['mha', 'mla'] as const);
// webgpu runs through Dawn when the webgpu package is installed
const backendChoice = choice('backend', backendOrder.node);
const steps = integer('steps', 300);
const batchSize = integer('batch-size', 16);
const evalEvery = integer('eval-every', 50);
const sampleTokens = integer('sample-tokens', 200, 0);
const seed = integer('seed', 0, 0);
/** A number flag (undefined when absent); `min` is exclusive when `open`. */
function number(name: string, min: number, open: boolean): number | undefined {
  const raw = values[name] as string | undefined;
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!Number.isFinite(v) || (open ? v <= min : v < min)) {
    fail(`expected --${name} to be a number ${open ? '>' : '>='} ${min}, but got '${raw}'.`);
  }
  return v;
}
const learningRate = number('lr', 0, true) ?? 3e-3;
const gradAccumSteps = integer('grad-accum', 1);
// The MoE and MTP fields set by flags; each is validated with the rest of the model config.
const moeFlags = Object.fromEntries(Object.entries({
  alpha1: number('alpha1', 0, false), balanceScope: choice('balance-scope', ['microBatch', 'globalBatch'] as const),
  biasUpdate: choice('bias-update', ['sign', 'signCentered'] as const),
  dispatch: choice('dispatch', ['dropless', 'capacity'] as const),
  capacityFactor: number('capacity-factor', 0, true), dropPolicy: choice('drop-policy', ['position', 'probs'] as const),
  sharedExpertGate: values['shared-expert-gate'] ? true : undefined,
}).filter(([, v]) => v !== undefined));
const mtpFlags = Object.fromEntries(Object.entries({
  mtpDepth: values['mtp-depth'] === undefined ? undefined : integer('mtp-depth', 0, 0),
  mtpLambda: number('mtp-lambda', 0, false),
}).filter(([, v]) => v !== undefined));
const defaultName = `${presetName}${twin ? `-dense-${twin}` : ''}${attention ? `-${attention}` : ''}`;
const checkpointPath = (values.checkpoint as string | undefined) ?? `checkpoints/${defaultName}.ckpt`;
if (values.resume && !existsSync(checkpointPath)) fail(`--resume: no checkpoint at '${checkpointPath}'.`);

// The model: from the flags, or (resuming without shape flags) from the checkpoint itself.
let modelInput: ModelConfig;
const resumeBytes = values.resume ? new Uint8Array(readFileSync(checkpointPath)) : null;
try {
  const shapeFlags = values.preset !== undefined || twin !== undefined || attention !== undefined ||
    Object.keys(moeFlags).length > 0 || Object.keys(mtpFlags).length > 0;
  if (resumeBytes && !shapeFlags) modelInput = readCheckpoint(resumeBytes).header.modelConfig;
  else {
    const p = preset(presetName);
    const base = { ...p, ...(attention ? { attention } : {}), ...mtpFlags, moe: { ...p.moe, ...moeFlags }, seed };
    modelInput = (twin ? denseTwin(base, twin) : resolveModelConfig(base)) as ModelConfig;
  }
} catch (e) {
  fail((e as Error).message);
}
const seqLen = integer('seq-len', modelInput.maxSeqLen);

let corpus: Record<string, string>;
try {
  corpus = values.data ? fileCorpus(values.data as string) : bundledCorpus();
} catch (e) {
  fail((e as Error).message);
}

const warmupSteps = Math.min(20, Math.floor(steps / 10));
const trainSettings = { steps, batchSize, gradAccumSteps, seqLen, learningRate, evalEvery, seed, warmupSteps };
try {
  resolveTrainConfig(trainSettings); // every flag checked before the backend starts (tfjs-node logs as it loads)
} catch (e) {
  fail((e as Error).message);
}

const backend = await initBackend(backendChoice as BackendName | undefined);
let dataset: TextDataset;
let model: DeepSeekLM;
let trainer: Trainer;
try {
  dataset = new TextDataset(corpus, { seqLen });
  model = new DeepSeekLM(modelInput);
  trainer = new Trainer(model, dataset, trainSettings);
  if (resumeBytes) trainer.restore(resumeBytes);
} catch (e) {
  fail((e as Error).message);
}

const params = countModelParams(model.plainConfig);
console.log(
  `${presetName}${twin ? ` (dense twin, ${twin})` : ''} on ${backend}: ${(params.total / 1e6).toFixed(2)}M parameters, ` +
    `${(params.activated / 1e6).toFixed(2)}M activated per token (${(100 * params.activatedRatio).toFixed(0)}%), ` +
    `${model.config.attention.toUpperCase()} cache ${model.cacheBytesPerToken} B/token` +
    (params.mtp
      ? `; ${params.mtp.modules} MTP module(s), ${(params.mtp.total / 1e6).toFixed(2)}M parameters apart`
      : ''),
);
const kb = (n: number) => (n / 1024).toFixed(0);
console.log(`data: ${dataset.sizes.map((s) => `${s.domain} ${kb(s.train)}+${kb(s.val)} KB`).join(', ')}`);
if (resumeBytes) console.log(`resuming from ${checkpointPath} at step ${trainer.step}`);

/** Writes next to the target and renames, so a crash mid-write never destroys the previous checkpoint. */
async function saveCheckpoint(bytes?: Uint8Array): Promise<void> {
  mkdirSync(dirname(checkpointPath), { recursive: true });
  writeFileSync(`${checkpointPath}.tmp`, bytes ?? (await trainer.checkpoint()));
  renameSync(`${checkpointPath}.tmp`, checkpointPath);
}

const bars = new cliProgress.MultiBar({
  format: 'step {value}/{total} [{bar}] loss {loss} | val {val} | {tps} tok/s | eta {eta_formatted}',
  hideCursor: true, clearOnComplete: false, noTTYOutput: true, notTTYSchedule: 5000,
}, cliProgress.Presets.shades_classic);
const bar = bars.create(steps, trainer.step, { loss: '-', val: '-', tps: '-' });
/** Above the bar on a terminal; plain lines otherwise (the bar then redraws only every few seconds). */
const log = (text: string) => (process.stdout.isTTY ? bars.log(`${text}\n`) : console.log(text));
let lastLayers: LayerReport[] = [];
let lastMtp: number[] = [];
let failed = false;

trainer.on('step', (e) => {
  lastLayers = e.layers;
  lastMtp = e.mtpLosses;
  bar.update(e.step, { loss: e.loss.toFixed(3), tps: e.tokensPerSecond.toFixed(0) });
});
trainer.on('eval', (e) => {
  bar.update({ val: e.valLoss.toFixed(3) });
  const domains = Object.entries(e.domainLoss).map(([d, l]) => `${d} ${l.toFixed(3)}`).join(', ');
  const balance = e.layers.length
    ? `; MaxVio_global ${e.layers.map((l) => `block ${l.block} ${l.maxVioGlobal.toFixed(3)}`).join(', ')}`
    : '';
  const mtp = lastMtp.length ? `; MTP loss ${lastMtp.map((l) => l.toFixed(3)).join(', ')} (training)` : '';
  log(`step ${e.step}: validation loss ${e.valLoss.toFixed(3)} (${domains})${balance}${mtp}\n${loadTable(lastLayers)}`);
  void saveCheckpoint();
});
trainer.on('error', (e) => {
  failed = true;
  log(`error: ${e.message}`);
});
process.once('SIGINT', () => {
  log('stopping after this step (Ctrl-C again to abort)...');
  trainer.stop();
});

await trainer.run();
bars.stop();
if (failed) process.exit(1);
await saveCheckpoint();
console.log(`checkpoint: ${checkpointPath} (step ${trainer.step}; continue with --resume)`);
if (sampleTokens > 0) {
  const prompt = (values.prompt as string | undefined) ?? 'The ';
  const text = await trainer.sample(prompt, { maxNewTokens: sampleTokens, temperature: 0.8, topK: 40, rng: seed });
  console.log(`\nsample (temperature 0.8, top-40):\n${prompt}${text}\n`);
  if (model.config.mtpDepth > 0) {
    const { text: greedy, stats } = await trainer.sampleWithStats(prompt, {
      maxNewTokens: sampleTokens, temperature: 0, speculative: true,
    });
    console.log(`greedy, self-speculative with the MTP module (exactly plain greedy's text):\n${prompt}${greedy}\n` +
      `drafts accepted ${stats!.accepted} of ${stats!.drafted} (${(100 * stats!.acceptanceRate).toFixed(1)}%), ` +
      `${stats!.tokensPerStep.toFixed(2)} tokens per main-model step\n`);
  }
}
const report = await trainer.specialisation();
if (report.length > 0) console.log(`expert specialisation (share of each domain's assignments per ` +
  `expert):\n${specialisationTable(report)}`);
trainer.dispose();
model.dispose();
