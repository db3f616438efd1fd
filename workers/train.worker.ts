/**
 * The training worker. The same module runs as a web worker (vite bundles it for the demo pages) and as a Node
 * worker thread (through comlink's node adapter); either way the page or parent drives it with
 * Comlink.wrap<TrainingWorkerApi>.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { createTrainingWorker } from './training.js';

const api = createTrainingWorker();
const runtime = globalThis as { process?: { versions?: { node?: string } } };
if (runtime.process?.versions?.node != null) {
  const workerThreads = 'node:worker_threads'; // a variable keeps vite from bundling a Node module for the browser
  const { parentPort } = (await import(/* @vite-ignore */ workerThreads)) as typeof import('node:worker_threads');
  if (!parentPort) throw new Error('train.worker: expected to run in a worker thread, but there is no parentPort.');
  Comlink.expose(api, nodeEndpoint(parentPort));
} else {
  Comlink.expose(api);
}
