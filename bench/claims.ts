/**
 * npm run bench:claims -- [--quick] [--only NAME[,NAME]] [--seeds N] [--backend wasm] [--out DIR] [--json]
 * Reproduces four DeepSeek claims at toy scale on the bundled corpus (tools/claims/tables.ts): fine-grained and
 * shared experts, auxiliary-loss-free balancing, global-batch balance, multi-token prediction. Writes
 * claims-<date>.json, claims-<date>.md and the SVG charts to --out (default bench/results); with --json the last
 * line is the whole result. --quick trains the tiny shape for a few steps (about half a minute): a check that
 * every table runs, not a measurement. The tables finished so far are kept in claims-<date>.partial.json as the
 * run goes, so an interrupted hour is not lost (rerun the rest with --only).
 */
import cliProgress from 'cli-progress';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { bundledCorpus } from '../tools/corpus.js';
import { claimsCharts, claimsMarkdown } from '../tools/claims/report.js';
import { runClaim, runSettings } from '../tools/claims/run.js';
import { validateClaimsResult, type ClaimResult, type ClaimsResult } from '../tools/claims/schema.js';
import { claimNames, claimTables, type ClaimName } from '../tools/claims/tables.js';

const usage =
  'Usage: npm run bench:claims -- [--quick] [--only NAME[,NAME]] [--seeds N] [--backend wasm] [--out DIR] [--json]';
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    seeds: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm' },
    out: { type: 'string', default: 'bench/results' },
    json: { type: 'boolean', default: false },
  },
});
const fail = (message: string): never => {
  console.error(`${usage}\nbench:claims: ${message}`);
  process.exit(2);
};
const seeds = Number(values.seeds);
if (!Number.isInteger(seeds) || seeds < 1) fail(`expected --seeds to be an integer >= 1, but got '${values.seeds}'.`);
const only = values.only === undefined ? claimNames : values.only.split(',');
for (const name of only) {
  if (!claimNames.includes(name as ClaimName)) {
    fail(`expected --only to name ${claimNames.join(', ')}, but got '${name}'.`);
  }
}

const backend = await initBackend(values.backend as BackendName);
const settings = runSettings(values.quick!, seeds);
const tables = claimTables(settings.quick).filter((t) => only.includes(t.name));
const say = (s: string) => (values.json ? process.stderr.write(`${s}\n`) : console.log(s));
const runs = tables.reduce((n, t) => n + t.variants.length, 0) * seeds;
say(`bench:claims on ${backend}: ${tables.map((t) => t.name).join(', ')}; ` +
  `${runs} training runs of ${settings.steps} steps`);

const bar = new cliProgress.SingleBar({
  format: 'run {run}/{runs} {claim}/{variant} seed {seed} [{bar}] step {value}/{total} | eta {eta_formatted}',
  stream: process.stderr, noTTYOutput: true, notTTYSchedule: 30_000,
});
const corpus = bundledCorpus();
const start = performance.now();
const date = new Date().toISOString().slice(0, 10);
const stem = `claims-${date}${settings.quick ? '-quick' : ''}`;
mkdirSync(values.out!, { recursive: true });
const resultOf = (done: ClaimResult[]): ClaimsResult => validateClaimsResult({
  kind: 'claims', version: 1, date, backend, settings, seconds: (performance.now() - start) / 1000, claims: done,
});
const claims: ClaimResult[] = [];
let run = 0;
let current = '';
bar.start(settings.steps, 0, { run: 0, runs, claim: '', variant: '', seed: 0 });
for (const table of tables) {
  claims.push(await runClaim(table, settings, corpus, (p) => {
    const id = `${p.claim}/${p.variant}/${p.seed}`;
    if (id !== current) {
      current = id;
      run += 1;
      bar.start(p.steps, 0, { run, runs, claim: p.claim, variant: p.variant, seed: p.seed });
    }
    bar.update(p.step);
  }));
  writeFileSync(join(values.out!, `${stem}.partial.json`), `${JSON.stringify(resultOf(claims))}\n`);
}
bar.stop();
const result = resultOf(claims);
const markdown = claimsMarkdown(result);
writeFileSync(join(values.out!, `${stem}.json`), `${JSON.stringify(result)}\n`);
rmSync(join(values.out!, `${stem}.partial.json`), { force: true });
writeFileSync(join(values.out!, `${stem}.md`), `${markdown}\n`);
for (const [name, svg] of Object.entries(claimsCharts(result))) {
  writeFileSync(join(values.out!, `${stem}-${name}`), svg);
}
say(`${markdown}\n\nwritten: ${join(values.out!, stem)}.json, .md and the charts`);
if (values.json) console.log(JSON.stringify(result));
