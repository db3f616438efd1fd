/**
 * The bench page: runs the bench suite (bench/suite, as `npm run bench` does) in the worker on each chosen
 * backend, draws the same SVG charts as the Node report, and offers each result as a JSON file in the same schema.
 */
import * as Comlink from 'comlink';
import type { BackendName } from 'deepseek-moe-tfjs';
import { benchCharts, resultLabel } from '../tools/bench-report/charts.js';
import { compareResults } from '../tools/bench-report/compare.js';
import { validateBenchResult } from '../tools/bench-suite/validate.js';
import type { BenchMode, BenchProgress, BenchResult } from '../workers/protocol.js';
import { BackendPicker, wireRestart } from './common/backend-picker.js';
import { $, download, exposeState, onClick, showFailure } from './common/page.js';
import { WorkerClient } from './common/worker-client.js';

const status = $('status');
const progress = $<HTMLProgressElement>('progress');
const client = new WorkerClient(showFailure);
const picker = new BackendPicker(client, $<HTMLSelectElement>('backend'), $('backend-note'));
const state = exposeState({ state: 'idle' as string, results: [] as BenchResult[], compared: 0, error: '' });

const fileName = (r: BenchResult) => `${r.date.slice(0, 10)}-${resultLabel(r)}-${r.mode}.json`;
const cell = (v: string | number) => Object.assign(document.createElement('td'), { textContent: String(v) });

function render(): void {
  $('runs').replaceChildren(...state.results.map((r, i) => {
    const row = document.createElement('tr');
    row.append(...[
      resultLabel(r), r.mode, r.seconds.toFixed(0), r.layer.ms.moe.toFixed(1),
      r.layer.ratios.moeOverDenseActivated.toFixed(2), (r.layer.ratios.naiveOverMoe?.toFixed(1) ?? '-'),
      r.training.moe.tokensPerSecond.toFixed(0), r.training.ratios.moeOverDenseTotalTokensPerSecond.toFixed(2),
    ].map(cell));
    const button = Object.assign(document.createElement('button'), { textContent: 'JSON', id: `download-${i}` });
    button.addEventListener('click', () => download(fileName(r), JSON.stringify(r, null, 2), 'application/json'));
    const last = document.createElement('td');
    last.append(button);
    row.append(last);
    return row;
  }));
  // The same charts as bench/results/summary.md, for the results of this visit's last size.
  const latest = state.results.filter((r) => r.mode === state.results.at(-1)?.mode);
  $('charts').replaceChildren(...Object.entries(benchCharts(latest)).map(([name, svg]) => {
    const figure = document.createElement('figure');
    figure.className = 'chart';
    figure.dataset.chart = name;
    figure.innerHTML = svg; // our own generated SVG strings; every label in them is escaped
    return figure;
  }));
}

async function compareWith(file: File): Promise<void> {
  const last = state.results.at(-1);
  if (!last) throw new Error('compare: run the bench first; the file is compared with the last run.');
  let other: BenchResult;
  try {
    other = validateBenchResult(JSON.parse(await file.text()));
  } catch (e) {
    throw new Error(`compare: ${file.name}: ${(e as Error).message}`);
  }
  const c = compareResults(other, last);
  $('comparison-caption').textContent = `A: ${c.a} (${file.name}); B: ${c.b}. ${c.figures.length} figures in common` +
    (c.figures.length === 0 ? ' (compare runs of the same size)' : '');
  $('comparison').replaceChildren(...c.figures.map((f) => {
    const row = document.createElement('tr');
    row.append(...[f.name, f.unit, f.a.toFixed(2), f.b.toFixed(2), `${f.gain.toFixed(2)}×`].map(cell));
    return row;
  }));
  $('comparison-figure').hidden = false;
  state.compared = c.figures.length;
}

async function runOn(backends: BackendName[]): Promise<void> {
  const mode = $<HTMLSelectElement>('size').value as BenchMode;
  state.state = 'running';
  state.error = '';
  for (const b of ['run', 'run-all']) $<HTMLButtonElement>(b).disabled = true;
  picker.disabled = true;
  try {
    for (const backend of backends) {
      $<HTMLSelectElement>('backend').value = backend;
      if ((await picker.apply()) !== backend) continue;
      status.textContent = `running on ${backend}…`;
      const onProgress = Comlink.proxy((p: BenchProgress) => {
        progress.max = p.total;
        progress.value = p.done;
        status.textContent = `${backend}: ${p.done}/${p.total} ${p.label}`;
        $('log').textContent += `${backend}: ${p.label}\n`;
      });
      const result = await client.api.bench(mode, onProgress);
      state.results = [...state.results.filter((r) => !(resultLabel(r) === resultLabel(result) && r.mode === result.mode)), result];
      render();
    }
    status.textContent = 'done';
  } catch (e) {
    status.textContent = `failed: ${(e as Error).message}`;
    state.error = (e as Error).message;
  } finally {
    state.state = 'idle';
    for (const b of ['run', 'run-all']) $<HTMLButtonElement>(b).disabled = false;
    picker.disabled = false;
  }
}

const report = (message: string) => {
  status.textContent = `failed: ${message}`;
  state.error = message;
};
onClick('run', () => runOn([$<HTMLSelectElement>('backend').value as BackendName]), report);
onClick('run-all', async () => {
  const available = (await client.api.backends()).filter((b) => b.available).map((b) => b.name);
  await runOn(available);
}, report);
$('compare-file').addEventListener('change', (e) => {
  const input = e.target as HTMLInputElement;
  const file = input.files?.[0];
  if (file) compareWith(file).catch((err: unknown) => report((err as Error).message)).finally(() => (input.value = ''));
});
wireRestart(client, picker, () => {});

await picker.init();
