/**
 * The result of `npm run bench:claims` (bench/results/claims-<date>.json, the last line with --json), and its
 * validator: the Claims page and the tests read results only through it.
 */
import type { FreeRunning } from './free-running.js';
import type { ClaimName, PaperFigure } from './tables.js';

/** How long each model trains and how much is measured. */
export interface RunSettings {
  quick: boolean;
  seeds: number;
  steps: number;
  batchSize: number;
  seqLen: number;
  evalEvery: number;
  evalWindows: number;
  /** Validation windows per domain of the final MaxVio_global (and of the final loss without finalWholeTail). */
  finalWindows: number;
  /** Whether the final loss is over every byte of each domain's held-out tail (runs before 2026-12 used windows). */
  finalWholeTail?: boolean;
  /** Greedy tokens per prompt of the speculative-decoding measure. */
  decodeTokens: number;
  /**
   * Prompts of that measure, cut from the held-out text (free-running.ts); runs before 2026-12 decoded from four
   * fixed prompts instead.
   */
  decodePrompts?: number;
  /** The budget pilot: the multiple of the main run's steps, and the corpus folder it trained on. */
  tokensScale?: number;
  corpus?: string;
}

/** One model, one seed. */
export interface SeedResult {
  seed: number;
  /** Final validation loss (nats per byte), the mean over domains (see RunSettings.finalWholeTail). */
  valLoss: number;
  domainLoss: Record<string, number>;
  /** MaxVio_global on the validation set (every domain alike), the mean over MoE blocks (0 without). */
  maxVioGlobal: number;
  /** The same with the domains in their training proportions (absent in runs before 2026-12). */
  maxVioGlobalTrainingMix?: number;
  /** [step, validation loss] at each periodic evaluation. */
  curve: [number, number][];
  /** MaxVio_batch per step, the mean over MoE blocks. */
  maxVioBatch: number[];
  /** Per MoE block, [domain][expert]: the share of each domain's assignments each expert took (globalBatch). */
  specialisation?: number[][][];
  /** Share of the MTP module's drafts the main model accepted in greedy decoding (mtp). */
  acceptanceRate?: number;
  /** That decoding's texts and counts, inside and outside repeated 8-grams (mtp, runs with decodePrompts). */
  freeRunning?: FreeRunning;
  /**
   * Teacher-forced acceptance per domain over the held-out tail (mtp-acceptance.ts): drafts counted and accepted,
   * and the 95% bootstrap interval of the rate over windows (mtp, runs from 2026-12).
   */
  teacherForced?: Record<string, { eligible: number; accepted: number; low: number; high: number }>;
}

export interface VariantResult {
  key: string;
  label: string;
  params: { total: number; activated: number };
  seeds: SeedResult[];
  /** Over the seeds. */
  valLoss: { mean: number; min: number; max: number };
  maxVioGlobal: number;
  maxVioGlobalTrainingMix?: number;
  acceptanceRate?: number;
}

export interface ClaimResult {
  name: ClaimName;
  title: string;
  source: string;
  paper: PaperFigure[];
  /** The variant the others are compared with, seed by seed. */
  baseline: string;
  variants: VariantResult[];
  /** Extra measures by name, one value per seed (fineGrained: m4SharedWithoutShared). */
  probes: Record<string, number[]>;
}

export interface ClaimsResult {
  kind: 'claims';
  version: 1;
  date: string;
  backend: string;
  settings: RunSettings;
  /** Wall time of the whole run, seconds. */
  seconds: number;
  claims: ClaimResult[];
}

/** Throws naming the first field that is not as the schema says. */
export function validateClaimsResult(value: unknown): ClaimsResult {
  const fail = (path: string, expected: string, got: unknown): never => {
    throw new Error(`claims result: expected ${path} to be ${expected}, but got ${JSON.stringify(got)?.slice(0, 80)}.`);
  };
  const obj = (v: unknown, path: string) => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? v as Record<string, unknown>
    : fail(path, 'an object', v));
  const num = (v: unknown, path: string) => (typeof v === 'number' && Number.isFinite(v)
    ? v
    : fail(path, 'a finite number', v));
  const arr = (v: unknown, path: string) => (Array.isArray(v) ? v : fail(path, 'an array', v));
  const str = (v: unknown, path: string) => (typeof v === 'string' ? v : fail(path, 'a string', v));
  const r = obj(value, 'the result');
  if (r.kind !== 'claims') fail('kind', "'claims'", r.kind);
  if (r.version !== 1) fail('version', '1', r.version);
  str(r.date, 'date');
  str(r.backend, 'backend');
  num(r.seconds, 'seconds');
  const s = obj(r.settings, 'settings');
  for (const k of [
    'seeds', 'steps', 'batchSize', 'seqLen', 'evalEvery', 'evalWindows', 'finalWindows', 'decodeTokens',
  ]) {
    num(s[k], `settings.${k}`);
  }
  const claims = arr(r.claims, 'claims');
  if (claims.length === 0) fail('claims', 'a non-empty array', claims);
  claims.forEach((c0, i) => {
    const c = obj(c0, `claims[${i}]`);
    const at = `claims[${i}] (${String(c.name)})`;
    if (!['fineGrained', 'lossFree', 'globalBatch', 'mtp', 'upcycling', 'budget'].includes(c.name as string)) {
      fail(`${at}.name`, 'a claim name', c.name);
    }
    str(c.title, `${at}.title`);
    arr(c.paper, `${at}.paper`);
    const keys = arr(c.variants, `${at}.variants`).map((v) => (v as { key?: unknown } | null)?.key);
    if (!keys.includes(c.baseline)) fail(`${at}.baseline`, `a variant's key (${keys.join(', ')})`, c.baseline);
    for (const [k, v] of Object.entries(obj(c.probes, `${at}.probes`))) {
      arr(v, `${at}.probes.${k}`).forEach((x, j) => num(x, `${at}.probes.${k}[${j}]`));
    }
    arr(c.variants, `${at}.variants`).forEach((v0, j) => {
      const v = obj(v0, `${at}.variants[${j}]`);
      const vat = `${at}.variants[${j}] (${String(v.key)})`;
      str(v.key, `${vat}.key`);
      num(obj(v.params, `${vat}.params`).total, `${vat}.params.total`);
      const loss = obj(v.valLoss, `${vat}.valLoss`);
      for (const k of ['mean', 'min', 'max']) num(loss[k], `${vat}.valLoss.${k}`);
      num(v.maxVioGlobal, `${vat}.maxVioGlobal`);
      const seeds = arr(v.seeds, `${vat}.seeds`);
      if (seeds.length !== s.seeds) fail(`${vat}.seeds`, `${String(s.seeds)} entries (settings.seeds)`, seeds.length);
      seeds.forEach((x0, k) => {
        const x = obj(x0, `${vat}.seeds[${k}]`);
        num(x.valLoss, `${vat}.seeds[${k}].valLoss`);
        for (const [d, loss] of Object.entries(obj(x.domainLoss, `${vat}.seeds[${k}].domainLoss`))) {
          num(loss, `${vat}.seeds[${k}].domainLoss.${d}`);
        }
        arr(x.curve, `${vat}.seeds[${k}].curve`);
        arr(x.maxVioBatch, `${vat}.seeds[${k}].maxVioBatch`)
          .forEach((m, n) => num(m, `${vat}.seeds[${k}].maxVioBatch[${n}]`));
      });
    });
  });
  return value as ClaimsResult;
}
