/** The bench page: runs the layer benchmark in the worker on each chosen backend, and shows the results. */
import * as Comlink from 'comlink';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { BackendName } from '../src/backend.js';
import type { BenchReport } from '../workers/protocol.js';
import { BackendPicker, wireRestart } from './common/backend-picker.js';
import { $, download, exposeState, onClick, showFailure } from './common/page.js';
import { WorkerClient } from './common/worker-client.js';

const sizes = { quick: { tokens: 512, runs: 3, warmup: 1 }, reference: { tokens: 2048, runs: 5, warmup: 2 } };
const backendColours: Record<string, string> = { webgpu: '#8250df', webgl: '#cf222e', wasm: '#0969da', cpu: '#57606a', tensorflow: '#1a7f37' };

const status = $('status');
const client = new WorkerClient(showFailure);
const picker = new BackendPicker(client, $<HTMLSelectElement>('backend'), $('backend-note'));
const state = exposeState({ state: 'idle' as string, reports: [] as BenchReport[], error: '' });
let scalingPlot: uPlot | null = null;
let paramsPlot: uPlot | null = null;

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`);

function render(): void {
  $('layer').replaceChildren(...state.reports.map((r) => {
    const { ms, ratios, gflops, shape } = r.layer;
    const row = document.createElement('tr');
    row.innerHTML = [r.backend, shape.tokens, ms.moe.toFixed(1), ms.moeCapacity.toFixed(1), ms.denseActivated.toFixed(1), ms.naive.toFixed(1),
      ratios.moeOverDenseActivated.toFixed(2), gflops.moe.toFixed(2)].map((v) => `<td>${v}</td>`).join('');
    return row;
  }));
  const params = state.reports[0]?.params ?? [];
  $('params').replaceChildren(...params.map(({ name, count }) => {
    const row = document.createElement('tr');
    row.innerHTML = [name, human(count.total), human(count.activated), `${(100 * count.activatedRatio).toFixed(1)}%`, count.kvCachePerToken]
      .map((v) => `<td>${v}</td>`).join('');
    return row;
  }));
  paramsPlot?.destroy();
  const names = params.map((p) => p.name.replace(' preset', '').replace('DeepSeek-', ''));
  const indices = names.map((_, i) => i);
  const paramsEl = $('params-chart');
  paramsPlot = names.length === 0 ? null : new uPlot({
    width: Math.max(280, paramsEl.clientWidth - 8), height: 220,
    scales: { x: { time: false, range: [-0.5, names.length - 0.5] }, y: { range: [0, 100] } },
    axes: [{ splits: () => indices, values: (_, splits) => splits.map((i) => names[i] ?? '') }, { label: 'activated, % of total' }],
    legend: { show: false },
    series: [{}, { label: 'activated share', fill: '#0969da99', stroke: '#0969da', paths: uPlot.paths.bars!({ size: [0.6] }), points: { show: false } }],
  }, [indices, params.map((p) => 100 * p.count.activatedRatio)], paramsEl);
  const experts = state.reports[0]?.layer.scaling.map((s) => s.experts) ?? [];
  const data = [experts, ...state.reports.map((r) => r.layer.scaling.map((s) => s.ms))] as uPlot.AlignedData;
  scalingPlot?.destroy();
  const el = $('scaling');
  scalingPlot = new uPlot({
    width: Math.max(280, el.clientWidth - 8), height: 240,
    scales: { x: { time: false, distr: 3 } },
    axes: [{ label: 'routed experts (log scale)' }, { label: 'ms' }],
    series: [{}, ...state.reports.map((r) => ({ label: `${r.backend} (${r.layer.shape.tokens} tokens)`, stroke: backendColours[r.backend] ?? '#000', width: 2 }))],
  }, data, el);
  $<HTMLButtonElement>('download').disabled = state.reports.length === 0;
}

async function runOn(backends: BackendName[]): Promise<void> {
  const size = sizes[$<HTMLSelectElement>('size').value as keyof typeof sizes];
  state.state = 'running';
  for (const b of ['run', 'run-all']) $<HTMLButtonElement>(b).disabled = true;
  picker.disabled = true;
  try {
    for (const backend of backends) {
      $<HTMLSelectElement>('backend').value = backend;
      if ((await picker.apply()) !== backend) continue;
      status.textContent = `running on ${backend}…`;
      const log = Comlink.proxy((line: string) => {
        $('log').textContent += `${backend}: ${line}\n`;
      });
      const report = await client.api.bench(size, log);
      state.reports = [...state.reports.filter((r) => !(r.backend === report.backend && r.layer.shape.tokens === report.layer.shape.tokens)), report];
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

$('run').addEventListener('click', () => void runOn([$<HTMLSelectElement>('backend').value as BackendName]));
onClick('run-all', async () => {
  const available = (await client.api.backends()).filter((b) => b.available).map((b) => b.name);
  await runOn(available);
}, (message) => {
  status.textContent = `failed: ${message}`;
});
$('download').addEventListener('click', () => {
  const json = JSON.stringify({ date: new Date().toISOString(), userAgent: navigator.userAgent, reports: state.reports }, null, 2);
  download(`deepseek-moe-bench-${new Date().toISOString().slice(0, 10)}.json`, json, 'application/json');
});
wireRestart(client, picker, () => {});

await picker.init();
