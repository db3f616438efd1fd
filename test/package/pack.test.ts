/**
 * What a user does: `npm pack` the library, install the tarball into an empty project beside TF.js, and use it.
 * In Node: import every entry, train a tf.sequential model with the layer, check that the TF.js-free entries load
 * no TF.js. In a browser app: a vite build of a one-page app that imports the layer and the config entry.
 * Nothing else checks the package's exports map, its peer dependencies or its built files.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTensorflow } from '../helpers.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
const tfVersion = (
  JSON.parse(readFileSync(join(repo, 'node_modules/@tensorflow/tfjs/package.json'), 'utf8')) as { version: string }
).version;
const viteVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/vite/package.json'), 'utf8')) as { version: string }).version;

let dir = '';
let app = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deepseek-moe-pack-'));
  const out = run(npm, ['pack', '--json', '--pack-destination', dir], repo); // the build scripts print first
  const packed = JSON.parse(out.slice(out.search(/^\[/m))) as { filename: string }[];
  const tarball = join(dir, packed[0]!.filename);
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'user-app', private: true, type: 'module' }));
  run(npm, [
    'install', '--no-audit', '--no-fund', '--prefer-offline', tarball,
    `@tensorflow/tfjs@${tfVersion}`, `@tensorflow/tfjs-backend-wasm@${tfVersion}`, `vite@${viteVersion}`,
  ], app);
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed package in an empty project', () => {
  it('ships the built entries and no sources, tests or apps', () => {
    const files = run('tar', ['-tzf', join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!)], dir).split('\n');
    for (const entry of ['index', 'model/index', 'train/index', 'config', 'hf/index']) {
      expect(files).toContain(`package/dist/${entry}.js`);
      expect(files).toContain(`package/dist/${entry}.d.ts`);
    }
    expect(files.filter((f) => /^package\/(src|test|workers|examples|bench|tools)\//.test(f))).toEqual([]);
    // The README's links into docs/ resolve inside the package too; the generated API reference stays out.
    expect(files).toContain('package/docs/cli.md');
    expect(files.filter((f) => f.startsWith('package/docs/api/'))).toEqual([]);
  });

  it('in Node: every entry imports, a tf.sequential model with the layer trains, and the config and hf entries load no TF.js', () => {
    writeFileSync(join(app, 'config-only.mjs'), `
      const config = await import('deepseek-moe-tfjs/config');
      const hf = await import('deepseek-moe-tfjs/hf');
      const p = config.countModelParams(config.preset('tiny'));
      const modelType = hf.exportConfig(config.preset('tiny')).modelType;
      console.log(JSON.stringify({ tfLoaded: globalThis._tfengine !== undefined, activated: p.activated, modelType }));
    `);
    const configOnly = JSON.parse(run(process.execPath, ['config-only.mjs'], app).trim()) as {
      tfLoaded: boolean; activated: number; modelType: string;
    };
    expect(configOnly.tfLoaded).toBe(false); // neither the config nor the Hugging Face entry loads TF.js
    expect(configOnly.modelType).toBe('deepseek_v3');
    expect(configOnly.activated).toBeGreaterThan(0);

    writeFileSync(join(app, 'train.mjs'), `
      import * as tf from '@tensorflow/tfjs';
      import { deepSeekMoE, expertBiasUpdate, initBackend, moeLayersOf } from 'deepseek-moe-tfjs';
      import { DeepSeekLM, preset } from 'deepseek-moe-tfjs/model';
      import { Trainer, TextDataset } from 'deepseek-moe-tfjs/train';
      import { resolveMoEConfig } from 'deepseek-moe-tfjs/config';
      const backend = await initBackend('wasm');
      const model = tf.sequential();
      model.add(tf.layers.dense({ inputShape: [8], units: 16 }));
      model.add(deepSeekMoE({ dModel: 16, nRoutedExperts: 8, topK: 2, expertHiddenDim: 8, nSharedExperts: 1, auxFreeBias: true }));
      model.add(tf.layers.dense({ units: 1 }));
      model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
      const x = tf.randomNormal([64, 8], 0, 1, 'float32', 1);
      const y = tf.sum(tf.sin(x), -1, true);
      const h = await model.fit(x, y, { epochs: 20, batchSize: 16, verbose: 0, callbacks: [expertBiasUpdate(model)] });
      const loss = h.history.loss;
      const lm = new DeepSeekLM(preset('tiny'));
      const tfFromLayer = moeLayersOf(model).length;
      console.log(JSON.stringify({
        backend, userBackend: tf.getBackend(), first: loss[0], last: loss[loss.length - 1], moeLayers: tfFromLayer,
        lmWeights: lm.weightNames.length, trainer: typeof Trainer, dataset: typeof TextDataset,
        topK: resolveMoEConfig({ dModel: 4, nRoutedExperts: 4, topK: 2, expertHiddenDim: 2 }).topK,
      }));
    `);
    const out = JSON.parse(run(process.execPath, ['train.mjs'], app).trim().split('\n').at(-1)!) as Record<string, number | string>;
    expect(out.backend).toBe('wasm');
    // One engine: the backend the library started is the user's TF.js's, and npm installed no second copy.
    expect(out.userBackend).toBe('wasm');
    expect(readdirSync(join(app, 'node_modules/deepseek-moe-tfjs'))).not.toContain('node_modules');
    expect(out.last as number).toBeLessThan((out.first as number) * 0.7);
    expect(out).toMatchObject({ moeLayers: 1, trainer: 'function', dataset: 'function', topK: 2 });
    expect(out.lmWeights as number).toBeGreaterThan(10);
  });

  // tfjs-node beside the tarball, as a Node user installs it; its addon and libtensorflow come from this machine's
  // (built by scripts/tfjs-node-from-wheel.sh: the package's own install script downloads them from the internet).
  it.runIf(hasTensorflow)('in Node with tfjs-node installed: initBackend picks tensorflow and the layer trains there', () => {
    const built = join(repo, 'node_modules/@tensorflow/tfjs-node');
    const version = (JSON.parse(readFileSync(join(built, 'package.json'), 'utf8')) as { version: string }).version;
    run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', `@tensorflow/tfjs-node@${version}`], app);
    const installed = join(app, 'node_modules/@tensorflow/tfjs-node');
    symlinkSync(join(built, 'deps'), join(installed, 'deps'));
    mkdirSync(join(installed, 'lib/napi-v8'), { recursive: true });
    copyFileSync(join(built, 'lib/napi-v8/tfjs_binding.node'), join(installed, 'lib/napi-v8/tfjs_binding.node'));
    writeFileSync(join(app, 'train-node.mjs'), `
      import * as tf from '@tensorflow/tfjs';
      import { deepSeekMoE, initBackend, nativeKernels } from 'deepseek-moe-tfjs';
      const backend = await initBackend();
      const model = tf.sequential();
      model.add(deepSeekMoE({ dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 8, nSharedExperts: 1, inputShape: [8] }));
      model.add(tf.layers.dense({ units: 1 }));
      model.compile({ optimizer: tf.train.adam(0.02), loss: 'meanSquaredError' });
      const x = tf.randomNormal([64, 8], 0, 1, 'float32', 1);
      const y = tf.sum(tf.sin(x), -1, true);
      const loss = (await model.fit(x, y, { epochs: 20, batchSize: 16, verbose: 0 })).history.loss;
      console.log(JSON.stringify({
        backend, userBackend: tf.getBackend(), first: loss[0], last: loss.at(-1), native: nativeKernels('tensorflow').length,
      }));
    `);
    const out = JSON.parse(run(process.execPath, ['train-node.mjs'], app).trim().split('\n').at(-1)!) as Record<string, number | string>;
    expect(out).toMatchObject({ backend: 'tensorflow', userBackend: 'tensorflow', native: 14 });
    expect(existsSync(join(installed, 'node_modules/@tensorflow/tfjs-core'))).toBe(false); // one TF.js, the user's
    expect(out.last as number).toBeLessThan((out.first as number) * 0.7);
  });

  it('in a browser app: vite builds a page that imports the layer and the config entry', () => {
    writeFileSync(join(app, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
    writeFileSync(join(app, 'main.js'), `
      import * as tf from '@tensorflow/tfjs';
      import { deepSeekMoE } from 'deepseek-moe-tfjs';
      import { presets } from 'deepseek-moe-tfjs/config';
      const layer = deepSeekMoE({ dModel: 8, nRoutedExperts: 4, topK: 2, expertHiddenDim: 4 });
      document.title = Object.keys(presets).join(',') + ':' + layer.apply(tf.ones([2, 8])).shape.join('x');
    `);
    run(process.execPath, [join(app, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], app);
    const assets = readdirSync(join(app, 'dist/assets'));
    const js = assets.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(app, 'dist/assets', f), 'utf8')).join('\n');
    expect(js).toContain('DeepSeekMoE'); // the layer's registered class name
    expect(js).toContain('tiny'); // a preset from the config entry
  });
});
