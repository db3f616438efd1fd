/**
 * npm run bench:claims -- --quick: every table trains and measures, the result holds the schema, the tables'
 * models have equal total and activated parameters where the claims say so, and the files are written.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { domainSpecialisation, pairedCell, pairedDifferences } from '../../tools/claims/report.js';
import { pairedInterval, tQuantile975, verdict } from '../../tools/claims/stats.js';
import {
  balancePhases, maxVioBatchPhase, pairedMeasure, pooledTeacherForced,
} from '../../tools/claims/summaries.js';
import { validateClaimsResult, type ClaimsResult } from '../../tools/claims/schema.js';
import { claimTables } from '../../tools/claims/tables.js';
import { countModelParams } from 'deepseek-moe-tfjs/model';

const root = new URL('../../', import.meta.url).pathname;
const claims = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/claims.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('npm run bench:claims', () => {
  let quickRun: ClaimsResult | undefined; // the --quick run of every table, one model at a time

  it.each([true, false])('table 1 compares MoE models of equal total and activated parameters (quick %s)', (quick) => {
    const table = claimTables(quick).find((t) => t.name === 'fineGrained')!;
    const moe = table.variants.filter((v) => !v.key.startsWith('dense')).map((v) => countModelParams(v.model));
    const [gshard] = moe;
    // Everything but the router is equal; the router (d E and the bias E per MoE block) grows with E: at 64
    // experts of the small width it adds 4% to the total, which the table states.
    const withoutRouter = (p: (typeof moe)[number], part: 'totalParts' | 'activatedParts') =>
      (part === 'totalParts' ? p.total : p.activated) - p[part].router;
    for (const p of moe) {
      expect(withoutRouter(p, 'totalParts')).toBe(withoutRouter(gshard!, 'totalParts'));
      expect(withoutRouter(p, 'activatedParts')).toBe(withoutRouter(gshard!, 'activatedParts'));
      expect(Math.abs(p.total / gshard!.total - 1)).toBeLessThan(0.05);
    }
    const dense = (key: string) => countModelParams(table.variants.find((v) => v.key === key)!.model);
    expect(Math.abs(dense('denseActivated').activated / gshard!.activated - 1)).toBeLessThan(0.01);
    expect(Math.abs(dense('denseTotal').total / gshard!.total - 1)).toBeLessThan(0.01);
  });

  it.each([true, false])('the upcycling table: its MoE rows hold the preset MoE\'s expert widths, the dense row the ' +
    'activated width (quick %s)', (quick) => {
    const table = claimTables(quick).find((t) => t.name === 'upcycling')!;
    const params = (key: string) => countModelParams(table.variants.find((v) => v.key === key)!.model);
    const [dense, fine, sparse, scratch] = ['denseContinued', 'fineUpcycled', 'sparseUpcycled', 'moeScratch'].map(params);
    const noRouter = (p: typeof fine, which: 'total' | 'activated') =>
      p![which] - p![which === 'total' ? 'totalParts' : 'activatedParts'].router;
    expect(table.variants.find((v) => v.key === 'fineUpcycled')!.model).toEqual(
      table.variants.find((v) => v.key === 'moeScratch')!.model); // grown into the preset MoE itself
    for (const p of [fine, sparse, scratch]) {
      expect(noRouter(p, 'activated')).toBe(dense!.activated);
      expect(noRouter(p, 'total')).toBe(noRouter(scratch, 'total'));
    }
    expect(table.warmStart!.model).toEqual(table.variants[0]!.model);
  });

  it('--quick runs every table, writes the result in the schema, ' +
    'the markdown and the charts', { timeout: 600_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'claims-'));
    const r = claims('--quick', '--seeds', '2', '--jobs', '1', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    const result = validateClaimsResult(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
    quickRun = result;
    expect(result.settings.quick).toBe(true);
    expect(result.claims.map((c) => c.name)).toEqual(['fineGrained', 'lossFree', 'globalBatch', 'mtp', 'upcycling']);
    const files = readdirSync(out).sort();
    const stem = `claims-${result.date}-quick`;
    expect(files).toEqual(expect.arrayContaining([`${stem}.json`, `${stem}.md`, `${stem}-lossFree-maxvio-batch.svg`,
      `${stem}-globalBatch-globalBatch-specialisation.svg`, `${stem}-mtp-validation.svg`]));
    expect(validateClaimsResult(JSON.parse(readFileSync(join(out, `${stem}.json`), 'utf8')))).toEqual(result);
    expect(files.filter((f) => f.endsWith('.partial.json') || f.endsWith('.runs.json'))).toEqual([]); // all done
    const noBaseline = { ...result, claims: [{ ...result.claims[0]!, baseline: 'nobody' }] };
    expect(() => validateClaimsResult(noBaseline))
      .toThrow(/expected claims\[0\] \(fineGrained\)\.baseline to be a variant's key/);
    const byName = Object.fromEntries(result.claims.map((c) => [c.name, c]));
    // Every model trained: a finite loss below uniform guessing (ln 256 = 5.55) for each seed.
    for (const c of result.claims) {
      for (const v of c.variants) for (const s of v.seeds) expect(s.valLoss).toBeLessThan(5.55);
    }
    expect(byName.fineGrained!.probes.m4SharedWithoutShared).toHaveLength(2);
    // Upcycled at step 17 of 25: the grown models start where the dense model was (exact settings), their dense
    // phase the dense row's own, and they train on to the end as MoEs.
    const upcycled = byName.upcycling!;
    for (const key of ['fineUpcycled', 'sparseUpcycled']) {
      const gaps = upcycled.probes[`stepZeroGap.${key}`]!;
      expect(gaps).toHaveLength(2);
      for (const gap of gaps) expect(Math.abs(gap)).toBeLessThan(1e-4);
      const v = upcycled.variants.find((x) => x.key === key)!;
      expect(v.seeds[0]!.curve.map(([step]) => step)).toEqual([17, 25]);
      expect(v.seeds[0]!.maxVioBatch).toHaveLength(8); // MoE steps 18-25
    }
    expect(r.stderr).toMatch(/Each upcycled model's validation loss at the step it grew minus the dense model's there/);
    const withMtp = byName.mtp!.variants.find((v) => v.key === 'mtp')!;
    expect(withMtp.acceptanceRate).toBeGreaterThanOrEqual(0);
    // Free-running decoding from prompts cut from the held-out text, one per domain in --quick, texts stored.
    const free = withMtp.seeds[0]!.freeRunning!;
    expect(free.samples.map((x) => x.domain)).toEqual(['english', 'chinese', 'code', 'arithmetic']);
    expect(free.generated).toBe(4 * result.settings.decodeTokens);
    expect(withMtp.seeds[0]!.acceptanceRate).toBeCloseTo(free.accepted / free.drafted, 12);
    expect(r.stderr).toMatch(/free-running greedy decoding from 4 prompts cut from the held-out text per seed: /);
    expect(byName.globalBatch!.variants[0]!.seeds[0]!.specialisation![0]!).toHaveLength(4); // four domains
    // MaxVio_batch is reported for every step of every run.
    const lossFree = byName.lossFree!.variants;
    expect(lossFree[0]!.seeds[0]!.maxVioBatch).toHaveLength(result.settings.steps);
    expect(r.stderr).toMatch(/Largest seed spread in this table/);
    // Each model against the table's baseline, seed by seed, and the losses per domain.
    expect(r.stderr).toMatch(/\| minus the baseline: paired mean \[95% t-interval\], resolved or not \(seed by seed\)/);
    expect(r.stderr).toMatch(/\| GShard: 8 experts of h 16, top-2 \| [^|]+ \| [^|]+ \| [^|]+ \| baseline \|/);
    expect(r.stderr).toMatch(/\| model, per domain \(mean over seeds\) \| english \| chinese \| code \| arithmetic \|/);
  });

  it('resumes an interrupted run, and --jobs 2 trains the same models as --jobs 1, figure for figure', {
    timeout: 600_000,
  }, () => {
    expect(quickRun, 'the quick run above').toBeDefined();
    const earlier = quickRun!;
    const [, , globalBatch, mtp] = earlier.claims;
    // As if a run had stopped after the global-batch table: its partial file, no final result.
    const out = mkdtempSync(join(tmpdir(), 'claims-'));
    const stem = `claims-${earlier.date}-quick`;
    writeFileSync(join(out, `${stem}.partial.json`), JSON.stringify({ ...earlier, claims: [globalBatch] }));
    const r = claims('--quick', '--seeds', '2', '--only', 'mtp', '--jobs', '2', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .*partial\.json: globalBatch done/);
    expect(r.stderr).toMatch(/mtp; 4 training runs of 25 steps, 2 at a time/);
    const result = validateClaimsResult(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
    expect(result.claims).toEqual([globalBatch, mtp]); // kept as they were, and trained two at a time as one at a time
    // Two tables are still missing: the partial file stays, holding both finished ones, for the next chunk.
    const partial = validateClaimsResult(JSON.parse(readFileSync(join(out, `${stem}.partial.json`), 'utf8')));
    expect(partial.claims).toEqual([globalBatch, mtp]);
    expect(r.stderr).toMatch(/fineGrained, lossFree, upcycling still to run/);
    // A run of hours goes in chunks: the training runs finished before (here mtp without MTP, both seeds) are
    // kept in <name>.runs.json and only the missing ones train; runs of other tables stay in the file.
    const chunk = mkdtempSync(join(tmpdir(), 'claims-'));
    const noMtp = mtp!.variants.find((v) => v.key === 'noMtp')!;
    const lossFreeRun = {
      task: { claim: 'lossFree', variant: 'none', seed: 0 }, run: { result: earlier.claims[1]!.variants[0]!.seeds[0]!,
        probes: {} },
    };
    writeFileSync(join(chunk, 'long.runs.json'), JSON.stringify({
      backend: earlier.backend, settings: earlier.settings,
      runs: [lossFreeRun, ...noMtp.seeds.map((result) => ({
        task: { claim: 'mtp', variant: 'noMtp', seed: result.seed }, run: { result, probes: {} },
      }))],
    }));
    const rest = claims('--quick', '--seeds', '2', '--only', 'mtp', '--jobs', '1', '--out', chunk, '--name', 'long',
      '--json');
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.stderr).toMatch(/resuming .*long\.runs\.json: 3 training runs done/);
    expect(rest.stderr).toMatch(/mtp; 2 training runs of 25 steps/);
    const chunked = validateClaimsResult(JSON.parse(rest.stdout.trim().split('\n').at(-1)!));
    expect(chunked.claims[0]!.variants.find((v) => v.key === 'noMtp')!.seeds).toEqual(noMtp.seeds);
    expect(chunked.claims[0]!.variants.find((v) => v.key === 'mtp')!.seeds).toEqual(mtp!.variants[1]!.seeds);
    const kept = JSON.parse(readFileSync(join(chunk, 'long.runs.json'), 'utf8')) as { runs: unknown[] };
    expect(kept.runs).toHaveLength(5);
    expect(kept.runs[0]).toEqual(lossFreeRun);
  });

  it('compares models seed by seed and measures domain specialisation as worked by hand', () => {
    const seed = (n: number, valLoss: number) => ({
      seed: n, valLoss, domainLoss: {}, maxVioGlobal: 0, curve: [], maxVioBatch: [],
    });
    const variant = (key: string, losses: number[]) => ({
      key, label: key, params: { total: 1, activated: 1 }, seeds: losses.map((x, i) => seed(i, x)),
      valLoss: { mean: 0, min: 0, max: 0 }, maxVioGlobal: 0,
    });
    const claim = {
      name: 'mtp' as const, title: '', source: '', paper: [], baseline: 'b', probes: {},
      // Seeds listed out of order: they are matched by their number, not their place.
      variants: [variant('a', [2.5, 2.0]), { ...variant('b', [2.0, 2.25]), seeds: [seed(1, 2.25), seed(0, 2.0)] }],
    };
    expect(pairedDifferences(claim)).toEqual({ a: [0.5, -0.25], b: [0, 0] });
    // Two experts: a domain all on one is 0.5 from uniform, one split evenly 0; one block of both: 0.25.
    expect(domainSpecialisation([[[1, 0], [0.5, 0.5]]])).toBeCloseTo(0.25, 12);
    expect(domainSpecialisation([[[0.25, 0.25, 0.25, 0.25]], [[0.7, 0.1, 0.1, 0.1]]])).toBeCloseTo(0.225, 12);
  });

  it('derives MaxVio_batch phases, paired measures and pooled acceptance as worked by hand', () => {
    expect(balancePhases(600)).toEqual({ early: { from: 0, to: 100 }, late: { from: 400, to: 600 } });
    const seed = (n: number, maxVioBatch: number[], extra: object = {}) => ({
      seed: n, valLoss: 0, domainLoss: {}, maxVioGlobal: n, curve: [], maxVioBatch, ...extra,
    });
    const variant = (key: string, seeds: ReturnType<typeof seed>[]) => ({
      key, label: key, params: { total: 1, activated: 1 }, seeds, valLoss: { mean: 0, min: 0, max: 0 }, maxVioGlobal: 0,
    });
    // Steps [1, 3) of [0, 1, 2, 3]: mean 1.5, sd sqrt(0.5); of [2, 2, 2, 2]: mean 2, sd 0.
    const v = variant('a', [seed(0, [0, 1, 2, 3]), seed(1, [2, 2, 2, 2])]);
    const phase = maxVioBatchPhase(v, { from: 1, to: 3 });
    expect(phase.mean).toEqual([1.5, 2]);
    expect(phase.sd[0]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(phase.sd[1]).toBe(0);
    // Paired by seed number, whatever the order; a variant missing the measure in a seed is left out.
    const claim = {
      name: 'lossFree' as const, title: '', source: '', paper: [], baseline: 'b', probes: {},
      variants: [
        variant('a', [seed(0, [], { maxVioGlobalTrainingMix: 0.5 }), seed(1, [], { maxVioGlobalTrainingMix: 0.75 })]),
        variant('b', [seed(1, [], { maxVioGlobalTrainingMix: 1 }), seed(0, [], { maxVioGlobalTrainingMix: 0.25 })]),
        variant('c', [seed(0, [], { maxVioGlobalTrainingMix: 1 }), seed(1, [])]),
      ],
    };
    expect(pairedMeasure(claim, (s) => s.maxVioGlobalTrainingMix)).toEqual({ a: [0.25, -0.25] });
    expect(pairedMeasure(claim, (s) => s.maxVioGlobal)).toEqual({ a: [0, 0], c: [0, 0] });
    // Pooled over seeds: english 3/4 and 1/4 is 4/8; all: 12/14 and 7/14 is 19/28.
    const tf = (accepted: number, eligible: number) => ({ accepted, eligible, low: 0, high: 1 });
    const pooled = pooledTeacherForced(variant('m', [
      seed(0, [], { teacherForced: { english: tf(3, 4), code: tf(9, 10) } }),
      seed(1, [], { teacherForced: { english: tf(1, 4), code: tf(6, 10) } }),
    ]));
    expect(pooled!.english).toEqual({ accepted: 4, eligible: 8, rate: 0.5, bySeed: [0.75, 0.25] });
    expect(pooled!.code!.rate).toBeCloseTo(0.75, 12);
    expect(pooled!.all).toEqual({ accepted: 19, eligible: 28, rate: 19 / 28, bySeed: [12 / 14, 7 / 14] });
    expect(pooledTeacherForced(v)).toBeNull();
  });

  it('states a paired difference as its mean and 95% t-interval, resolved only when it excludes zero', () => {
    // Worked by hand: mean 0.04, sd 0.01, t(0.975, 2) = 4.303, half-width 4.303 * 0.01 / sqrt(3) = 0.02484.
    const up = pairedInterval([0.03, 0.04, 0.05]);
    expect(up.mean).toBeCloseTo(0.04, 12);
    expect(up.low).toBeCloseTo(0.04 - 0.024843, 5);
    expect(up.high).toBeCloseTo(0.04 + 0.024843, 5);
    expect(verdict(up)).toBe('higher, resolved');
    expect(verdict(pairedInterval([0.01, 0.02, 0.03]))).toBe('not resolved'); // [-0.005, 0.045]
    expect(verdict(pairedInterval([-0.05, -0.04, -0.03]))).toBe('lower, resolved');
    expect(pairedInterval([0.1])).toMatchObject({ n: 1, low: null, resolved: false });
    expect(pairedCell([0.03, 0.04, 0.05])).toBe('+0.040 [+0.015, +0.065], higher, resolved (+0.030, +0.040, +0.050)');
    // The t quantile: the table, then the Cornish-Fisher expansion, close to the exact 1.984 at df 100.
    expect(tQuantile975(7)).toBe(2.365);
    expect(tQuantile975(100)).toBeCloseTo(1.984, 3);
  });

  it('refuses an unknown table, and a count of seeds or jobs that is not a positive integer, by name', () => {
    const r = claims('--only', 'moonshot');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected --only to name fineGrained, lossFree, globalBatch, mtp, upcycling, but got 'moonshot'/);
    for (const [flag, value] of [['--jobs', '0'], ['--seeds', '1.5']]) {
      const bad = claims(flag!, value!);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain(`expected ${flag} to be an integer >= 1, but got '${value}'.`);
    }
    const both = claims('--budget', '--only', 'mtp');
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('expected --budget or --only, not both');
    const empty = mkdtempSync(join(tmpdir(), 'claims-'));
    writeFileSync(join(empty, 'english.txt'), 'only one domain');
    const noCorpus = claims('--budget', '--corpus', empty);
    expect(noCorpus.status).toBe(2);
    expect(noCorpus.stderr).toContain(`'${empty}' has no chinese.txt, code.txt, arithmetic.txt`);
    expect(claims('--corpus', empty).stderr).toContain('expected --corpus only with --budget');
  });

  it('--budget trains the pilot\'s four models for ten times the steps on the given corpus', {
    timeout: 600_000,
  }, () => {
    const out = mkdtempSync(join(tmpdir(), 'claims-'));
    const r = claims('--quick', '--budget', '--corpus', 'data/corpus', '--jobs', '1', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    const result = validateClaimsResult(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
    expect(result.settings).toMatchObject({ steps: 250, seeds: 1, tokensScale: 10, corpus: 'data/corpus' });
    expect(result.claims.map((c) => c.name)).toEqual(['budget']);
    expect(result.claims[0]!.variants.map((v) => v.key)).toEqual(['denseActivated', 'gshard', 'm4Shared', 'denseTotal']);
    for (const v of result.claims[0]!.variants) expect(v.seeds[0]!.curve.at(-1)![0]).toBe(250);
    expect(readdirSync(out)).toContain(`claims-${result.date}-quick-budget.json`);
  });
});
