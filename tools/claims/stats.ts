/**
 * What a claims table may say about a difference: the paired mean over seeds (the same seed: the same data order,
 * the same initial weights by name) with its 95% t-interval, and whether that interval excludes zero; and a
 * bootstrap interval of a rate over units of counts. TF.js-free.
 */
import { Rng } from '../../src/rng.js';

/** The 0.975 quantile of Student's t with df = 1 ... 30 degrees of freedom (two-sided 95%). */
const t975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** t_{0.975, df}: the table up to 30, then the normal quantile with Cornish-Fisher's first two terms. */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`claims: expected df to be a positive integer, but got ${df}.`);
  if (df <= t975.length) return t975[df - 1]!;
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

/** A paired comparison over seeds. */
export interface PairedInterval {
  /** Seeds (pairs). */
  n: number;
  /** Mean of the differences. */
  mean: number;
  /** The 95% t-interval of the mean; null with fewer than 2 pairs. */
  low: number | null;
  high: number | null;
  /** Standard deviation of the differences (n - 1); null with fewer than 2 pairs. */
  sd: number | null;
  /** Whether the interval excludes 0: the sign of the difference is resolved at 95%. */
  resolved: boolean;
}

/** The mean of paired differences and its 95% t-interval. */
export function pairedInterval(differences: number[]): PairedInterval {
  const n = differences.length;
  if (n === 0) throw new Error('claims: expected at least one paired difference, but got none.');
  const mean = differences.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, low: null, high: null, sd: null, resolved: false };
  const sd = Math.sqrt(differences.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1));
  const half = tQuantile975(n - 1) * sd / Math.sqrt(n);
  return { n, mean, low: mean - half, high: mean + half, sd, resolved: mean - half > 0 || mean + half < 0 };
}

/** How a report words a paired interval: 'lower, resolved' / 'higher, resolved' / 'not resolved'. */
export function verdict(p: PairedInterval): string {
  if (!p.resolved) return 'not resolved';
  return p.mean < 0 ? 'lower, resolved' : 'higher, resolved';
}

/** The 95% percentile bootstrap interval of accepted / eligible, resampling windows (seeded: reproducible). */
export function bootstrapInterval(windows: [number, number][], resamples = 1000, seed = 1): [number, number] {
  if (windows.length === 0) return [NaN, NaN];
  const rng = new Rng(seed);
  const rates: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let eligible = 0;
    let accepted = 0;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[rng.int(windows.length)]!;
      eligible += w[0];
      accepted += w[1];
    }
    if (eligible > 0) rates.push(accepted / eligible);
  }
  rates.sort((a, b) => a - b);
  const at = (q: number) => rates[Math.min(rates.length - 1, Math.floor(q * rates.length))]!;
  return [at(0.025), at(0.975)];
}
