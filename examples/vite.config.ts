import { defineConfig } from 'vite';

// `npm start`: serves the demo pages in this folder. The wasm backend's binaries are imported with `?url`
// in the page, so vite serves them and the wasm backend works in the browser too.
export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  build: { outDir: '../dist-examples', emptyOutDir: true, target: 'es2022' },
  // tfjs-backend-wasm must stay pre-bundled: its ESM imports a CommonJS worker module.
  optimizeDeps: { include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-webgpu'] },
});
