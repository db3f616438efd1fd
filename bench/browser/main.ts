// The bench in a browser page, driven by the Node runner (bench/run.ts, bench/layer.ts) through headless
// Chromium. Query: ?backend=webgl&job=suite&mode=quick, or ?backend=webgl&job=layer&runs=3&warmup=1.
// The result appears as window.benchResult; progress goes to window.benchProgress when the runner exposes it.
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { browserEnvironment } from '../../tools/bench-suite/environment.js';
import { runBenchSuite, type BenchMode, type BenchProgress } from '../../tools/bench-suite/index.js';
import { layerSection, referenceShape } from '../../tools/bench-suite/layer.js';

declare global {
  interface Window {
    benchResult?: unknown;
    benchError?: string;
    benchProgress?: (p: BenchProgress) => void;
  }
}

const params = new URLSearchParams(location.search);
const log = (line: string) => {
  document.getElementById('log')!.textContent += line + '\n';
  console.log(line);
};

try {
  const wasmPaths = {
    'tfjs-backend-wasm.wasm': wasmPlain,
    'tfjs-backend-wasm-simd.wasm': wasmSimd,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
  };
  const backend = await initBackend((params.get('backend') ?? 'webgl') as BackendName, { wasmPaths });
  log(`backend ${backend}`);
  const asyncReads = backend === 'webgpu' || backend === 'webgl';
  if (params.get('job') === 'layer') {
    const repeats = { runs: Number(params.get('runs') ?? 3), warmup: Number(params.get('warmup') ?? 1) };
    window.benchResult = await layerSection('reference', referenceShape, repeats, asyncReads, log);
  } else {
    window.benchResult = await runBenchSuite({
      mode: (params.get('mode') ?? 'quick') as BenchMode,
      environment: await browserEnvironment(),
      onProgress: (p) => {
        log(`${p.done}/${p.total} ${p.label}`);
        window.benchProgress?.(p);
      },
    });
  }
} catch (e) {
  window.benchError = e instanceof Error ? e.message : String(e);
  log(`error: ${window.benchError}`);
}
