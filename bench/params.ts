/**
 * npm run bench:params -- [--config FILE] [--json]
 * With --config (ours, DeepSeek's inference/configs format, or a Hugging Face config.json): total and activated
 * parameters with the per-part breakdown; --json prints them as the last line. Without: a table of every preset
 * (and its dense twins) and of DeepSeek-V2-Lite, V2 and V3 from their published configs.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { countModelParams, denseTwin, presets, type ModelParamCount } from 'deepseek-moe-tfjs/model';
import { publishedModels } from '../tools/published.js';
import { human } from '../tools/bench-report/format.js';

const readConfig = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;


function row(name: string, c: ModelParamCount, published?: { total: number; activated: number }): string {
  const cells = [
    name.padEnd(24), human(c.total).padStart(9), human(c.activated).padStart(9),
    `${(100 * c.activatedRatio).toFixed(1)}%`.padStart(7), String(c.kvCachePerToken).padStart(9),
  ];
  if (published) cells.push(`  ${human(published.total)} / ${human(published.activated)}`);
  return cells.join(' ');
}

const { values } = parseArgs({ options: { config: { type: 'string' }, json: { type: 'boolean', default: false } } });
if (values.config) {
  let count: ModelParamCount;
  try {
    count = countModelParams(readConfig(values.config));
  } catch (e) {
    console.error(`bench:params: ${(e as Error).message}`);
    process.exit(2);
  }
  if (!values.json) {
    console.log(row(values.config, count));
    for (const [part, n] of Object.entries(count.totalParts)) console.log(`  ${part.padEnd(14)} ` +
      `${human(n).padStart(9)} total ${human(count.activatedParts[part as keyof typeof count.activatedParts]).padStart(9)} activated`);
  }
  console.log(JSON.stringify(count));
} else {
  const lines = ['model'.padEnd(24) + '     total activated   ratio  KV/token  published'];
  for (const [name, p] of Object.entries(presets)) {
    lines.push(row(`${name} (MoE)`, countModelParams(p)));
    lines.push(row(`${name} dense, =activated`, countModelParams(denseTwin(p, 'activated'))));
    lines.push(row(`${name} dense, =total`, countModelParams(denseTwin(p, 'total'))));
  }
  for (const m of publishedModels) lines.push(row(m.name, countModelParams(m.config), m));
  console.log(lines.join('\n'));
  console.log('KV/token: numbers cached per token over all layers (MLA: latent + rotary key).');
}
