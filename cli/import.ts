/**
 * npm run import -- --from DIR --checkpoint FILE [--force]
 * Reads a Hugging Face DeepSeek-V2 or V3 folder (config.json, one or several safetensors shards) into a checkpoint
 * that `npm run train -- --resume --checkpoint FILE` continues and `npm run eval` scores. Everything is checked
 * before the file is written (atomically); an existing checkpoint is replaced only with --force, and a file that is
 * not a checkpoint never.
 */
import { countModelParams } from 'deepseek-moe-tfjs/config';
import { fromHuggingFace } from 'deepseek-moe-tfjs/hf';
import { checkCheckpointOutput, writeFileAtomic } from '../tools/cli-files.js';
import { readFolder } from '../tools/folder.js';
import { cliArgs } from './args.js';

const usage = `Usage: npm run import -- --from DIR --checkpoint FILE [options]
  --from DIR          a Hugging Face DeepSeek-V2/V3 folder (config.json and model*.safetensors)
  --checkpoint FILE   the checkpoint to write
  --force             replace FILE if it is a checkpoint (a file of any other kind is never replaced)
  --help              this text`;

const args = cliArgs(usage, { from: { type: 'string' }, checkpoint: { type: 'string' }, force: { type: 'boolean' } });
const fail: (message: string) => never = args.fail;
const from = args.required('from');
const checkpointPath = args.required('checkpoint');

try {
  checkCheckpointOutput(checkpointPath, '--checkpoint', args.values.force === true, 'choose another path');
  let source: ReturnType<typeof readFolder>;
  try {
    source = readFolder(from);
  } catch (e) {
    throw new Error(`--from: ${(e as Error).message}`);
  }
  const read = await fromHuggingFace(source);
  writeFileAtomic(checkpointPath, read.checkpoint);
  const p = countModelParams(read.modelConfig);
  const { moe: m, nLayers, nDenseLayers, maxSeqLen } = read.modelConfig;
  console.log(`${checkpointPath}: ${read.modelType} from ${from}: ${(p.total / 1e6).toFixed(2)}M parameters, ` +
    `${(p.activated / 1e6).toFixed(2)}M activated; ${nLayers} layers (${nDenseLayers} dense), ` +
    `${m.nRoutedExperts} routed experts, top-${m.topK}, ${m.nSharedExperts ?? 0} shared`);
  for (const note of read.notes) console.log(`note: ${note}`);
  console.log(`train on: npm run train -- --resume --checkpoint ${checkpointPath} --steps N ` +
    `(sequences of up to ${maxSeqLen} bytes: --seq-len)`);
} catch (e) {
  fail((e as Error).message);
}
