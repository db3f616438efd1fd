/**
 * Starts the training worker (train.worker.ts) as a Node worker thread and wraps it with comlink. The module is
 * TypeScript, so the thread first registers tsx (a dev dependency) to compile it; a thread that fails to load
 * or dies rejects every pending and later call with its error instead of leaving them hanging.
 */
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { guardRemote } from './guard.js';
import type { TrainingWorkerApi } from './protocol.js';

const bootstrap = `
  import { workerData } from 'node:worker_threads';
  const { register } = await import(workerData.tsx);
  register();
  await import(workerData.module);
`;

export interface NodeTrainingWorker {
  api: Comlink.Remote<TrainingWorkerApi>;
  /** Rejects when the thread fails (its error) and never resolves otherwise. */
  failed: Promise<never>;
  terminate(): Promise<void>;
}

export function startNodeTrainingWorker(): NodeTrainingWorker {
  const module = new URL('./train.worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), { workerData: { module, tsx } });
  let terminating = false;
  const failed = new Promise<never>((_, reject) => {
    worker.on('error', (e) => reject(new Error(`training worker failed: ${e.message}`)));
    worker.on('exit', (code) => {
      if (!terminating) reject(new Error(`training worker exited with code ${code}`));
    });
  });
  failed.catch(() => {}); // callers race it against their calls; unobserved, it is not an error
  const wrapped = Comlink.wrap<TrainingWorkerApi>(nodeEndpoint(worker));
  const api = guardRemote(wrapped, failed);
  return {
    api,
    failed,
    async terminate() {
      terminating = true;
      wrapped[Comlink.releaseProxy]();
      await worker.terminate();
    },
  };
}
