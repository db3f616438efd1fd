import { describe, expect, it } from 'vitest';
import { countLayerParams } from 'deepseek-moe-tfjs';

describe('countLayerParams', () => {
  it('counts router, routed, shared and bias, and activated = router + K experts + shared + bias', () => {
    // d 128, E 64 experts of h 64, K 6, 2 shared: one expert is 3 * 128 * 64 = 24576 weights.
    const p = countLayerParams({ dModel: 128, nRoutedExperts: 64, topK: 6, expertHiddenDim: 64, nSharedExperts: 2, auxFreeBias: true });
    expect(p.totalParts).toEqual({ router: 8192, routedExperts: 64 * 24576, sharedExperts: 2 * 24576, bias: 64 });
    expect(p.activatedParts).toEqual({ router: 8192, routedExperts: 6 * 24576, sharedExperts: 2 * 24576, bias: 64 });
    expect(p.total).toBe(8192 + 66 * 24576 + 64);
    expect(p.activated).toBe(8192 + 8 * 24576 + 64);
    expect(p.flopsPerToken).toBe(2 * (8192 + 8 * 24576));
    expect(p.activatedRatio).toBeCloseTo(p.activated / p.total, 12);
  });

  it('a DeepSeek-V3 MoE layer: 256 routed + 1 shared expert of 2048 at d 7168, top-8', () => {
    const p = countLayerParams({
      dModel: 7168, nRoutedExperts: 256, topK: 8, expertHiddenDim: 2048, nSharedExperts: 1, auxFreeBias: true,
      nExpertGroups: 8, topKGroups: 4,
    });
    const expert = 3 * 7168 * 2048;
    expect(p.total).toBe(7168 * 256 + 257 * expert + 256);
    expect(p.activated).toBe(7168 * 256 + 9 * expert + 256);
  });

  it('validates its config', () => {
    expect(() => countLayerParams({ dModel: 8, nRoutedExperts: 4, topK: 5, expertHiddenDim: 2 }))
      .toThrow(/topK \(5\) to be at most nRoutedExperts \(4\)/);
  });
});
