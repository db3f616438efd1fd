import { defineConfig } from 'vite';
import { entryAliases } from '../tools/entries.js';

const root = new URL('.', import.meta.url).pathname;

// `npm start` serves the demo pages in this folder; `vite build` writes them to dist-examples. The wasm
// backend's binaries are imported with `?url`, so vite serves and copies them and the wasm backend works too.
export default defineConfig({
  root,
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  build: {
    outDir: '../dist-examples',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096, // TF.js with three backends is a few MB; it loads in the worker, not the page
    rollupOptions: {
      input: {
        index: `${root}index.html`,
        playground: `${root}playground.html`,
        lab: `${root}lab.html`,
        bench: `${root}bench.html`,
        claims: `${root}claims.html`,
      },
    },
  },
  // The pages and the worker import the library by its entries' names, resolved to the sources.
  resolve: { alias: entryAliases },
  worker: { format: 'es' },
  // tfjs-backend-wasm must stay pre-bundled: its ESM imports a CommonJS worker module.
  optimizeDeps: { include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-webgpu'] },
});
