/**
 * npm run bench:claims -- [--quick] [--only NAME[,NAME]] [--seeds N] [--jobs N] [--backend wasm] [--out DIR]
 *                          [--name STEM] [--json] [--budget [--corpus DIR]]
 * Reproduces four DeepSeek claims at toy scale on the bundled corpus (tools/claims/tables.ts): fine-grained and
 * shared experts, auxiliary-loss-free balancing, global-batch balance, multi-token prediction. Writes
 * claims-<date>.json, claims-<date>.md and the SVG charts to --out (default bench/results); with --json the last
 * line is the whole result. --quick trains the tiny shape for a few steps (about half a minute): a check that
 * every table runs, not a measurement. --jobs N (default: the cores, at most 2) trains N models at once in forked
 * processes (bench/claims-job.ts), each on one core: TF.js's wasm backend runs one thread in Node. The figures
 * are the same as one after another. Every finished training run is kept in <stem>.runs.json (the stem:
 * claims-<date>[-quick], or --name) as the run goes, and the tables finished so far in <stem>.partial.json; the
 * same command run again (the same day, or with the same --name) trains only what is missing, so a run of hours
 * goes in chunks over sessions: stop it any time, commit the two files, continue later (with --only, the next
 * table; the two files stay until every table is in). --budget runs the budget pilot instead (tables.ts: four
 * models, ten times the steps, one seed unless --seeds) on the large corpus (--corpus, default data/corpus-large,
 * which `npx tsx scripts/build-corpus.ts --large` builds); its stem is claims-<date>-budget.
 */
import cliProgress from 'cli-progress';
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { corpusFolder } from '../tools/corpus.js';
import { claimsCharts, claimsMarkdown } from '../tools/claims/report.js';
import { claimResult, runSeed, runSettings, type SeedRun } from '../tools/claims/run.js';
import { validateClaimsResult, type ClaimResult, type ClaimsResult } from '../tools/claims/schema.js';
import { budgetTable, claimNames, claimTables, type ClaimName } from '../tools/claims/tables.js';
import type { JobMessage, JobTask } from './claims-job.js';

const usage = 'Usage: npm run bench:claims -- [--quick] [--only NAME[,NAME]] [--seeds N] [--jobs N] [--backend wasm] ' +
  '[--out DIR] [--name STEM] [--json] [--budget [--corpus DIR]]';
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    seeds: { type: 'string' },
    jobs: { type: 'string', default: String(Math.min(2, availableParallelism())) },
    backend: { type: 'string', default: 'wasm' },
    out: { type: 'string', default: 'bench/results' },
    name: { type: 'string' },
    json: { type: 'boolean', default: false },
    budget: { type: 'boolean', default: false },
    corpus: { type: 'string' },
  },
});
const fail = (message: string): never => {
  console.error(`${usage}\nbench:claims: ${message}`);
  process.exit(2);
};
const count = (name: 'seeds' | 'jobs') => {
  const n = Number(values[name] ?? (values.budget ? 1 : 2));
  if (Number.isInteger(n) && n >= 1) return n;
  return fail(`expected --${name} to be an integer >= 1, but got '${values[name]}'.`);
};
const seeds = count('seeds');
const jobs = count('jobs');
if (values.budget && values.only !== undefined) fail('expected --budget or --only, not both: the pilot is one table.');
if (!values.budget && values.corpus !== undefined) fail('expected --corpus only with --budget.');
const only = values.only === undefined ? claimNames : values.only.split(',');
for (const name of only) {
  if (!claimNames.includes(name as ClaimName)) {
    fail(`expected --only to name ${claimNames.join(', ')}, but got '${name}'.`);
  }
}
const corpusDir = values.corpus ?? (values.budget ? 'data/corpus-large' : fileURLToPath(new URL('../data/corpus/',
  import.meta.url)));
let corpus: Record<string, string> = {};
try {
  corpus = corpusFolder(corpusDir);
} catch (e) {
  fail(`--corpus: ${(e as Error).message}`);
}

const backend = await initBackend(values.backend as BackendName);
const settings = runSettings(values.quick!, seeds, values.budget ? { corpus: corpusDir } : undefined);
/** The tables of this run: the main run's four, or the budget pilot. */
const runTables = values.budget ? [budgetTable(settings.quick)] : claimTables(settings.quick);
const say = (s: string) => (values.json ? process.stderr.write(`${s}\n`) : console.log(s));
const date = new Date().toISOString().slice(0, 10);
const stem = values.name ?? `claims-${date}${settings.quick ? '-quick' : ''}${values.budget ? '-budget' : ''}`;
if (!/^[\w.-]+$/.test(stem)) fail(`expected --name to be a file name stem (letters, digits, . _ -), but got '${stem}'.`);
const partialFile = join(values.out!, `${stem}.partial.json`);
const runsFile = join(values.out!, `${stem}.runs.json`);
mkdirSync(values.out!, { recursive: true });

// An interrupted run of the same day and settings resumes: the tables it finished are kept, not trained again,
// and the result holds them beside this run's.
const claims = new Map<string, ClaimResult>();
let earlierSeconds = 0;
if (existsSync(partialFile)) {
  const earlier = validateClaimsResult(JSON.parse(readFileSync(partialFile, 'utf8')));
  if (earlier.backend === backend && JSON.stringify(earlier.settings) === JSON.stringify(settings)) {
    for (const c of earlier.claims) claims.set(c.name, c);
    earlierSeconds = earlier.seconds;
    say(`resuming ${partialFile}: ${[...claims.keys()].join(', ')} done`);
  } else {
    say(`${partialFile} is of another backend or other settings: it will be replaced`);
  }
}
const done = () => runTables.flatMap((t) => claims.get(t.name) ?? []);
const tables = runTables.filter((t) => (values.budget || only.includes(t.name)) && !claims.has(t.name));
const allTasks: JobTask[] = tables.flatMap((t) => t.variants.flatMap((v) =>
  Array.from({ length: seeds }, (_, seed) => ({ claim: t.name, variant: v.key, seed }))));
const keyOf = (t: JobTask) => `${t.claim}/${t.variant}/${t.seed}`;

// The training runs an interrupted run finished (of the same backend and settings) are kept, not trained again.
// Runs of tables outside --only are kept too, for the chunk that trains them.
interface KeptRun { task: JobTask; run: SeedRun }
interface RunsFile { backend: string; settings: typeof settings; runs: KeptRun[] }
const runs = new Map<string, KeptRun>();
if (existsSync(runsFile)) {
  const earlier = JSON.parse(readFileSync(runsFile, 'utf8')) as RunsFile;
  if (earlier.backend === backend && JSON.stringify(earlier.settings) === JSON.stringify(settings)) {
    // Checked with the tables they complete, by validateClaimsResult.
    for (const kept of earlier.runs) runs.set(keyOf(kept.task), kept);
    say(`resuming ${runsFile}: ${runs.size} training runs done`);
  } else {
    say(`${runsFile} is of another backend or other settings: it will be replaced`);
  }
}
const tasks = allTasks.filter((t) => !runs.has(keyOf(t)));
say(`bench:claims on ${backend}: ${tables.map((t) => t.name).join(', ') || 'nothing left to run'}; ` +
  `${tasks.length} training runs of ${settings.steps} steps, ${Math.min(jobs, tasks.length)} at a time`);

const start = performance.now();
const resultOf = (done: ClaimResult[]): ClaimsResult => validateClaimsResult({
  kind: 'claims', version: 1, date, backend, settings, seconds: earlierSeconds + (performance.now() - start) / 1000,
  claims: done,
});
/** Writes through a temporary file, so an interrupted write never leaves half a file. */
const writeWhole = (file: string, text: string) => {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
};

// Progress: steps done over all runs. Each finished run fills its table's slot; a finished table is kept at once.
const bar = new cliProgress.SingleBar({
  format: 'runs {finished}/{runs} [{bar}] {percentage}% | eta {eta_formatted}',
  stream: process.stderr, noTTYOutput: true, notTTYSchedule: 30_000,
});
const stepsDone = new Map<JobTask, number>();
let finished = 0;
bar.start(tasks.length * settings.steps, 0, { finished, runs: tasks.length });
const progress = (task: JobTask, step: number) => {
  stepsDone.set(task, step);
  bar.update([...stepsDone.values()].reduce((a, b) => a + b, 0), { finished });
};
/** Keeps a finished run, and a table once all its runs are in. */
const keep = (table: (typeof tables)[number]) => {
  const mine = allTasks.filter((t) => t.claim === table.name);
  if (!mine.every((t) => runs.has(keyOf(t)))) return;
  const bySeed = table.variants.map((v) =>
    mine.filter((t) => t.variant === v.key).map((t) => runs.get(keyOf(t))!.run));
  claims.set(table.name, claimResult(table, bySeed));
  writeWhole(partialFile, `${JSON.stringify(resultOf(done()))}\n`);
};
const finish = (task: JobTask, run: SeedRun) => {
  runs.set(keyOf(task), { task, run });
  finished += 1;
  progress(task, settings.steps);
  writeWhole(runsFile, `${JSON.stringify({ backend, settings, runs: [...runs.values()] } satisfies RunsFile)}\n`);
  keep(tables.find((t) => t.name === task.claim)!);
};
for (const table of tables) keep(table); // tables whose runs were all kept earlier

if (jobs === 1) {
  for (const task of tasks) {
    const table = tables.find((t) => t.name === task.claim)!;
    finish(task, await runSeed(table, task.variant, task.seed, settings, corpus, (p) => progress(task, p.step)));
  }
} else if (tasks.length > 0) {
  await inJobs(Math.min(jobs, tasks.length));
}
bar.stop();
const result = resultOf(done());
const markdown = claimsMarkdown(result);
writeWhole(join(values.out!, `${stem}.json`), `${JSON.stringify(result)}\n`);
// The resume files go once every table is in; until then the next chunk (another --only) continues from them.
const complete = runTables.every((t) => claims.has(t.name));
if (complete) {
  rmSync(partialFile, { force: true });
  rmSync(runsFile, { force: true });
}
writeFileSync(join(values.out!, `${stem}.md`), `${markdown}\n`);
for (const [name, svg] of Object.entries(claimsCharts(result))) {
  writeFileSync(join(values.out!, `${stem}-${name}`), svg);
}
say(`${markdown}\n\nwritten: ${join(values.out!, stem)}.json, .md and the charts` + (complete ? '' :
  `; ${runTables.filter((t) => !claims.has(t.name)).map((t) => t.name).join(', ')} still to ` +
  `run (the same command with --only and --name ${stem} continues)`));
if (values.json) console.log(JSON.stringify(result));

/**
 * Runs the tasks in `n` forked job processes, each taking the next task when it is free. The first error, or a job
 * that ends before it is released, stops them all.
 */
function inJobs(n: number): Promise<void> {
  const queue = [...tasks];
  const script = fileURLToPath(new URL('./claims-job.ts', import.meta.url));
  const args = [backend, JSON.stringify(settings)];
  return new Promise((resolve, reject) => {
    const children = Array.from({ length: n }, () => fork(script, args, {
      execArgv: ['--import', 'tsx'], stdio: ['ignore', 2, 2, 'ipc'], // stdout is kept for --json's result
      serialization: 'advanced', // NaN and Infinity arrive as they are, for the validator to refuse
    }));
    let live = n;
    let failed = false;
    const stop = (error: Error) => {
      if (failed) return;
      failed = true;
      for (const c of children) c.kill();
      reject(error);
    };
    for (const child of children) {
      let task: JobTask | undefined;
      let released = false;
      const next = () => {
        task = queue.shift();
        if (task) child.send(task);
        else (released = true), child.disconnect();
      };
      child.on('message', (raw) => {
        const m = raw as JobMessage;
        try {
          if (m.type === 'ready') next();
          else if (m.type === 'progress') progress(task!, m.step);
          else if (m.type === 'done') finish(task!, m.run), next();
          else stop(new Error(`${task!.claim}/${task!.variant}, seed ${task!.seed}: ${m.message}`));
        } catch (e) {
          stop(e as Error);
        }
      });
      child.on('error', stop);
      child.on('exit', (code, signal) => {
        const during = task ? `during ${task.claim}/${task.variant}, seed ${task.seed}` : 'before its first task';
        if (!released) stop(new Error(`a claims job stopped (${signal ?? `exit code ${code}`}) ${during}`));
        else if (--live === 0) resolve();
      });
    }
  });
}
