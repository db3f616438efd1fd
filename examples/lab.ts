/** The language model lab page: configuration, live charts, samples and checkpoints. The worker trains. */
import * as Comlink from 'comlink';
import { del, entries, set } from 'idb-keyval';
import englishUrl from '../data/corpus/english.txt?url';
import chineseUrl from '../data/corpus/chinese.txt?url';
import codeUrl from '../data/corpus/code.txt?url';
import arithmeticUrl from '../data/corpus/arithmetic.txt?url';
import type { ModelConfig } from 'deepseek-moe-tfjs/config';
import { countModelParams, denseTwin, plainModelConfig } from 'deepseek-moe-tfjs/config';
import { presets } from 'deepseek-moe-tfjs/config';
import { readCheckpoint } from 'deepseek-moe-tfjs/config';
import { fromHuggingFace, toHuggingFace } from 'deepseek-moe-tfjs/hf';
import { zipSync } from 'fflate';
import type { TrainConfigInput } from 'deepseek-moe-tfjs/config';
import type { LayerReport, RoutingTrace } from 'deepseek-moe-tfjs/config';
import type { WorkerEvent } from '../workers/protocol.js';
import { BackendPicker, wireRestart } from './common/backend-picker.js';
import { drawHeatmap, LineChart, loadColour, signedColour } from './common/charts.js';
import { $, download, exposeState, onClick, showFailure } from './common/page.js';
import { WorkerClient } from './common/worker-client.js';
import { RoutingView } from './lab-routing.js';

/** Columns kept in the heatmaps: the most recent steps. */
const historyLength = 300;

const status = $('status');
const client = new WorkerClient(showFailure);
const picker = new BackendPicker(client, $<HTMLSelectElement>('backend'), $('backend-note'), () => setRunning('idle'));
const lossChart = new LineChart($('loss'), [
  { label: 'training', colour: '#0969da' },
  { label: 'validation', colour: '#cf222e', points: true },
], { yLabel: 'nats / byte' });

const state = exposeState({
  state: 'idle' as string, losses: [] as number[], valLosses: [] as number[], tokensPerSecond: 0, sample: '',
  checkpoints: 0, error: '', loadedStep: -1, maxVioGlobal: -1, acceptanceRate: -1,
  routing: null as { trace: RoutingTrace; block: number } | null, grownAt: -1,
});

let history: LayerReport[][] = [];
/** Main-model blocks of the running job: MoE blocks from here on are its MTP modules'. */
let blocksInModel = 0;
let drawPending = false;
let lastStep = 0;
/** Whether the current job's model is dense (it can grow into a MoE while paused). */
let jobIsDense = false;

/**
 * The preset without the finite check, so a step makes no GPU-to-CPU read besides the trainer's one (dropless on
 * the grouped path sizes nothing).
 */
function modelConfig(): ModelConfig {
  const p = presets[$<HTMLSelectElement>('preset').value]!;
  const pick = <T extends string>(id: string) => $<HTMLSelectElement>(id).value as T;
  const moe = {
    ...p.moe, checkFinite: false,
    alpha1: Number($<HTMLInputElement>('alpha1').value),
    balanceScope: pick<'microBatch' | 'globalBatch'>('balance-scope'),
    biasUpdate: pick<'sign' | 'signCentered'>('bias-update'),
    dispatch: pick<'dropless' | 'capacity'>('dispatch'), capacityFactor: 1,
    dropPolicy: pick<'position' | 'probs'>('drop-policy'),
    sharedExpertGate: $<HTMLInputElement>('shared-gate').checked,
  };
  const config = { ...p, mtpDepth: Number(pick('mtp')), moe };
  return pick('ffn') === 'dense' ? plainModelConfig(denseTwin(config, 'upcycle')) : config;
}

function trainConfig(): TrainConfigInput {
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  return {
    steps: num('steps'), batchSize: num('batch'), gradAccumSteps: num('accum'), seqLen: num('seqlen'),
    learningRate: num('lr'), evalEvery: 50, evalWindows: 4, warmupSteps: 20,
  };
}

function showParams(): void {
  const c = countModelParams(modelConfig());
  const k = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`);
  $('params').textContent = `${$<HTMLSelectElement>('preset').value}: ${k(c.total)} parameters in total, ` +
    `${k(c.activated)} activated per token ` +
    `(${(100 * c.activatedRatio).toFixed(0)}%); routed experts hold ${k(c.totalParts.routedExperts)} of them, of ` +
      `which a token uses ${k(c.activatedParts.routedExperts)}.` +
    (c.mtp
      ? ` The ${c.mtp.modules} MTP module(s) add ${k(c.mtp.total)} (${k(c.mtp.activated)} activated), counted apart.`
      : '');
}

async function corpus(): Promise<Record<string, string>> {
  const mine = (document.querySelector('input[name=corpus]:checked') as HTMLInputElement).value === 'mine';
  if (mine) return { mine: $<HTMLTextAreaElement>('text').value };
  const urls = { english: englishUrl, chinese: chineseUrl, code: codeUrl, arithmetic: arithmeticUrl };
  const texts = await Promise.all(Object.values(urls).map(async (u) => (await fetch(u)).text()));
  return Object.fromEntries(Object.keys(urls).map((k, i) => [k, texts[i]!]));
}

function layerFigures(reports: LayerReport[]): void {
  const figure = $('layers');
  figure.querySelectorAll('.layer').forEach((el) => el.remove());
  for (const r of reports) {
    const div = document.createElement('div');
    div.className = 'layer';
    div.innerHTML = `<h2>block ${r.block}</h2><canvas class="heat" id="load-${r.block}" width="${historyLength}" ` +
      `height="${r.expertLoad.length}"></canvas>` +
      (r.bias.length ? `<div class="note">selection bias per expert over time (blue negative, orange ` +
        `positive)</div><canvas class="heat" id="bias-${r.block}" width="${historyLength}" height="${r.bias.length}"></canvas>` : '') +
      `<div class="note" id="layer-note-${r.block}"></div>` +
      `<div class="note">where each domain's validation tokens go (rows: <span ` +
        `id="domains-${r.block}">domains</span>; columns: experts; updated at each evaluation)</div>` +
      `<canvas class="heat" id="spec-${r.block}" width="${r.expertLoad.length}" height="4"></canvas>`;
    figure.append(div);
  }
}

function draw(): void {
  const latest = history[history.length - 1];
  if (!latest) return;
  latest.forEach((r, i) => {
    const E = r.expertLoad.length;
    const columns = history.map((step) => step[i]!.expertLoad.map((l) => l * E));
    drawHeatmap($<HTMLCanvasElement>(`load-${r.block}`), columns, loadColour);
    if (r.bias.length) {
      const biases = history.map((step) => step[i]!.bias);
      const limit = Math.max(1e-6, ...biases.flat().map(Math.abs));
      drawHeatmap($<HTMLCanvasElement>(`bias-${r.block}`), biases, (v) => signedColour(v, limit));
    }
    const kind = r.block >= blocksInModel ? ' (MTP module)' : '';
    $(`layer-note-${r.block}`).textContent = `MaxVio_batch ${r.maxViolation.toFixed(2)}${kind} · dropped ` +
      `${(100 * r.droppedFraction).toFixed(2)}% · ` +
      `router entropy ${r.routerEntropy.toFixed(2)} nats` +
      (r.bias.length
        ? ` · bias range ${Math.min(...r.bias).toFixed(3)} to ${Math.max(...r.bias).toFixed(3)}`
        : '');
  });
}

let specialisationPending = false;

/** Asks the worker where each domain is routed and draws it under each block (one request at a time). */
async function showSpecialisation(): Promise<void> {
  if (specialisationPending || history.length === 0) return;
  specialisationPending = true;
  try {
    for (const b of await client.api.specialisation()) {
      const canvas = document.getElementById(`spec-${b.block}`) as HTMLCanvasElement | null;
      if (!canvas) continue;
      const E = b.shares[0]?.length ?? 0;
      canvas.height = b.domains.length;
      const columns = Array.from({ length: E }, (_, e) => b.shares.map((row) => row[e]! * E)); // 1 = a uniform share
      drawHeatmap(canvas, columns, loadColour);
      $(`domains-${b.block}`).textContent = b.domains.join(', ');
    }
  } catch {
    // The job ended or was replaced meanwhile: the next evaluation asks again.
  } finally {
    specialisationPending = false;
  }
}

function scheduleDraw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

function onEvent(event: WorkerEvent): void {
  if (event.type === 'step') {
    lastStep = event.step;
    if (history.length === 0) layerFigures(event.layers);
    history.push(event.layers);
    if (history.length > historyLength) history.shift();
    lossChart.push(event.step, [event.loss, null]);
    state.losses.push(event.loss);
    state.tokensPerSecond = event.tokensPerSecond;
    $('numbers').textContent = `step ${event.step} · loss ${event.loss.toFixed(3)} · ${Math.round(event.tokensPerSecond)} tokens/s · ` +
      `${event.msPerStep.toFixed(0)} ms/step · learning rate ${event.learningRate.toExponential(2)} · gradient norm ` +
        `${event.gradNorm.toFixed(2)}` +
      (event.mtpLosses.length ? ` · MTP loss ${event.mtpLosses.map((l) => l.toFixed(3)).join(', ')}` : '');
    if (state.state === 'running') status.textContent = `training on ${picker.active}: step ${event.step}`;
    scheduleDraw();
  } else if (event.type === 'eval') {
    lossChart.push(event.step, [null, event.valLoss]);
    state.valLosses.push(event.valLoss);
    state.maxVioGlobal = event.maxVioGlobal;
    $('eval-numbers').textContent = `validation at step ${event.step}: ${event.valLoss.toFixed(3)} · MaxVio_global ` +
      `(the load over the whole validation set) ` +
      `${event.layers.map((l) => `block ${l.block} ${l.maxVioGlobal.toFixed(2)}`).join(', ')}`;
    void showSpecialisation();
  } else if (event.type === 'done' || event.type === 'error') {
    setRunning('finished');
    status.textContent = event.type === 'done' ? `${event.stopped ? 'stopped' : 'done'} at step ${event.step}` : `error: ${event.message}`;
    if (event.type === 'error') state.error = event.message;
  }
}

function setRunning(s: 'idle' | 'starting' | 'running' | 'paused' | 'finished'): void {
  state.state = s;
  const has = s === 'running' || s === 'paused' || s === 'finished';
  $<HTMLButtonElement>('train').disabled = s === 'running' || s === 'paused' || s === 'starting';
  $<HTMLButtonElement>('pause').disabled = !(s === 'running' || s === 'paused');
  $<HTMLButtonElement>('pause').textContent = s === 'paused' ? 'Resume' : 'Pause';
  $<HTMLButtonElement>('stop').disabled = !(s === 'running' || s === 'paused');
  for (const id of ['generate', 'save', 'download', 'download-hf', 'route', 'route-sample']) {
    $<HTMLButtonElement>(id).disabled = !has;
  }
  picker.disabled = s === 'running';
  $<HTMLButtonElement>('grow').disabled = !(s === 'paused' && jobIsDense);
}

/** Starts a fresh job; `paused` holds it before its first step (used to load a checkpoint into it). */
async function start(model: ModelConfig, train: TrainConfigInput, paused = false): Promise<boolean> {
  setRunning('starting');
  status.textContent = 'reading the corpus…';
  try {
    const text = await corpus();
    history = [];
    lossChart.clear();
    Object.assign(state, { losses: [], valLosses: [], error: '' });
    blocksInModel = model.nLayers;
    jobIsDense = model.ffn === 'dense';
    await client.api.start({ kind: 'lab', model, train, corpus: text }, Comlink.proxy(onEvent));
    if (paused) await client.api.pause();
    if (state.state === 'starting') setRunning(paused ? 'paused' : 'running'); // unless its events already ended it
    status.textContent = paused ? 'paused' : `training on ${picker.active}…`;
    return true;
  } catch (e) {
    setRunning('idle');
    status.textContent = `could not start: ${(e as Error).message}`;
    state.error = (e as Error).message;
    return false;
  }
}

async function refreshCheckpoints(): Promise<void> {
  const saved = (await entries<string, { step: number; preset: string; savedAt: string; bytes: Uint8Array }>())
    .filter(([key]) => key.startsWith('checkpoint:'))
    .sort(([a], [b]) => (a < b ? 1 : -1));
  state.checkpoints = saved.length;
  $('checkpoints').replaceChildren(...saved.map(([key, c]) => {
    const row = document.createElement('tr');
    row.innerHTML = `<td>${c.preset}, step ` +
      `${c.step}</td><td>${new Date(c.savedAt).toLocaleString()}</td><td>${(c.bytes.length / 1024).toFixed(0)} KB</td>` +
      `<td><button data-load>Load</button> <button data-delete>Delete</button></td>`;
    row.querySelector('[data-load]')!.addEventListener('click', () => void load(c.bytes, `${c.preset}, step ${c.step}`));
    row.querySelector('[data-delete]')!.addEventListener('click', async () => {
      await del(key);
      await refreshCheckpoints();
    });
    return row;
  }));
}

/** Loads a checkpoint into a new paused job. A file that fails its checks changes nothing. */
async function load(bytes: Uint8Array, label: string): Promise<void> {
  const note = $('checkpoint-note');
  try {
    const { header } = readCheckpoint(bytes); // checks the file before anything changes
    const model = header.modelConfig as ModelConfig;
    // A fresh job of the checkpoint's own configs, held before its first step, then the checkpoint on top.
    // Held, the current job is replaced quietly (no late 'done' from it).
    if ((await client.api.state()) === 'running') await client.api.pause();
    if (!(await start(model, { ...header.trainConfig }, true))) return;
    const step = await client.api.load(bytes);
    state.loadedStep = step;
    setRunning('paused');
    status.textContent = `paused at step ${step} (loaded ${label})`;
    note.textContent = `Loaded ${label}. Resume to train on from step ${step}.`;
    note.classList.remove('error');
  } catch (e) {
    note.textContent = `Could not load ${label}: ${(e as Error).message}`;
    note.classList.add('error');
  }
}

const reportStatus = (message: string) => {
  status.textContent = `failed: ${message}`;
};
const reportCheckpoint = (message: string) => {
  $('checkpoint-note').textContent = `failed: ${message}`;
  $('checkpoint-note').classList.add('error');
};

/** A short name for a checkpoint's model: its preset's, or its width and depth. */
function modelName(c: ModelConfig): string {
  const match = Object.entries(presets).find(([, p]) => p.dModel === c.dModel && p.nLayers === c.nLayers &&
    p.moe?.nRoutedExperts === c.moe?.nRoutedExperts);
  const name = match ? match[0] : `d ${c.dModel}, ${c.nLayers} layers`;
  return c.ffn === 'dense' ? `${name} (dense)` : name;
}

$('train').addEventListener('click', () => void start(modelConfig(), trainConfig()));
onClick('pause', async () => {
  if (state.state === 'paused') {
    await client.api.resume();
    setRunning('running');
  } else {
    await client.api.pause();
    setRunning('paused');
    status.textContent = `paused at step ${lastStep}`;
  }
}, reportStatus);
onClick('stop', () => client.api.stop(), reportStatus);
/** Upcycling: the paused dense job becomes a MoE job at the same step, held paused; the loss curve goes on. */
onClick('grow', async () => {
  const { step, exact } = await client.api.grow({}, Comlink.proxy(onEvent));
  history = []; // the MoE blocks' figures appear with the next step
  jobIsDense = false;
  state.grownAt = step;
  setRunning('paused');
  status.textContent = `grown into a DeepSeekMoE at step ${step} (first forward ${exact ? 'unchanged' : 'changed'}); ` +
    'resume to train it on';
}, reportStatus);
onClick('generate', async () => {
  const prompt = $<HTMLInputElement>('prompt').value;
  const speculative = $<HTMLInputElement>('speculative').checked;
  // drafts are verified greedily
  const temperature = speculative ? 0 : Number($<HTMLInputElement>('temperature').value);
  const maxNewTokens = Number($<HTMLInputElement>('sample-tokens').value);
  $('sample').textContent = 'generating…';
  $('speculation').textContent = '';
  try {
    const { text, stats } = await client.api.sampleWithStats(prompt, {
      maxNewTokens, temperature, topK: 0, rng: 1, speculative,
    });
    state.sample = text;
    $('sample').textContent = prompt + text;
    if (stats) {
      state.acceptanceRate = stats.acceptanceRate;
      $('speculation').textContent = `Speculative decoding (greedy): the MTP module's draft of the token after next ` +
        `was accepted ${stats.accepted} of ${stats.drafted} times (${(100 * stats.acceptanceRate).toFixed(0)}%; ` +
        `DeepSeek-V3 reports 85-90%), ${stats.tokensPerStep.toFixed(2)} tokens per main-model step; the text is ` +
        `exactly plain greedy decoding's.`;
    }
  } catch (e) {
    $('sample').textContent = `could not sample: ${(e as Error).message}`;
  }
}, reportStatus);
onClick('save', async () => {
  const bytes = await client.api.save();
  const { header } = readCheckpoint(bytes);
  const savedAt = new Date().toISOString();
  await set(`checkpoint:${savedAt}`, { step: header.step, preset: modelName(header.modelConfig as ModelConfig), savedAt, bytes });
  $('checkpoint-note').textContent = `Saved step ${header.step}.`;
  $('checkpoint-note').classList.remove('error');
  await refreshCheckpoints();
}, reportCheckpoint);
onClick('download', async () => {
  const bytes = await client.api.save();
  download(`deepseek-moe-step${readCheckpoint(bytes).header.step}.ckpt`, bytes as Uint8Array<ArrayBuffer>);
}, reportCheckpoint);
/** The model as a zipped Hugging Face folder: config.json, model.safetensors, the byte tokenizer. */
onClick('download-hf', async () => {
  const checkpoint = readCheckpoint(await client.api.save());
  const folder = toHuggingFace(checkpoint); // refuses, naming the field, what DeepSeek-V2/V3 cannot express
  const name = `deepseek-moe-step${checkpoint.header.step}`;
  const zip = zipSync(Object.fromEntries(Object.entries(folder.files).map(([file, bytes]) => [`${name}/${file}`, bytes])));
  download(`${name}-hf.zip`, zip as Uint8Array<ArrayBuffer>, 'application/zip');
  const note = $('checkpoint-note');
  note.textContent = `Downloaded ${name}-hf.zip (${folder.modelType}). Unzip it, then in Python: ` +
    `AutoModelForCausalLM.from_pretrained('${name}'). ${folder.notes.join(' ')}`;
  note.classList.remove('error');
}, reportCheckpoint);
/** A Hugging Face DeepSeek-V2/V3 folder (its top-level files) into a checkpoint, loaded like an uploaded one. */
$<HTMLInputElement>('open-hf').addEventListener('change', async (e) => {
  const picked = [...((e.target as HTMLInputElement).files ?? [])].filter((f) => f.webkitRelativePath.split('/').length <= 2);
  if (picked.length === 0) return;
  const byName = new Map(picked.map((f) => [f.name, f]));
  const folderName = picked[0]!.webkitRelativePath.split('/')[0] || 'folder';
  try {
    const read = async (name: string) => new Uint8Array(await byName.get(name)!.arrayBuffer());
    const imported = await fromHuggingFace({ names: [...byName.keys()], read });
    await load(imported.checkpoint, `${folderName} (${imported.modelType})`);
    if (imported.notes.length > 0) $('checkpoint-note').textContent += ` ${imported.notes.join(' ')}`;
  } catch (err) {
    reportCheckpoint(`could not open ${folderName}: ${(err as Error).message}`);
  }
});
$<HTMLInputElement>('upload').addEventListener('change', async (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) await load(new Uint8Array(await file.arrayBuffer()), file.name);
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', async (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = e.dataTransfer?.files[0];
  if (file) {
    $<HTMLTextAreaElement>('text').value = await file.text();
    (document.querySelector('input[name=corpus][value=mine]') as HTMLInputElement).checked = true;
  }
});
for (const id of ['preset', 'mtp', 'shared-gate', 'ffn']) $(id).addEventListener('change', showParams);
wireRestart(client, picker, () => setRunning('idle'));
const routing = new RoutingView((text) => client.api.route(text), (trace, block) => {
  state.routing = { trace, block };
});
onClick('route', () => routing.show($<HTMLTextAreaElement>('route-text').value), reportStatus);
onClick('route-sample', async () => {
  const text = $('sample').textContent ?? '';
  $<HTMLTextAreaElement>('route-text').value = text;
  await routing.show(text);
}, reportStatus);

setRunning('idle');
showParams();
await refreshCheckpoints();
await picker.init();
