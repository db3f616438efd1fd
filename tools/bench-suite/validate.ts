/**
 * Checks a parsed JSON value against the bench result's schema before anything reads it (the compare script,
 * the tests). The spec is typed from BenchResult, so a field added to the type and not here fails to compile.
 */
import { benchSchemaId, type BenchResult } from './schema.js';

/**
 * 'size': a non-negative number; 'ratio': a positive number; 'range': [low, high] of positive numbers, low <= high;
 * '?' suffix: or null; string[]: one of these.
 */
type Leaf = 'number' | 'size' | 'ratio' | 'range' | 'string' | 'size?' | 'ratio?' | 'range?' | 'string?' | readonly string[];
type Range = [number, number];
type SpecOf<T> = [T] extends [Range] ? 'range' : [T] extends [Range | null] ? 'range?' : [T] extends [(infer U)[]]
  ? readonly [SpecOf<U>]
  : [T] extends [object] ? { readonly [K in keyof T]-?: SpecOf<T[K]> } : Leaf;

const parts = {
  embeddings: 'size', attention: 'size', denseFfn: 'size', sharedExperts: 'size', routedExperts: 'size', head: 'size',
  other: 'size',
} as const;
const shape = {
  tokens: 'size', dModel: 'size', nRoutedExperts: 'size', topK: 'size', expertHiddenDim: 'size', nSharedExperts: 'size',
  nExpertGroups: 'size', topKGroups: 'size',
} as const;
const seriesShape = { tokens: 'size', dModel: 'size', expertHiddenDim: 'size', nSharedExperts: 'size' } as const;
const stage = { ms: 'size', share: 'size' } as const;
const variant = { total: 'size', activated: 'size', msPerStep: 'ratio', tokensPerSecond: 'ratio' } as const;
const scalingPoint = {
  nRoutedExperts: 'size', topK: 'size', totalParams: 'size', activatedParams: 'size',
  ms: { moe: 'ratio', denseActivated: 'ratio', denseTotal: 'ratio?' },
  ratios: { moeOverDenseActivated: 'ratio', moeOverDenseActivatedIqr: 'range', moeOverDenseTotal: 'ratio?', moeOverDenseTotalIqr: 'range?' },
} as const;
const layerSpec = {
  name: 'string',
  shape,
  ms: { moe: 'ratio', moeReference: 'ratio?', moeCapacity: 'ratio', denseActivated: 'ratio', naive: 'ratio?', matmul: 'ratio' },
  ratios: {
    moeOverDenseActivated: 'ratio', moeOverDenseActivatedIqr: 'range', referenceOverMoe: 'ratio?', naiveOverMoe: 'ratio?',
    capacityOverDropless: 'ratio',
  },
  programs: { unit: ['programs', 'ops', 'kernels'], moe: 'size', moeReference: 'size?', denseActivated: 'size', moeOverDenseActivated: 'ratio' },
  gflops: { moe: 'ratio', matmul: 'ratio' },
} as const;
const memoryPoint = {
  nRoutedExperts: 'size', topK: 'size', totalParams: 'size', activatedParams: 'size', weightBytes: 'size',
  forwardPeakBytes: 'size', stepPeakBytes: 'size',
} as const;

export const benchResultSpec: SpecOf<BenchResult> = {
  schema: [benchSchemaId],
  date: 'string',
  mode: ['quick', 'full'],
  backend: 'string',
  environment: { runtime: ['node', 'browser'], description: 'string', cores: 'size?', device: 'string?', tfjsVersion: 'string' },
  settings: { runs: 'size', warmup: 'size', tokens: 'size' },
  seconds: 'size',
  params: [{
    name: 'string', kind: ['preset', 'denseTwin', 'published'], total: 'size', activated: 'size', activatedRatio: 'ratio',
    totalParts: parts, activatedParts: parts,
    kvCache: { mlaBytesPerToken: 'size?', mhaBytesPerToken: 'size', bytesPerElement: 'size' },
  }],
  layer: layerSpec,
  otherLayers: [layerSpec],
  scaling: { shape: seriesShape, experts: [scalingPoint], topK: [scalingPoint] },
  training: {
    model: 'string', batchSize: 'size', seqLen: 'size', steps: 'size', dispatch: 'string',
    moe: variant, denseActivated: variant, denseTotal: variant,
    ratios: {
      moeOverDenseActivatedTokensPerSecond: 'ratio', moeOverDenseActivatedIqr: 'range',
      moeOverDenseTotalTokensPerSecond: 'ratio', moeOverDenseTotalIqr: 'range',
    },
  },
  breakdown: {
    shape, layerMs: 'ratio',
    stages: { router: stage, plan: stage, gates: stage, routedExperts: stage, combine: stage, sharedExperts: stage, losses: stage },
    unaccountedMs: 'number',
  },
  memory: { shape: seriesShape, experts: [memoryPoint], topK: [memoryPoint] },
};

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v)?.slice(0, 60) ?? String(v));

function check(value: unknown, spec: unknown, path: string): void {
  const fail = (expected: string) => {
    throw new Error(`bench result: expected ${path} to be ${expected}, but got ${show(value)}.`);
  };
  if (typeof spec === 'string') {
    const nullable = spec.endsWith('?');
    if (nullable && value === null) return;
    const kind = nullable ? spec.slice(0, -1) : spec;
    if (kind === 'range') {
      const ok = Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number' && v > 0) &&
        value[0] <= value[1];
      if (!ok) fail(`[low, high] with 0 < low <= high${nullable ? ', or null' : ''}`);
      return;
    }
    if (kind === 'string') {
      if (typeof value !== 'string') fail(nullable ? 'a string or null' : 'a string');
      return;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) fail(`a finite number${nullable ? ' or null' : ''}`);
    if (kind === 'size' && (value as number) < 0) fail('a number >= 0');
    if (kind === 'ratio' && (value as number) <= 0) fail('a number > 0');
    return;
  }
  if (Array.isArray(spec) && spec.every((s) => typeof s === 'string')) {
    if (!spec.includes(value as string)) fail(`one of ${spec.map((s) => `'${s}'`).join(', ')}`);
    return;
  }
  if (Array.isArray(spec)) {
    if (!Array.isArray(value)) fail('an array');
    (value as unknown[]).forEach((item, i) => check(item, spec[0], `${path}[${i}]`));
    return;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('an object');
  for (const [key, s] of Object.entries(spec as Record<string, unknown>)) {
    check((value as Record<string, unknown>)[key], s, path === '' ? key : `${path}.${key}`);
  }
}

/** Returns `value` typed when it matches the schema; otherwise throws naming the first field that does not. */
export function validateBenchResult(value: unknown): BenchResult {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`bench result: expected a JSON object, but got ${show(value)}.`);
  }
  check(value, benchResultSpec, '');
  return value as BenchResult;
}
