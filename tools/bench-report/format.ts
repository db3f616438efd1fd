/** How the bench prints counts and sizes. */

/** A parameter count: 45.5K, 1.42M, 671.0B. */
export const human = (n: number): string =>
  n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`;

export const MiB = 2 ** 20;

/** A byte size: 768 B, 30.4 KiB, 4.7 MiB. */
export const bytes = (n: number): string => (
  n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`
);
