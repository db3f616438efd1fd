import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countModelParams, preset } from 'deepseek-moe-tfjs/model';
import { validateBenchResult } from '../../tools/bench-suite/validate.js';
import type { BenchResult } from '../../tools/bench-suite/schema.js';

const root = new URL('../../', import.meta.url).pathname;
const bench = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('npm run bench -- --quick', () => {
  // On wasm only: the same suite on cpu takes three minutes of the CI's budget and checks nothing more.
  it('runs the suite on wasm and writes results in the schema, a summary and the charts', { timeout: 600_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    const r = bench('--quick', '--backend', 'wasm', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const files = readdirSync(out).filter((f) => f.endsWith('.json')).sort();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{4}-\d\d-\d\d-wasm\.json$/);
    const results: BenchResult[] = files.map((f) => validateBenchResult(JSON.parse(readFileSync(join(out, f), 'utf8'))));

    for (const result of results) {
      expect(result.mode).toBe('quick');
      expect(result.environment.runtime).toBe('node');
      expect(result.scaling.experts.map((p) => p.nRoutedExperts)).toEqual([8, 64, 256]);
      expect(result.otherLayers.map((l) => l.name)).toEqual(['DeepSeek-V3 shape']);
      expect(result.layer.programs).toMatchObject({ unit: 'kernels' });
      expect(result.layer.programs.moe).toBeLessThan(result.layer.programs.moeReference!);
      expect(result.otherLayers[0]!.ms.moeReference).toBeNull(); // the stock path at E = 256 is too slow to time
      expect(result.scaling.topK.map((p) => p.topK)).toEqual([1, 4, 16]);
      expect(result.training.moe.total).toBe(countModelParams(preset('small')).total);
      // Memory: the weights are the layer's parameters in float32; they grow with total parameters, and at fixed
      // total the forward pass's activations grow with topK.
      for (const p of [...result.memory.experts, ...result.memory.topK]) expect(p.weightBytes).toBe(4 * p.totalParams);
      const forward = result.memory.topK.map((p) => p.forwardPeakBytes);
      expect(forward[1]!).toBeGreaterThan(forward[0]!);
      expect(forward[2]!).toBeGreaterThan(forward[1]!);
      expect(new Set(result.memory.topK.map((p) => p.weightBytes)).size).toBe(1);
      // The breakdown's stages are parts of the layer: none alone takes longer than the whole.
      // (Timed apart on a shared machine, a stage can come out a little over the whole: the bound is loose.)
      for (const stage of Object.values(result.breakdown.stages)) expect(stage.share).toBeLessThan(2);
    }
    expect(results.map((x) => x.backend)).toEqual(['wasm']);

    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toMatch(/^# DeepSeekMoE bench, \d{4}-\d\d-\d\d \(quick\)/);
    expect(summary).toMatch(/\| wasm \| [\d.]+ \|/);
    expect(summary).toContain('![time vs routed experts](charts/scaling-experts-wasm.svg)');
    const charts = readdirSync(join(out, 'charts')).sort();
    expect(charts).toEqual([
      'breakdown.svg', 'kv-cache.svg', 'layer.svg', 'memory-experts-wasm.svg', 'memory-topk-wasm.svg', 'params.svg',
      'scaling-experts-wasm.svg', 'scaling-topk-wasm.svg', 'training.svg',
    ]);
    const scaling = readFileSync(join(out, 'charts', 'scaling-experts-wasm.svg'), 'utf8');
    expect(scaling).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
    expect(scaling.match(/<polyline /g)).toHaveLength(3); // MoE and its two dense twins

    // --summary-only rebuilds the report from the files, running nothing.
    const again = bench('--summary-only', '--quick', '--out', out);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/summary of wasm ->/);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toBe(summary);
  });

  it('--summary-only says so when the folder has no results of that size', () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    const r = bench('--summary-only', '--out', out);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`bench: no full results in ${out} to summarise (add --quick for quick ones).`);
  });

  it.each([
    [['--backend', 'metal'], /expected --backend to list names from tensorflow, wasm, cpu, webgpu, webgl, but got 'metal'/],
    [['--browser', '--backend', 'tensorflow'],
      /expected --backend with --browser to list webgpu, webgl, wasm or cpu, but got 'tensorflow'/],
    [['--fast'], /Unknown option '--fast'/],
  ])('%j: a clear error, exit code 2', (args, message) => {
    const r = bench(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
