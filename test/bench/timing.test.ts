/** The bench's paired timing: runs alternate and which step goes first alternates; ratios are per-run. */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { pairedRatio, timeAlternating } from '../../tools/bench-suite/timing.js';

describe('paired timing', () => {
  it('runs every step once per run after the warm-up, the order reversed every other run', async () => {
    const calls: string[] = [];
    const step = (name: string) => () => (calls.push(name), tf.scalar(1));
    const times = await timeAlternating([step('a'), step('b'), step('c')], { runs: 3, warmup: 1 });
    expect(calls.join('')).toBe('abc' + 'abc' + 'cba' + 'abc');
    expect(times.map((t) => t.length)).toEqual([3, 3, 3]);
  });

  it('takes the median and interquartile range of the per-run ratios, not the ratio of medians', () => {
    // Two of three runs the first step takes 20x the second; the ratio of their medians (20 / 10) would say 2x.
    expect(pairedRatio([2, 20, 200], [100, 1, 10])).toEqual({ ratio: 20, iqr: [20, 20] });
    expect(pairedRatio([1, 2, 3, 4, 5], [1, 1, 1, 1, 1])).toEqual({ ratio: 3, iqr: [2, 4] });
  });
});
