import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateBenchResult } from '../../tools/bench-suite/validate.js';

const fixture = () => JSON.parse(readFileSync(new URL('./fixtures/a.json', import.meta.url), 'utf8')) as Record<string, any>;

describe('the bench result schema', () => {
  it('accepts a result and returns it', () => {
    const r = fixture();
    expect(validateBenchResult(r)).toBe(r);
  });

  it.each([
    ['a missing section', (r: Record<string, any>) => delete r.training, /expected training to be an object, but got nothing/],
    ['another schema', (r: Record<string, any>) => (r.schema = 'other@2'),
      /expected schema to be one of 'deepseek-moe-tfjs\/bench@3', but got "other@2"/],
    ['an unknown mode', (r: Record<string, any>) => (r.mode = 'fast'), /expected mode to be one of 'quick', 'full', but got "fast"/],
    ['a negative size', (r: Record<string, any>) => (r.params[0].total = -1), /expected params\[0\].total to be a number >= 0, but got -1/],
    ['a range upside down', (r: Record<string, any>) => (r.layer.ratios.moeOverDenseActivatedIqr = [1.2, 1.1]),
      /expected layer.ratios.moeOverDenseActivatedIqr to be \[low, high\] with 0 < low <= high, but got \[1.2,1.1\]/],
    ['a zero time', (r: Record<string, any>) => (r.scaling.topK[0].ms.moe = 0),
      /expected scaling.topK\[0\].ms.moe to be a number > 0, but got 0/],
    ['a non-finite figure', (r: Record<string, any>) => (r.breakdown.stages.combine.ms = null),
      /expected breakdown.stages.combine.ms to be a finite number, but got null/],
    ['a missing stage', (r: Record<string, any>) => delete r.breakdown.stages.router,
      /expected breakdown.stages.router to be an object, but got nothing/],
    ['not an array', (r: Record<string, any>) => (r.memory.experts = {}), /expected memory.experts to be an array, but got \{\}/],
  ])('names the field: %s', (_, damage, message) => {
    const r = fixture();
    damage(r);
    expect(() => validateBenchResult(r)).toThrow(message);
  });

  it('refuses what is not an object', () => {
    expect(() => validateBenchResult([1])).toThrow(/expected a JSON object, but got \[1\]/);
  });
});
