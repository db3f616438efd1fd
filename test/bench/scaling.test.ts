import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { scalingSection } from '../../tools/bench-suite/scaling.js';

describe('the scaling section', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('skips a dense twin of equal total whose predicted run exceeds the budget, and says so', async () => {
    const shape = { tokens: 16, dModel: 8, expertHiddenDim: 4, nSharedExperts: 1 };
    const plan = { experts: [2, 8], expertsTopK: 2, topK: [2], topKExperts: 8 };
    const ticks: string[] = [];
    const s = await scalingSection(shape, plan, { runs: 1, warmup: 0 }, false, (l) => ticks.push(l), 0);
    // E = K: the twin of equal total is the twin of equal activated, already timed; beyond, over a budget of 0.
    expect(s.experts[0]!.ms.denseTotal).toBe(s.experts[0]!.ms.denseActivated);
    expect(s.experts[1]!.ms.denseTotal).toBeNull();
    expect(s.experts[1]!.ratios.moeOverDenseTotal).toBeNull();
    expect(s.topK[0]!.ms.denseTotal).toBeNull();
    expect(ticks[1]).toMatch(/=total not timed \(about \d+ s a run\)/);
    const timed = await scalingSection(shape, plan, { runs: 1, warmup: 0 }, false, () => {}, Infinity);
    expect(timed.experts[1]!.ms.denseTotal).toBeGreaterThan(0);
  });
});
