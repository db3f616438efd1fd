/** The page's handle on the training worker: comlink-wrapped, with failure reporting and restart. */
import * as Comlink from 'comlink';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { watchWorker, type WatchedWorker } from '../../workers/guard.js';
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
  private watched!: WatchedWorker<TrainingWorkerApi>;

  /** onFailure gets a readable message when the worker dies (with or without an error event) or cannot load. */
  constructor(private readonly onFailure: (message: string) => void) {
    this.spawn();
  }

  private spawn(): void {
    this.worker = new Worker(new URL('../../workers/train.worker.ts', import.meta.url), { type: 'module', name: 'training' });
    this.watched = watchWorker<TrainingWorkerApi>(this.worker, this.onFailure);
    this.api = this.watched.api;
  }

  /** A fresh worker (the old one's job is gone; checkpoints live in the page's IndexedDB and survive). */
  restart(): void {
    this.watched.terminate();
    this.spawn();
  }
}
