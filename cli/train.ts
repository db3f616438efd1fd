/**
 * npm run train -- [--preset small] [--steps N] [--backend wasm] [--data FILE] [--dense-twin activated|total]
 *                  [--resume] [--checkpoint FILE] ...   (--help lists every flag)
 * Trains the DeepSeek-style LM with a progress bar, prints a per-expert load table at each evaluation, a sample
 * and the expert specialisation report at the end, and keeps a checkpoint on disk (written atomically). Ctrl-C or
 * SIGTERM finishes the step in flight, saves and exits; --resume continues the saved run with its settings.
 */
import cliProgress from 'cli-progress';
import { basename } from 'node:path';
import { backendOrder, initBackend, type BackendName } from 'deepseek-moe-tfjs';
import {
  DeepSeekLM, countModelParams, denseTwin, maxGenerated, preset, presets, resolveModelConfig, type ModelConfig,
} from 'deepseek-moe-tfjs/model';
import {
  TextDataset, Trainer, readModelCheckpoint, type LayerReport, type ModelCheckpoint, type TrainConfig,
  type TrainConfigInput,
} from 'deepseek-moe-tfjs/train';
import { resolveTrainConfig } from 'deepseek-moe-tfjs/config';
import { checkCheckpointOutput, readInputFile, writeFileAtomic } from '../tools/cli-files.js';
import { bundledCorpus, fileCorpus } from '../tools/corpus.js';
import { cliArgs } from './args.js';
import { loadTable, specialisationTable } from './tables.js';

const usage = `Usage: npm run train -- [options]
  --preset NAME          model preset: ${Object.keys(presets).join(', ')} (default small)
  --attention mha|mla    override the preset's attention
  --dense-twin KIND      train the dense twin with the MoE's 'activated' or 'total' parameters, or 'upcycle':
                         of width (shared + top-K) x expert width, which npm run upcycle grows into the MoE
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
  --checkpoint FILE      where the checkpoint lives (default checkpoints/<preset>[-dense-<kind>].ckpt), saved
                         after each evaluation, at the end and on Ctrl-C, always whole (a temporary file, renamed)
  --resume               continue the run saved in --checkpoint: its model and its settings (steps, batch size,
                         sequence length, learning rate, ...; a flag given overrides one, and is reported); the
                         model flags (--preset, --seed, the MoE and MTP flags) are refused. Without --steps it
                         finishes the saved run's schedule; a larger --steps stretches the cosine decay to it
  --force                replace an existing checkpoint at --checkpoint with a new run (a file that is not a
                         checkpoint is never replaced)
  --prompt TEXT          prompt of the final sample (default "The ")
  --sample-tokens N      length of the final sample (default 200)
  --seed N               seed of the weights and the batches (default 0)
  --help                 this text`;

const args = cliArgs(usage, {
  preset: { type: 'string' }, attention: { type: 'string' }, 'dense-twin': { type: 'string' },
  steps: { type: 'string' }, 'batch-size': { type: 'string' }, 'seq-len': { type: 'string' }, lr: { type: 'string' },
  'eval-every': { type: 'string' },
  backend: { type: 'string' }, data: { type: 'string' }, checkpoint: { type: 'string' }, resume: { type: 'boolean' },
  force: { type: 'boolean' },
  prompt: { type: 'string' }, 'sample-tokens': { type: 'string' }, seed: { type: 'string' },
  'grad-accum': { type: 'string' }, 'mtp-depth': { type: 'string' }, 'mtp-lambda': { type: 'string' },
  alpha1: { type: 'string' },
  'balance-scope': { type: 'string' }, 'bias-update': { type: 'string' }, dispatch: { type: 'string' },
  'capacity-factor': { type: 'string' }, 'drop-policy': { type: 'string' }, 'shared-expert-gate': { type: 'boolean' },
});
const { values, integer, choice } = args;
const fail: (message: string) => never = args.fail; // annotated, so the compiler knows it does not return
const resume = values.resume === true;

/** Flags that set the model (its config): a resumed run takes its model from the checkpoint, so they are refused. */
const modelFlags = [
  'preset', 'attention', 'dense-twin', 'seed', 'mtp-depth', 'mtp-lambda', 'alpha1', 'balance-scope', 'bias-update',
  'dispatch', 'capacity-factor', 'drop-policy', 'shared-expert-gate',
];
const given = (flag: string) => values[flag] !== undefined;
if (resume && modelFlags.some(given)) {
  const flags = modelFlags.filter(given).map((f) => `--${f}`).join(', ');
  fail(`${flags}: a resumed run keeps the model (and seed) of its checkpoint; drop ${flags}, or train a new ` +
    'model with another --checkpoint.');
}
const presetName = (values.preset as string | undefined) ?? 'small';
if (!(presetName in presets)) {
  fail(`expected --preset to be one of ${Object.keys(presets).join(', ')}, but got '${presetName}'.`);
}
const twin = choice('dense-twin', ['activated', 'total', 'upcycle'] as const);
const attention = choice('attention', ['mha', 'mla'] as const);
// webgpu runs through Dawn when the webgpu package is installed
const backendChoice = choice('backend', backendOrder.node);
const sampleTokens = integer('sample-tokens', 200, 0, maxGenerated);
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

// The model and the training settings: a new run's from the flags; a resumed run's from its checkpoint, with the
// training-setting flags given overriding the checkpoint's (said below).
let modelInput: ModelConfig;
let resumed: ModelCheckpoint | null = null;
let resumeBytes: Uint8Array | null = null;
try {
  if (resume) {
    try {
      resumeBytes = readInputFile(checkpointPath, '--checkpoint');
      resumed = readModelCheckpoint(resumeBytes);
    } catch (e) {
      throw new Error(`--resume: ${(e as Error).message.replace(/^--checkpoint: /, '')}`);
    }
    modelInput = resumed.header.modelConfig;
  } else {
    const p = preset(presetName);
    const base = { ...p, ...(attention ? { attention } : {}), ...mtpFlags, moe: { ...p.moe, ...moeFlags }, seed };
    modelInput = (twin ? denseTwin(base, twin) : resolveModelConfig(base)) as ModelConfig;
  }
} catch (e) {
  fail((e as Error).message);
}
const saved = resumed?.header.trainConfig;
/** A training setting: its flag, else the resumed checkpoint's value, else the new run's default. */
const setting = (field: keyof TrainConfig, fallback: number) => (saved?.[field] as number | undefined) ?? fallback;
const steps = integer('steps', setting('steps', 300));
const batchSize = integer('batch-size', setting('batchSize', 16));
const gradAccumSteps = integer('grad-accum', setting('gradAccumSteps', 1));
const seqLen = integer('seq-len', setting('seqLen', modelInput.maxSeqLen));
const learningRate = number('lr', 0, true) ?? setting('learningRate', 3e-3);
const evalEvery = integer('eval-every', setting('evalEvery', 50));
const warmupSteps = saved?.warmupSteps ?? Math.min(20, Math.floor(steps / 10));
const trainSettings: TrainConfigInput = {
  ...saved, steps, batchSize, gradAccumSteps, seqLen, learningRate, evalEvery, seed: saved?.seed ?? seed, warmupSteps,
};
if (resumed) {
  const at = resumed.header.step;
  if (steps <= at) {
    fail(given('steps')
      ? `expected --steps to be above the checkpoint's step (${at}) to continue its run, but got ${steps}.`
      : `the run in '${checkpointPath}' has taken all its ${at} steps; pass a larger --steps to continue it.`);
  }
}

let corpus: Record<string, string>;
try {
  corpus = values.data ? fileCorpus(values.data as string) : bundledCorpus();
} catch (e) {
  fail((e as Error).message);
}
try {
  resolveTrainConfig(trainSettings); // every flag checked before the backend starts (tfjs-node logs as it loads)
  if (!resumed) {
    checkCheckpointOutput(checkpointPath, '--checkpoint', values.force === true,
      'pass --resume to continue its run, another --checkpoint to start a new one');
  }
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
const label = resumed ? basename(checkpointPath) : `${presetName}${twin ? ` (dense twin, ${twin})` : ''}`;
console.log(
  `${label} on ${backend}: ${(params.total / 1e6).toFixed(2)}M parameters, ` +
    `${(params.activated / 1e6).toFixed(2)}M activated per token (${(100 * params.activatedRatio).toFixed(0)}%), ` +
    `${model.config.attention.toUpperCase()} cache ${model.cacheBytesPerToken} B/token` +
    (params.mtp
      ? `; ${params.mtp.modules} MTP module(s), ${(params.mtp.total / 1e6).toFixed(2)}M parameters apart`
      : ''),
);
const kb = (n: number) => (n / 1024).toFixed(0);
console.log(`data: ${dataset.sizes.map((s) => `${s.domain} ${kb(s.train)}+${kb(s.val)} KB`).join(', ')}`);
if (resumed) {
  const before = resumed.header.trainConfig;
  const changed = (Object.keys(before) as (keyof TrainConfig)[])
    .filter((k) => trainer.config[k] !== before[k])
    .map((k) => `${k} ${before[k]} -> ${trainer.config[k]}`);
  console.log(`resuming from ${checkpointPath} at step ${trainer.step} of ${steps}` +
    (changed.length ? `; changed from the checkpoint by flags: ${changed.join(', ')}` : '; its settings unchanged'));
  const from = resumed.header.upcycledFrom;
  if (from) {
    console.log(`upcycled from a dense model at step ${from.step} (granularity ${from.granularity}); AdamW has taken ` +
      `${resumed.header.optimizerStep ?? trainer.step} steps since`);
  }
}

/** Saves one at a time, each atomic (a temporary file, then a rename): the file on disk is always a whole one. */
let saving: Promise<void> = Promise.resolve();
function saveCheckpoint(): Promise<void> {
  const next = saving.catch(() => undefined).then(async () => writeFileAtomic(checkpointPath, await trainer.checkpoint()));
  saving = next;
  return next;
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
  saveCheckpoint().catch((e: Error) => {
    failed = true;
    log(`error: cannot save the checkpoint to '${checkpointPath}' (${e.message}); stopping, the file on disk ` +
      'is the last one saved.');
    trainer.stop();
  });
});
trainer.on('error', (e) => {
  failed = true;
  log(`error: ${e.message}`);
});

// Ctrl-C or SIGTERM: finish the step in flight, save, say where, exit. A second signal exits at once (the file
// on disk stays the last whole one). A terminal's Ctrl-C can arrive twice within milliseconds (npm passes it on
// to the process that already got it), so a second one counts only after a moment.
let stoppedBy: NodeJS.Signals | null = null;
let stoppedAt = 0;
const onSignal = (signal: NodeJS.Signals) => {
  if (stoppedBy === null) {
    stoppedBy = signal;
    stoppedAt = Date.now();
    log(`${signal}: stopping after this step and saving (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to exit ` +
      'at once)...');
    trainer.stop();
  } else if (Date.now() - stoppedAt > 300) {
    log(`${signal} again: exiting without saving; ${checkpointPath} holds the last checkpoint saved.`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

await trainer.run();
bars.stop();
await saving.catch(() => undefined);
if (failed) process.exit(1);
try {
  await saveCheckpoint();
} catch (e) {
  console.error(`error: cannot save the checkpoint to '${checkpointPath}' (${(e as Error).message}).`);
  process.exit(1);
}
console.log(`checkpoint: ${checkpointPath} (step ${trainer.step}; continue with --resume)`);
if (stoppedBy !== null) {
  console.log(`stopped by ${stoppedBy} at step ${trainer.step} of ${steps}.`);
  trainer.dispose();
  model.dispose();
  process.exit(stoppedBy === 'SIGINT' ? 130 : 143);
}
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
