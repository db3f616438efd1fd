import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareResults } from '../../tools/bench-report/compare.js';
import { validateBenchResult } from '../../tools/bench-suite/validate.js';

const root = new URL('../../', import.meta.url).pathname;
const fixture = (name: string) => join(root, 'test/bench/fixtures', name);
const load = (name: string) => validateBenchResult(JSON.parse(readFileSync(fixture(name), 'utf8')));
const compare = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/compare.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('bench:compare', () => {
  // a.json: a wasm run in Node; b.json: a webgpu run in a browser, layer twice as fast, training 1.5x, one extra point.
  it('matches figures by name and gives B / A and how many times better B is', () => {
    const c = compareResults(load('a.json'), load('b.json'));
    expect(c.a).toBe('wasm 2026-11-22');
    expect(c.b).toBe('browser-webgpu 2026-11-23');
    const byName = new Map(c.figures.map((f) => [f.name, f]));
    expect(byName.get('layer T=256 E=64 K=6: MoE')).toEqual({
      name: 'layer T=256 E=64 K=6: MoE', unit: 'ms', a: 40, b: 20, ratio: 0.5, gain: 2,
    });
    expect(byName.get('training small 2x64 (dropless): moe')).toMatchObject({ unit: 'tokens/s', a: 1000, b: 1500, ratio: 1.5, gain: 1.5 });
    expect(byName.get('scaling T=256 E=4 K=4: MoE')!.gain).toBe(1);
    // Kernels (wasm) and shader programs (webgpu) are different counts: never matched.
    expect(c.onlyA).toEqual(['layer reference T=256 E=64 K=6: MoE kernels', 'layer reference T=256 E=64 K=6: dense kernels']);
    expect(c.onlyB).toEqual([
      'layer reference T=256 E=64 K=6: MoE programs', 'layer reference T=256 E=64 K=6: dense programs',
      'scaling T=256 E=16 K=4: MoE', 'scaling T=256 E=16 K=4: dense =activated', 'scaling T=256 E=16 K=4: dense =total',
    ]);
  });

  it('prints the comparison as a markdown table', () => {
    const r = compare(fixture('a.json'), fixture('b.json'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^A: wasm 2026-11-22\nB: browser-webgpu 2026-11-23\n/);
    expect(r.stdout).toContain('| layer T=256 E=64 K=6: MoE | ms | 40.0 | 20.0 | 0.50 | 2.00× |');
    expect(r.stdout).toContain('| training small 2x64 (dropless): moe | tokens/s | 1000 | 1500 | 1.50 | 1.50× |');
    expect(r.stdout).toMatch(/Only in B \(5\): layer reference T=256 E=64 K=6: MoE programs/);
  });

  it.each([
    [['only-one.json'], /expected two result files \(A.json B.json\), but got 1: only-one.json/],
    [[fixture('a.json'), '/no/such.json'], /\/no\/such.json: ENOENT/],
  ])('%j: a clear error, exit code 2', (args, message) => {
    const r = compare(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses a damaged result file, naming the field', () => {
    const bad = JSON.parse(readFileSync(fixture('b.json'), 'utf8')) as { layer: { ms: Record<string, unknown> } };
    bad.layer.ms.moe = 'fast';
    const file = join(mkdtempSync(join(tmpdir(), 'compare-')), 'bad.json');
    writeFileSync(file, JSON.stringify(bad));
    const r = compare(fixture('a.json'), file);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`bad.json: bench result: expected layer.ms.moe to be a finite number, but got "fast".`);
  });
});
