/** The page's handle on the training worker: comlink-wrapped, with failure reporting and restart. */
import * as Comlink from 'comlink';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { guardRemote } from '../../workers/guard.js';
import type { TrainingWorkerApi } from '../../workers/protocol.js';

/** Where vite serves the wasm backend's binaries; the worker passes them to setWasmPaths. */
export const wasmPaths = {
  'tfjs-backend-wasm.wasm': new URL(wasmPlain, location.href).href,
  'tfjs-backend-wasm-simd.wasm': new URL(wasmSimd, location.href).href,
  'tfjs-backend-wasm-threaded-simd.wasm': new URL(wasmThreaded, location.href).href,
};

export class WorkerClient {
  api!: Comlink.Remote<TrainingWorkerApi>;
  worker!: Worker;

  /** onFailure gets a readable message when the worker dies or cannot load. */
  constructor(private readonly onFailure: (message: string) => void) {
    this.spawn();
  }

  private spawn(): void {
    const worker = new Worker(new URL('../../workers/train.worker.ts', import.meta.url), { type: 'module', name: 'training' });
    const failed = new Promise<never>((_, reject) => {
      const fail = (message: string) => {
        this.onFailure(message);
        reject(new Error(message));
      };
      worker.addEventListener('error', (e) => {
        e.preventDefault();
        fail(`The training worker stopped: ${e.message || 'it could not load or crashed'}.`);
      });
      worker.addEventListener('messageerror', () => fail('The training worker sent a message that could not be read.'));
    });
    failed.catch(() => {}); // calls race it; unobserved it is not an error
    this.worker = worker;
    this.api = guardRemote(Comlink.wrap<TrainingWorkerApi>(worker), failed);
  }

  /** A fresh worker (the old one's job is gone; checkpoints live in the page's IndexedDB and survive). */
  restart(): void {
    this.worker.terminate();
    this.spawn();
  }
}
