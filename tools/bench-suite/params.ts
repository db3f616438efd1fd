/** The parameters section: total vs activated, where they sit, and MLA vs MHA KV-cache bytes per token. */
import {
  architectureOf, countModelParams, denseTwin, preset, presets, type Architecture, type ModelParamParts,
} from 'deepseek-moe-tfjs/model';
import { publishedModels } from '../published.js';
import type { ModelParamsRow, ParamParts } from './schema.js';

/** TF.js stores our caches as float32; DeepSeek serves theirs in BF16. */
const ourBytesPerElement = 4;
const publishedBytesPerElement = 2;

const partsOf = (p: ModelParamParts): ParamParts => ({
  embeddings: p.embeddings, attention: p.attention, denseFfn: p.denseFfn, sharedExperts: p.sharedExperts,
  routedExperts: p.routedExperts, head: p.head, other: p.router + p.norms,
});

/** Cached numbers per token over all layers: MLA's latent + rotary key, or every head's key and value. */
function kvCache(a: Architecture, bytesPerElement: number): ModelParamsRow['kvCache'] {
  const at = a.attention;
  if (at.kind === 'mha') {
    return {
      mlaBytesPerToken: null,
      mhaBytesPerToken: a.nLayers * 2 * a.nHeads * at.headDim * bytesPerElement,
      bytesPerElement,
    };
  }
  // The same heads without the latent: keys of qkNope + qkRope and values of vHeadDim, per head.
  const mha = a.nHeads * (at.qkNopeHeadDim + at.qkRopeHeadDim + at.vHeadDim);
  return {
    mlaBytesPerToken: a.nLayers * (at.kvLoraRank + at.qkRopeHeadDim) * bytesPerElement,
    mhaBytesPerToken: a.nLayers * mha * bytesPerElement,
    bytesPerElement,
  };
}

function row(
  name: string, kind: ModelParamsRow['kind'], config: Parameters<typeof countModelParams>[0], bytesPerElement: number,
): ModelParamsRow {
  const c = countModelParams(config);
  return {
    name, kind, total: c.total, activated: c.activated, activatedRatio: c.activatedRatio,
    totalParts: partsOf(c.totalParts), activatedParts: partsOf(c.activatedParts), kvCache: kvCache(architectureOf(config), bytesPerElement),
  };
}

/** Every preset, the dense twins of `small` (the training section's baselines), and DeepSeek-V2-Lite, V2, V3. */
export function paramsSection(): ModelParamsRow[] {
  const rows = Object.entries(presets).map(([name, p]) => row(name, 'preset', p, ourBytesPerElement));
  rows.push(row('small, dense =activated', 'denseTwin', denseTwin(preset('small'), 'activated'), ourBytesPerElement));
  rows.push(row('small, dense =total', 'denseTwin', denseTwin(preset('small'), 'total'), ourBytesPerElement));
  for (const m of publishedModels) rows.push(row(m.name, 'published', m.config, publishedBytesPerElement));
  return rows;
}
