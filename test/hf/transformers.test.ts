/**
 * transformers itself as the judge: a model trained here, exported by `npm run export`, loads with
 * AutoModelForCausalLM.from_pretrained (no missing or unexpected keys) and scores a text as `npm run eval` does;
 * random DeepSeek-V3 and V2 models saved by save_pretrained, imported by `npm run import`, score here as there;
 * AutoTokenizer maps any UTF-8 text to our ids. CI installs torch and transformers (.ci/run) and sets
 * DEEPSEEK_MOE_REQUIRE_TRANSFORMERS=1, so there these tests cannot skip; elsewhere they run when Python has both.
 */
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, evaluateText, exportHuggingFace, mtpCached, preset } from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer, loadModel } from 'deepseek-moe-tfjs/train';
import { bundledCorpus } from '../../tools/corpus.js';

const root = new URL('../../', import.meta.url).pathname;
const python = process.env.PYTHON ?? 'python3';
const required = process.env.DEEPSEEK_MOE_REQUIRE_TRANSFORMERS === '1';
const available = spawnSync(python, ['-c', 'import torch, transformers'], { encoding: 'utf8' }).status === 0;

const cli = (script: string, ...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', `cli/${script}.ts`, ...args], { cwd: root, encoding: 'utf8' });
const pythonJson = (...args: string[]) => {
  const r = spawnSync(python, [join(root, 'tools/hf_check.py'), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`hf_check.py ${args[0]} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
};

const dir = mkdtempSync(join(tmpdir(), 'hf-'));
const textFile = join(dir, 'text.txt');
// Every script the corpus has, and the bytes a byte tokenizer must not mangle: CJK, emoji, a combining accent.
const text = `${bundledCorpus().english!.slice(0, 700)}\n深度求索的混合专家模型。🙂 café naïve\n` +
  `${bundledCorpus().code!.slice(0, 500)}`;

describe.runIf(available || required)('transformers loads what we export and we load what it saves', () => {
  beforeAll(async () => {
    writeFileSync(textFile, text);
    await initBackend('wasm');
  });

  it('has Python with torch and transformers', () => {
    expect(available, `${python} cannot import torch and transformers (pip install torch transformers)`).toBe(true);
  });

  it('a model trained here, exported, scores a text in transformers within 1e-4 of npm run eval, and AutoTokenizer agrees', async () => {
    const model = new DeepSeekLM({ ...preset('tiny'), qLoraRank: 8, nLayers: 3, moe: { ...preset('tiny').moe,
      nExpertGroups: 4, topKGroups: 2, groupScoreFunc: 'sumTop2' } });
    const trainer = new Trainer(model, new TextDataset(bundledCorpus(), { seqLen: 32 }), { steps: 8, batchSize: 4,
      seqLen: 32, evalEvery: 100, learningRate: 1e-2 });
    await trainer.run();
    const checkpoint = join(dir, 'trained.ckpt');
    writeFileSync(checkpoint, await trainer.checkpoint());
    const bias = await model.weights['blocks.1.moe.expertBias']!.data();
    expect(bias.some((b) => b !== 0)).toBe(true); // the bias moved, so the export carries a real one
    trainer.dispose();
    model.dispose();

    const exported = cli('export', '--checkpoint', checkpoint, '--out', join(dir, 'trained-hf'));
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/deepseek_v3 \(step 8\), float32/);
    const evaluated = cli('eval', '--checkpoint', checkpoint, '--data', textFile, '--backend', 'wasm', '--json');
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const ours = JSON.parse(evaluated.stdout.trim().split('\n').at(-1)!) as { bytes: number; nll: number; predicted: number };
    const theirs = pythonJson('score', join(dir, 'trained-hf'), textFile, '32');
    expect(theirs).toMatchObject({ missing: [], unexpected: [], mismatched: [], modelClass: 'DeepseekV3ForCausalLM' });
    expect(theirs.predicted).toBe(ours.predicted);
    expect(Math.abs((theirs.nll as number) - ours.nll)).toBeLessThan(1e-4);
    expect(theirs).toMatchObject({ tokenizerIdsMatch: true, decoded: true });
  });

  it.each(['v3', 'v2'])('a random DeepSeek-%s saved by transformers, imported, scores here as there', async (kind) => {
    const folder = join(dir, `random-${kind}`);
    pythonJson('make', kind, folder);
    const checkpoint = join(dir, `random-${kind}.ckpt`);
    const imported = cli('import', '--from', folder, '--checkpoint', checkpoint);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(new RegExp(`deepseek_${kind} from .*3 layers \\(1 dense\\), 8 routed experts, top-3, 1 shared`));
    const model = loadModel(new Uint8Array(readFileSync(checkpoint)));
    if (kind === 'v3') expect(model.config.qLoraRank).toBe(16);
    const ours = await evaluateText(model.view, model.config, new TextEncoder().encode(text), { seqLen: 40 });
    model.dispose();
    const theirs = pythonJson('score', folder, textFile, '40');
    expect(theirs.predicted).toBe(ours.predicted);
    expect(Math.abs((theirs.nll as number) - ours.nll)).toBeLessThan(1e-4);
  });

  it("an exported MTP module drafts in transformers' MtpModel what it drafts here (logits within 1e-4)", async () => {
    await initBackend('cpu');
    const model = new DeepSeekLM({ ...preset('tiny'), qLoraRank: 8, mtpDepth: 1 });
    Object.values(model.weights).forEach((v, i) => tf.tidy(() => v.assign(tf.randomNormal(v.shape, v.shape.length === 1 ? 1 : 0,
      v.shape.length === 1 ? 0.1 : 0.3, 'float32', 7000 + i)))); // wide weights: a misplaced row shows
    const folder = join(dir, 'mtp-hf');
    mkdirSync(folder);
    for (const [name, bytes] of Object.entries((await exportHuggingFace(model)).files)) writeFileSync(join(folder, name), bytes);
    const ids = Array.from(new TextEncoder().encode('MTP drafts the token after the next one.')).slice(0, 24);
    writeFileSync(join(dir, 'mtp-ids.json'), JSON.stringify(ids));
    // Position i: the main model's state at i and the embedding of token i + 1 predict token i + 2.
    const S = ids.length;
    const out = model.forward(tf.tensor2d(ids, [1, S], 'int32'));
    const ours = mtpCached(model.view, model.config, tf.slice(out.hidden, 0, S - 1), tf.tensor1d(ids.slice(1), 'int32'), null);
    const mine = await ours.logits.data();
    const theirs = pythonJson('mtp', folder, join(dir, 'mtp-ids.json')) as { logits: number[]; missing: string[]; unexpected: string[] };
    expect(theirs.missing).toEqual([]);
    // The main model leaves the MTP layer to MtpModel: every key it skips is that layer's.
    expect(theirs.unexpected.length).toBeGreaterThan(0);
    expect(theirs.unexpected.every((k) => k.startsWith('model.layers.2.'))).toBe(true);
    expect(theirs.logits).toHaveLength(mine.length);
    expect(Math.max(...theirs.logits.map((v, i) => Math.abs(v - mine[i]!)))).toBeLessThan(1e-4);
    model.dispose();
    await initBackend('wasm');
  });

  it('npm run import refuses a malformed folder with a clear error and writes nothing', () => {
    const folder = join(dir, 'random-v3');
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    const broken = join(dir, 'broken');
    const write = (files: Record<string, string | Uint8Array>) => {
      spawnSync('rm', ['-rf', broken]);
      spawnSync('mkdir', ['-p', broken]);
      for (const [name, content] of Object.entries(files)) writeFileSync(join(broken, name), content);
    };
    const weights = readFileSync(join(folder, 'model.safetensors'));
    const cases: [Record<string, string | Uint8Array>, RegExp][] = [
      [{ 'config.json': JSON.stringify(config) }, /expected model.safetensors or model.safetensors.index.json/],
      [{ 'config.json': JSON.stringify(config), 'model.safetensors': weights.subarray(0, weights.length - 10) }, /truncated/],
      [{ 'config.json': JSON.stringify({ ...config, kv_lora_rank: 12 }), 'model.safetensors': weights },
        /kv_a_proj_with_mqa.weight' to have shape \[20,32\], but got \[24,32\]/],
    ];
    for (const [files, message] of cases) {
      write(files);
      const out = join(dir, 'broken.ckpt');
      const r = cli('import', '--from', broken, '--checkpoint', out);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
  });
});
