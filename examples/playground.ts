/** The routing playground page: controls, the painted plane and the charts. The worker does the training. */
import * as Comlink from 'comlink';
import { planeTask, type PlaneData, type PlaneTaskName } from '../workers/playground/plane.js';
import type { Balancing, PlaneClassifierConfigInput, PlaneStepReport, RoutingMap } from '../workers/playground/classifier.js';
import type { WorkerEvent } from '../workers/protocol.js';
import { BackendPicker, wireRestart } from './common/backend-picker.js';
import { expertColour, expertRgb, LineChart } from './common/charts.js';
import { WorkerClient } from './common/worker-client.js';
import { $, exposeState, onClick, showFailure } from './common/page.js';

const classColours = ['#1f2328', '#ffffff', '#bf3989'];
const mapEvery = 10;
const mapResolution = 64;
/** The training set: the worker draws the same points from the same task, size and seed. */
const nPoints = 1024;
const seed = 0;

const status = $('status');
const client = new WorkerClient(showFailure);
const picker = new BackendPicker(client, $<HTMLSelectElement>('backend'), $('backend-note'), () => setRunning('idle'));
const lossChart = new LineChart($('loss'), [
  { label: 'loss', colour: '#0969da' },
  { label: 'accuracy', colour: '#1a7f37' },
], { yLabel: 'nats / share' });
const violationChart = new LineChart($('violation'), [
  { label: 'max violation (max load / mean − 1)', colour: '#cf222e' },
], { yLabel: 'violation', height: 150 });

/** What the tests read: plain data mirrored from the page. */
const state = exposeState({
  state: 'idle' as string, losses: [] as number[], accuracy: [] as number[], violations: [] as number[], maps: 0,
  expertsOnPlane: 0, error: '',
});

let data: PlaneData | null = null;
let latestMap: RoutingMap | null = null;
let latestReport: PlaneStepReport | null = null;
let drawPending = false;

function readConfig(): PlaneClassifierConfigInput {
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  return {
    task: $<HTMLSelectElement>('task').value as PlaneTaskName,
    nRoutedExperts: num('experts'), topK: num('topk'), nSharedExperts: num('shared'),
    scoreFunc: $<HTMLSelectElement>('score').value as 'sigmoid' | 'softmax',
    balancing: $<HTMLSelectElement>('balancing').value as Balancing, balanceStrength: num('strength'),
    nPoints, seed,
  };
}

function paintPlane(map: RoutingMap): void {
  const R = map.resolution;
  const routing = new ImageData(R, R);
  const predicted = new ImageData(R, R);
  for (let i = 0; i < R * R; i++) {
    const [r, g, b] = expertRgb(map.expert[i]!);
    const a = 0.25 + 0.75 * map.confidence[i]!;
    routing.data.set([255 - a * (255 - r), 255 - a * (255 - g), 255 - a * (255 - b), 255], 4 * i);
    const shade = [[200, 205, 214], [250, 250, 250], [240, 190, 220]][map.predicted[i]!] ?? [0, 0, 0];
    predicted.data.set([...shade, 255], 4 * i);
  }
  for (const [id, image] of [['plane', routing], ['predicted', predicted]] as const) {
    const canvas = $<HTMLCanvasElement>(id);
    const ctx = canvas.getContext('2d')!;
    const small = new OffscreenCanvas(R, R);
    small.getContext('2d')!.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    drawPoints(ctx, canvas.width);
  }
}

function drawPoints(ctx: CanvasRenderingContext2D, size: number): void {
  if (!data) return;
  const n = Math.min(data.labels.length, 600);
  for (let i = 0; i < n; i++) {
    const x = ((data.points[2 * i]! + 1) / 2) * size;
    const y = ((1 - data.points[2 * i + 1]!) / 2) * size;
    ctx.beginPath();
    ctx.arc(x, y, 2.6, 0, 2 * Math.PI);
    ctx.fillStyle = classColours[data.labels[i]!]!;
    ctx.fill();
    ctx.lineWidth = 0.8;
    ctx.strokeStyle = '#57606a';
    ctx.stroke();
  }
}

function drawLoad(report: PlaneStepReport): void {
  const E = report.expertLoad.length;
  const max = Math.max(...report.expertLoad, 2 / E);
  $('load').replaceChildren(...report.expertLoad.map((load, e) => {
    const row = document.createElement('div');
    const bias = report.bias[e];
    row.innerHTML = `<span>expert ${e}</span><span><b style="width:${(100 * load) / max}%;background:${expertColour(e)}"></b></span>` +
      `<span>${(100 * load).toFixed(1)}%${bias === undefined ? '' : ` ${bias >= 0 ? '+' : ''}${bias.toFixed(2)}`}</span>`;
    return row;
  }));
}

/** Redraws at most once per frame, whatever the event rate. */
function scheduleDraw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    if (latestMap) paintPlane(latestMap);
    if (latestReport) {
      drawLoad(latestReport);
      const r = latestReport;
      $('numbers').textContent = [
        `step ${r.step}   ${r.msPerStep.toFixed(1)} ms/step on ${picker.active}`,
        `loss ${r.loss.toFixed(4)}   accuracy ${(100 * r.accuracy).toFixed(1)}%`,
        `max violation ${r.maxViolation.toFixed(2)}   router entropy ${r.routerEntropy.toFixed(3)} nats`,
        latestMap ? `experts owning part of the plane: ${state.expertsOnPlane} of ${r.expertLoad.length}` : '',
      ].join('\n');
    }
  });
}

function onEvent(event: WorkerEvent): void {
  if (event.type === 'planeStep') {
    const r = event.report;
    latestReport = r;
    lossChart.push(r.step, [r.loss, r.accuracy]);
    violationChart.push(r.step, [r.maxViolation]);
    state.losses.push(r.loss);
    state.accuracy.push(r.accuracy);
    state.violations.push(r.maxViolation);
    status.textContent = `training: step ${r.step}`;
  } else if (event.type === 'routingMap') {
    latestMap = event.map;
    state.maps += 1;
    state.expertsOnPlane = new Set(event.map.expert).size;
  } else if (event.type === 'done' || event.type === 'error') {
    setRunning('finished');
    status.textContent = event.type === 'done' ? `${event.stopped ? 'stopped' : 'done'} at step ${event.step}` : `error: ${event.message}`;
    if (event.type === 'error') state.error = event.message;
  }
  scheduleDraw();
}

function setRunning(s: 'idle' | 'starting' | 'running' | 'paused' | 'finished'): void {
  state.state = s;
  const live = s === 'running' || s === 'paused';
  $<HTMLButtonElement>('train').disabled = live || s === 'starting';
  $<HTMLButtonElement>('pause').disabled = !live;
  $<HTMLButtonElement>('pause').textContent = s === 'paused' ? 'Resume' : 'Pause';
  $<HTMLButtonElement>('stop').disabled = !live;
  picker.disabled = s === 'running';
}

async function train(): Promise<void> {
  setRunning('starting');
  const classifier = readConfig();
  const steps = Number($<HTMLInputElement>('steps').value);
  data = planeTask(classifier.task!, nPoints, seed);
  latestMap = null;
  latestReport = null;
  lossChart.clear();
  violationChart.clear();
  Object.assign(state, { losses: [], accuracy: [], violations: [], maps: 0, expertsOnPlane: 0, error: '' });
  $('legend').innerHTML = Array.from(
    { length: classifier.nRoutedExperts! },
    (_, e) => `<span><i style="background:${expertColour(e)}"></i>${e}</span>`,
  ).join('');
  try {
    await client.api.start({ kind: 'playground', classifier, steps, mapEvery, mapResolution }, Comlink.proxy(onEvent));
    if (state.state === 'starting') setRunning('running'); // unless its events already ended it
    status.textContent = 'training…';
  } catch (e) {
    setRunning('idle');
    status.textContent = `could not start: ${(e as Error).message}`;
    state.error = (e as Error).message;
  }
}

$('train').addEventListener('click', () => void train());
const reportStatus = (message: string) => {
  status.textContent = `failed: ${message}`;
};
onClick('pause', async () => {
  if (state.state === 'paused') {
    await client.api.resume();
    setRunning('running');
  } else {
    await client.api.pause();
    setRunning('paused');
    status.textContent = `paused at step ${latestReport?.step ?? 0}`;
  }
}, reportStatus);
onClick('stop', () => client.api.stop(), reportStatus);
wireRestart(client, picker, () => setRunning('idle'));

setRunning('idle');
await picker.init();
