/**
 * npm run bench:claims -- --quick: every table trains and measures, the result holds the schema, the tables'
 * models have equal total and activated parameters where the claims say so, and the files are written.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateClaimsResult } from '../../tools/claims/schema.js';
import { claimTables } from '../../tools/claims/tables.js';
import { countModelParams } from 'deepseek-moe-tfjs/model';

const root = new URL('../../', import.meta.url).pathname;
const claims = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/claims.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('npm run bench:claims', () => {
  it.each([true, false])('table 1 compares MoE models of equal total and activated parameters (quick %s)', (quick) => {
    const table = claimTables(quick).find((t) => t.name === 'fineGrained')!;
    const moe = table.variants.filter((v) => !v.key.startsWith('dense')).map((v) => countModelParams(v.model));
    const [gshard] = moe;
    for (const p of moe) {
      expect(Math.abs(p.total / gshard!.total - 1)).toBeLessThan(0.02); // only the router, d E, differs
      expect(Math.abs(p.activated / gshard!.activated - 1)).toBeLessThan(0.02);
    }
    const dense = (key: string) => countModelParams(table.variants.find((v) => v.key === key)!.model);
    expect(Math.abs(dense('denseActivated').activated / gshard!.activated - 1)).toBeLessThan(0.01);
    expect(Math.abs(dense('denseTotal').total / gshard!.total - 1)).toBeLessThan(0.01);
  });

  it('--quick runs every table, writes the result in the schema, ' +
    'the markdown and the charts', { timeout: 600_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'claims-'));
    const r = claims('--quick', '--seeds', '2', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    const result = validateClaimsResult(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
    expect(result.settings.quick).toBe(true);
    expect(result.claims.map((c) => c.name)).toEqual(['fineGrained', 'lossFree', 'globalBatch', 'mtp']);
    const files = readdirSync(out).sort();
    const stem = `claims-${result.date}-quick`;
    expect(files).toEqual(expect.arrayContaining([`${stem}.json`, `${stem}.md`, `${stem}-lossFree-maxvio-batch.svg`,
      `${stem}-globalBatch-globalBatch-specialisation.svg`, `${stem}-mtp-validation.svg`]));
    expect(validateClaimsResult(JSON.parse(readFileSync(join(out, `${stem}.json`), 'utf8')))).toEqual(result);
    const byName = Object.fromEntries(result.claims.map((c) => [c.name, c]));
    // Every model trained: a finite loss below uniform guessing (ln 256 = 5.55) for each seed.
    for (const c of result.claims) {
      for (const v of c.variants) for (const s of v.seeds) expect(s.valLoss).toBeLessThan(5.55);
    }
    expect(byName.fineGrained!.probes.m4SharedWithoutShared).toHaveLength(2);
    expect(byName.mtp!.variants.find((v) => v.key === 'mtp')!.acceptanceRate).toBeGreaterThanOrEqual(0);
    expect(byName.globalBatch!.variants[0]!.seeds[0]!.specialisation![0]!).toHaveLength(4); // four domains
    // MaxVio_batch is reported for every step of every run.
    const lossFree = byName.lossFree!.variants;
    expect(lossFree[0]!.seeds[0]!.maxVioBatch).toHaveLength(result.settings.steps);
    expect(r.stderr).toMatch(/Largest seed spread in this table/);
  });

  it('refuses an unknown table by name', () => {
    const r = claims('--only', 'moonshot');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected --only to name fineGrained, lossFree, globalBatch, mtp, but got 'moonshot'/);
  });
});
