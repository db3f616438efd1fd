// The layer bench in a browser page: the Node runner (bench/layer.ts) opens it in headless Chromium and reads
// window.benchResult. Query: ?backend=webgl&runs=3&warmup=1
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { initBackend, type BackendName } from '../../src/index.js';
import { runLayerBench, type LayerBenchResult } from '../layer-bench.js';

declare global {
  interface Window {
    benchResult?: LayerBenchResult;
    benchError?: string;
  }
}

const params = new URLSearchParams(location.search);
const log = (line: string) => {
  document.getElementById('log')!.textContent += line + '\n';
  console.log(line);
};

try {
  const wasmPaths = { 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded };
  const backend = await initBackend((params.get('backend') ?? 'webgl') as BackendName, { wasmPaths });
  log(`backend ${backend}`);
  window.benchResult = await runLayerBench({
    runs: Number(params.get('runs') ?? 3),
    warmup: Number(params.get('warmup') ?? 1),
    asyncCapacity: backend === 'webgpu',
    log,
  });
} catch (e) {
  window.benchError = e instanceof Error ? e.message : String(e);
  log(`error: ${window.benchError}`);
}
