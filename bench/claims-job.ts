/**
 * One job process of `npm run bench:claims -- --jobs N` (forked by bench/claims.ts): trains the models it is sent,
 * one at a time, and sends back their figures. TF.js's wasm backend runs one thread in Node, so N processes use
 * N cores.
 */
import { initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { bundledCorpus, corpusFolder } from '../tools/corpus.js';
import { runSeed, type SeedRun } from '../tools/claims/run.js';
import type { RunSettings } from '../tools/claims/schema.js';
import { claimTable } from '../tools/claims/tables.js';

/** What the parent sends: a model of a table and a seed. */
export interface JobTask {
  claim: string;
  variant: string;
  seed: number;
}

/** What a job sends back. */
export type JobMessage =
  | { type: 'ready' }
  | { type: 'progress'; step: number }
  | { type: 'done'; run: SeedRun }
  | { type: 'error'; message: string };

const [backendName, settingsJson] = process.argv.slice(2);
await initBackend(backendName as BackendName);
const settings = JSON.parse(settingsJson!) as RunSettings; // the parent's, as it checked them
const corpus = settings.corpus === undefined ? bundledCorpus() : corpusFolder(settings.corpus);
const send = (m: JobMessage) => process.send!(m);

process.on('message', (message) => {
  const task = message as JobTask;
  void (async () => {
    try {
      const table = claimTable(task.claim, settings.quick);
      const onProgress = (p: { step: number }) => send({ type: 'progress', step: p.step });
      send({ type: 'done', run: await runSeed(table, task.variant, task.seed, settings, corpus, onProgress) });
    } catch (e) {
      send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  })();
});
send({ type: 'ready' });
