import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, preset, type ModelConfigInput } from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer } from 'deepseek-moe-tfjs/train';

const root = new URL('../../', import.meta.url).pathname;
const cli = (script: string, ...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', `cli/${script}.ts`, ...args], { cwd: root, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'hf-cli-'));

/** A step-0 checkpoint of a model config (what the trainer writes before its first step). */
async function checkpointOf(name: string, input: ModelConfigInput): Promise<string> {
  const model = new DeepSeekLM(input);
  const trainer = new Trainer(model, new TextDataset({ a: 'abcdefgh'.repeat(100) }, { seqLen: 16 }), { seqLen: 16 });
  const path = join(dir, name);
  writeFileSync(path, await trainer.checkpoint());
  trainer.dispose();
  model.dispose();
  return path;
}

let tiny = '';
beforeAll(async () => {
  await initBackend('cpu');
  tiny = await checkpointOf('tiny.ckpt', preset('tiny'));
});

describe('npm run eval, export and import', () => {
  it('eval without --data scores the bundled corpus per domain, the last line JSON', () => {
    const r = cli('eval', '--checkpoint', tiny, '--backend', 'wasm', '--seq-len', '32', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/english: \d\.\d{4} nats\/byte/);
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      nll: number; bytes: number; domains: Record<string, { nll: number }>;
    };
    expect(Object.keys(json.domains)).toEqual(['english', 'chinese', 'code', 'arithmetic']);
    expect(json.nll).toBeGreaterThan(4); // an untrained model is near ln 256 = 5.55
    expect(json.nll).toBeLessThan(7);
  });

  it('export never overwrites a folder unless --force, and --force replaces only an earlier export', async () => {
    const out = join(dir, 'out');
    mkdirSync(out);
    writeFileSync(join(out, 'mine.txt'), 'keep me');
    const refused = cli('export', '--checkpoint', tiny, '--out', out);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/'.*out' exists and is not empty; choose another folder, or pass --force/);
    const forced = cli('export', '--checkpoint', tiny, '--out', out, '--force');
    expect(forced.status).toBe(2);
    expect(forced.stderr).toMatch(/--force replaces only an earlier export, .* it has no deepseek-moe-export.json/);
    expect(readdirSync(out)).toEqual(['mine.txt']);
    expect(readFileSync(join(out, 'mine.txt'), 'utf8')).toBe('keep me');
    const fresh = join(dir, 'fresh');
    expect(cli('export', '--checkpoint', tiny, '--out', fresh).status).toBe(0);
    const again = cli('export', '--checkpoint', tiny, '--out', fresh, '--force', '--dtype', 'bfloat16');
    expect(again.status, again.stderr).toBe(0);
    expect(readdirSync(fresh).sort()).toEqual(['config.json', 'deepseek-moe-export.json', 'generation_config.json',
      'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(JSON.parse(readFileSync(join(fresh, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const mha = await checkpointOf('mha.ckpt', { ...preset('tiny'), attention: 'mha' });
    const r = cli('export', '--checkpoint', mha, '--out', join(dir, 'mha-out'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected attention to be 'mla'/);
    expect(existsSync(join(dir, 'mha-out'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('import round-trips an export into a checkpoint, and never overwrites one without --force', () => {
    const out = join(dir, 'round');
    expect(cli('export', '--checkpoint', tiny, '--out', out).status).toBe(0);
    const ckpt = join(dir, 'back.ckpt');
    const first = cli('import', '--from', out, '--checkpoint', ckpt);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/deepseek_v3 from .*2 layers \(1 dense\), 8 routed experts, top-2, 1 shared/);
    const again = cli('import', '--from', out, '--checkpoint', ckpt);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/exists; choose another path, or --force to replace it/);
    const missing = cli('import', '--checkpoint', ckpt);
    expect(missing.stderr).toMatch(/expected --from, but it is missing/);
  });
});
