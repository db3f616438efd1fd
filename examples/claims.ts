/**
 * The Claims page: the committed `npm run bench:claims` results (bench/results/claims-<date>.json, for each table
 * the newest full run that holds it, and the budget pilot's claims-<date>-budget.json) as tables and charts beside
 * the papers' figures, and a button per claim that reruns its small version in the worker, with progress.
 */
import * as Comlink from 'comlink';
import englishUrl from '../data/corpus/english.txt?url';
import chineseUrl from '../data/corpus/chinese.txt?url';
import codeUrl from '../data/corpus/code.txt?url';
import arithmeticUrl from '../data/corpus/arithmetic.txt?url';
import { claimMarkdown, claimsCharts, escapeXml } from '../tools/claims/report.js';
import { validateClaimsResult, type ClaimResult, type ClaimsResult } from '../tools/claims/schema.js';
import { budgetTable, claimTable, claimTables, type ClaimName } from '../tools/claims/tables.js';
import { pageRunSettings } from '../tools/claims/run.js';
import { BackendPicker, wireRestart } from './common/backend-picker.js';
import { $, exposeState, showFailure } from './common/page.js';
import { WorkerClient } from './common/worker-client.js';

const client = new WorkerClient(showFailure);
const picker = new BackendPicker(client, $<HTMLSelectElement>('backend'), $('backend-note'));
const state = exposeState({ state: 'idle' as string, reruns: [] as string[], error: '' });
const status = $('status');
const progress = $<HTMLProgressElement>('progress');

// The committed full runs (claims-<date>.json, the pilot's -budget.json and the upcycling table's -upcycling.json;
// not the quick runs, nor a run's resume files, which are not even bundled), newest first. A run committed in
// chunks holds the tables finished so far.
const files = import.meta.glob(['../bench/results/claims-*.json', '!**/*.runs.json', '!**/*.partial.json'], {
  eager: true, import: 'default',
}) as Record<string, unknown>;
const committed: ClaimsResult[] = Object.entries(files)
  .filter(([path]) => /\/claims-\d{4}-\d{2}-\d{2}(-budget|-upcycling)?\.json$/.test(path))
  .sort(([a], [b]) => (a < b ? 1 : -1))
  .map(([, value]) => validateClaimsResult(value));
/** The newest committed run holding the table `name`. */
const runOf = (name: ClaimName) => committed.find((r) => r.claims.some((c) => c.name === name)) ?? null;
const describeRun = (r: ClaimsResult) => `${r.date}, ${r.backend}, ${r.settings.steps} steps of ` +
  `${r.settings.batchSize} x ${r.settings.seqLen} bytes per model and seed, ${r.settings.seeds} seeds`;

/** Markdown tables as HTML: our generated text only (labels come from tables.ts and the paper list). */
function markdownToHtml(markdown: string): string {
  const out: string[] = [];
  let list = false;
  const lines = markdown.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.startsWith('|---')) continue;
    if (!line.startsWith('- ') && list) (out.push('</ul>'), (list = false));
    if (line.startsWith('#### ')) out.push(`<h3>${escapeXml(line.slice(5))}</h3>`);
    else if (line.startsWith('| ') && lines[i + 1]?.startsWith('|---')) {
      out.push(`${closeTable()}<table><thead><tr>${cells(line, 'th')}</tr></thead><tbody>`);
    } else if (line.startsWith('| ')) out.push(`<tr>${cells(line, 'td')}</tr>`);
    else if (line.startsWith('- ')) {
      (list || (out.push('<ul>'), (list = true)), out.push(`<li>${escapeXml(line.slice(2))}</li>`));
    } else if (line.trim() !== '') out.push(`${closeTable()}<p class="note">${escapeXml(line)}</p>`);
  }
  if (list) out.push('</ul>');
  return out.join('') + closeTable();
  function closeTable(): string {
    return out.at(-1)?.startsWith('<tr>') ? '</tbody></table>' : '';
  }
  function cells(line: string, tag: string): string {
    return line.split('|').slice(1, -1).map((c) => `<${tag}>${escapeXml(c.trim())}</${tag}>`).join('');
  }
}

/** One claim's section: its committed table and charts, and (but for the budget pilot) the rerun button. */
function section(name: ClaimName, title: string): HTMLElement {
  const div = document.createElement('section');
  div.className = 'claim';
  div.id = `claim-${name}`;
  const run = runOf(name);
  const claim = run?.claims.find((c) => c.name === name);
  const charts = run && claim ? Object.entries(claimsCharts({ ...run, claims: [claim] })) : [];
  div.innerHTML = run && claim
    ? markdownToHtml(claimMarkdown(claim)) + `<p class="note" data-run="${run.date}">From the run of ` +
      `${escapeXml(describeRun(run))}.</p>` +
      charts.map(([file, svg]) => `<figure class="chart" data-chart="${file}">${svg}</figure>`).join('')
    : `<h3>${title}</h3><p class="note">No full run of this table is committed yet.</p>`;
  if (name === 'budget') return div;
  const s = pageRunSettings;
  const button = Object.assign(document.createElement('button'), {
    id: `run-${name}`,
    textContent: `Run a small version here (${s.steps} steps of ${s.batchSize} x ${s.seqLen}, 2 seeds)`,
  });
  const rerun = Object.assign(document.createElement('div'), { id: `rerun-${name}` });
  button.addEventListener('click', () => void rerunClaim(name, button, rerun));
  div.append(button, rerun);
  return div;
}

async function corpus(): Promise<Record<string, string>> {
  const urls = { english: englishUrl, chinese: chineseUrl, code: codeUrl, arithmetic: arithmeticUrl };
  const texts = await Promise.all(Object.values(urls).map(async (u) => (await fetch(u)).text()));
  return Object.fromEntries(Object.keys(urls).map((k, i) => [k, texts[i]!]));
}

async function rerunClaim(name: ClaimName, button: HTMLButtonElement, target: HTMLElement): Promise<void> {
  const table = claimTable(name, true);
  const runs = table.variants.length * 2;
  const s = pageRunSettings;
  let done = 0;
  let current = '';
  document.querySelectorAll<HTMLButtonElement>('[id^=run-]').forEach((b) => (b.disabled = true));
  state.state = 'running';
  status.textContent = `running ${name} on ${picker.active}…`;
  try {
    const result: ClaimResult = await client.api.claims(name, await corpus(), Comlink.proxy((p) => {
      const id = `${p.variant}/${p.seed}`;
      if (id !== current) (current = id), (done += 1);
      progress.value = (done - 1 + p.step / p.steps) / runs;
      status.textContent = `${name}: ${p.variant}, seed ${p.seed}, step ${p.step}/${p.steps}`;
    }));
    target.innerHTML = `<h4>Small version, run here on ${picker.active} (${s.steps} steps; a check that the table ` +
      'runs, not a measurement)</h4>' + markdownToHtml(claimMarkdown(result));
    state.reruns.push(name);
    status.textContent = `${name} done`;
    progress.value = 1;
  } catch (e) {
    state.error = (e as Error).message;
    status.textContent = `failed: ${(e as Error).message}`;
  } finally {
    state.state = 'idle';
    document.querySelectorAll<HTMLButtonElement>('[id^=run-]').forEach((b) => (b.disabled = false));
    button.focus();
  }
}

const shown = [...new Set([...claimTables(false), budgetTable(false)].flatMap((t) => runOf(t.name) ?? []))];
$('committed').textContent = shown.length > 0
  ? `Committed runs shown: ${shown.map(describeRun).join('; ')}.`
  : 'No full run of npm run bench:claims is committed yet; the buttons below run the small version here.';
$('claims').append(...[...claimTables(false), budgetTable(false)].map((t) => section(t.name, t.title)));
wireRestart(client, picker, () => (state.state = 'idle'));
await picker.init();
