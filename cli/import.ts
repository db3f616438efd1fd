/**
 * npm run import -- --from DIR --checkpoint FILE [--force]
 * Reads a Hugging Face DeepSeek-V2 or V3 folder (config.json, one or several safetensors shards) into a checkpoint
 * that `npm run train -- --resume --checkpoint FILE` continues and `npm run eval` scores. Everything is checked
 * before the file is written; an existing checkpoint is never overwritten without --force.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { countModelParams } from 'deepseek-moe-tfjs/config';
import { fromHuggingFace } from 'deepseek-moe-tfjs/hf';
import { readFolder } from '../tools/folder.js';
import { cliArgs } from './args.js';

const usage = `Usage: npm run import -- --from DIR --checkpoint FILE [options]
  --from DIR          a Hugging Face DeepSeek-V2/V3 folder (config.json and model*.safetensors)
  --checkpoint FILE   the checkpoint to write
  --force             replace FILE if it exists
  --help              this text`;

const args = cliArgs(usage, { from: { type: 'string' }, checkpoint: { type: 'string' }, force: { type: 'boolean' } });
const fail: (message: string) => never = args.fail;
const from = args.required('from');
const checkpointPath = args.required('checkpoint');
if (existsSync(checkpointPath) && args.values.force !== true) {
  fail(`'${checkpointPath}' exists; pass --force to replace it.`);
}

try {
  const read = await fromHuggingFace(readFolder(from));
  writeFileSync(`${checkpointPath}.tmp`, read.checkpoint);
  renameSync(`${checkpointPath}.tmp`, checkpointPath);
  const p = countModelParams(read.modelConfig);
  const { moe: m, nLayers, nDenseLayers } = read.modelConfig;
  console.log(`${checkpointPath}: ${read.modelType} from ${from}: ${(p.total / 1e6).toFixed(2)}M parameters, ` +
    `${(p.activated / 1e6).toFixed(2)}M activated; ${nLayers} layers (${nDenseLayers} dense), ` +
    `${m.nRoutedExperts} routed experts, top-${m.topK}, ${m.nSharedExperts ?? 0} shared`);
  for (const note of read.notes) console.log(`note: ${note}`);
  console.log(`train on: npm run train -- --resume --checkpoint ${checkpointPath} --seq-len 128`);
} catch (e) {
  fail((e as Error).message);
}
