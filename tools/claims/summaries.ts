/**
 * Figures a claims table derives from its seeds beyond the validation loss: MaxVio_batch early and late in
 * training, any per-seed measure paired against the baseline, and teacher-forced acceptance pooled over seeds.
 * TF.js-free; report.ts prints them.
 */
import type { ClaimResult, SeedResult, VariantResult } from './schema.js';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** A phase of training as step indices [from, to). */
export interface Phase {
  from: number;
  to: number;
}

/** The first sixth of training (steps 0-99 of 600: how fast balance comes) and its last third (how well it holds). */
export function balancePhases(steps: number): { early: Phase; late: Phase } {
  const early = { from: 0, to: Math.max(1, Math.round(steps / 6)) };
  return { early, late: { from: steps - Math.round(steps / 3), to: steps } };
}

/** Per seed, the mean of MaxVio_batch over a phase and its standard deviation there (n - 1; how much it swings). */
export function maxVioBatchPhase(v: VariantResult, phase: Phase): { mean: number[]; sd: number[] } {
  const windows = v.seeds.map((s) => s.maxVioBatch.slice(phase.from, phase.to));
  const sd = (xs: number[]) => {
    const m = mean(xs);
    return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1));
  };
  return { mean: windows.map(mean), sd: windows.map(sd) };
}

/**
 * Each variant's measure minus the baseline's, seed by seed (matched by seed number); a variant is left out when
 * the measure is missing for any of its seeds or the baseline's.
 */
export function pairedMeasure(
  claim: ClaimResult,
  measure: (s: SeedResult) => number | undefined,
): Record<string, number[]> {
  const baseline = claim.variants.find((v) => v.key === claim.baseline)!;
  const base = new Map(baseline.seeds.map((s) => [s.seed, measure(s)]));
  const out: Record<string, number[]> = {};
  for (const v of claim.variants) {
    if (v.key === claim.baseline) continue;
    const differences = v.seeds.map((s) => {
      const [x, b] = [measure(s), base.get(s.seed)];
      return x === undefined || b === undefined ? undefined : x - b;
    });
    if (differences.every((d): d is number => d !== undefined)) out[v.key] = differences;
  }
  return out;
}

/** Teacher-forced acceptance of one domain (or all, under 'all'): pooled over seeds, and each seed's own rate. */
export interface PooledAcceptance {
  accepted: number;
  eligible: number;
  /** accepted / eligible over every seed's drafts. */
  rate: number;
  bySeed: number[];
}

/** A variant's teacher-forced acceptance per domain and in all, pooled over its seeds; null without the measure. */
export function pooledTeacherForced(v: VariantResult): Record<string, PooledAcceptance> | null {
  if (!v.seeds.every((s) => s.teacherForced)) return null;
  const domains = Object.keys(v.seeds[0]!.teacherForced!);
  const pool = (pick: (s: SeedResult) => { accepted: number; eligible: number }[]): PooledAcceptance => {
    const perSeed = v.seeds.map((s) => pick(s).reduce(
      (a, t) => ({ accepted: a.accepted + t.accepted, eligible: a.eligible + t.eligible }),
      { accepted: 0, eligible: 0 },
    ));
    const accepted = perSeed.reduce((a, t) => a + t.accepted, 0);
    const eligible = perSeed.reduce((a, t) => a + t.eligible, 0);
    return { accepted, eligible, rate: accepted / eligible, bySeed: perSeed.map((t) => t.accepted / t.eligible) };
  };
  const out: Record<string, PooledAcceptance> = {};
  for (const d of domains) out[d] = pool((s) => [s.teacherForced![d]!]);
  out.all = pool((s) => Object.values(s.teacherForced!));
  return out;
}
