/**
 * npm run export -- --checkpoint FILE --out DIR [--dtype float32|bfloat16] [--force]
 * Writes a checkpoint's model as a Hugging Face DeepSeek-V3 (sigmoid) or DeepSeek-V2 (softmax) folder that
 * transformers' AutoModelForCausalLM.from_pretrained loads. The folder is written whole or not at all.
 */
import { readFileSync } from 'node:fs';
import { toHuggingFace } from 'deepseek-moe-tfjs/hf';
import { readCheckpoint } from 'deepseek-moe-tfjs/config';
import { writeFolder } from '../tools/folder.js';
import { cliArgs } from './args.js';

const usage = `Usage: npm run export -- --checkpoint FILE --out DIR [options]
  --checkpoint FILE   a checkpoint written by npm run train or the lab
  --out DIR           the Hugging Face folder to write (config.json, model.safetensors, tokenizer, generation config)
  --dtype TYPE        float32 (default) or bfloat16 weights
  --force             replace DIR if it exists (only once the new folder is complete)
  --help              this text`;

const args = cliArgs(usage, {
  checkpoint: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string' }, force: { type: 'boolean' },
});
const fail: (message: string) => never = args.fail;
const checkpointPath = args.required('checkpoint');
const out = args.required('out');
const dtype = args.choice('dtype', ['float32', 'bfloat16'] as const) ?? 'float32';

try {
  const checkpoint = readCheckpoint(new Uint8Array(readFileSync(checkpointPath)));
  const folder = toHuggingFace(checkpoint, { dtype });
  writeFolder(out, folder.files, args.values.force === true);
  const bytes = Object.values(folder.files).reduce((n, f) => n + f.length, 0);
  const size = `${(bytes / 1e6).toFixed(2)} MB`;
  console.log(`${out}: ${folder.modelType} (step ${checkpoint.header.step}), ${dtype}, ${size} in ` +
    `${Object.keys(folder.files).join(', ')}`);
  for (const note of folder.notes) console.log(`note: ${note}`);
  console.log(`load it: AutoModelForCausalLM.from_pretrained('${out}'); AutoTokenizer.from_pretrained('${out}')`);
} catch (e) {
  fail((e as Error).message.replace(/^Error: /, ''));
}
