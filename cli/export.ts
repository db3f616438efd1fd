/**
 * npm run export -- --checkpoint FILE --out DIR [--dtype float32|bfloat16] [--force]
 * Writes a checkpoint's model as a Hugging Face DeepSeek-V3 (sigmoid) or DeepSeek-V2 (softmax) folder that
 * transformers' AutoModelForCausalLM.from_pretrained loads. The folder is written whole or not at all, with a
 * marker file (deepseek-moe-export.json) listing what it wrote: --force replaces only such a folder.
 */
import { toHuggingFace } from 'deepseek-moe-tfjs/hf';
import { readModelCheckpoint } from 'deepseek-moe-tfjs/train';
import { readInputFile } from '../tools/cli-files.js';
import { checkExportFolder, exportMarker, exportMarkerOf, writeFolder } from '../tools/folder.js';
import { cliArgs } from './args.js';

const usage = `Usage: npm run export -- --checkpoint FILE --out DIR [options]
  --checkpoint FILE   a checkpoint written by npm run train, npm run import or the lab
  --out DIR           the Hugging Face folder to write (config.json, model.safetensors, tokenizer, generation
                      config, and ${exportMarker} listing them); a new or empty folder
  --dtype TYPE        float32 (default) or bfloat16 weights
  --force             replace DIR if it is an earlier export (its ${exportMarker} lists every file in it);
                      never a folder holding anything else, the checkpoint, or the current directory
  --help              this text`;

const args = cliArgs(usage, {
  checkpoint: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string' }, force: { type: 'boolean' },
});
const fail: (message: string) => never = args.fail;
const checkpointPath = args.required('checkpoint');
const out = args.required('out');
const dtype = args.choice('dtype', ['float32', 'bfloat16'] as const) ?? 'float32';

try {
  checkExportFolder(out, args.values.force === true, [checkpointPath]);
  let checkpoint: ReturnType<typeof readModelCheckpoint>;
  try {
    checkpoint = readModelCheckpoint(readInputFile(checkpointPath, '--checkpoint'));
  } catch (e) {
    throw new Error(`--checkpoint: ${(e as Error).message.replace(/^--checkpoint: /, '')}`);
  }
  const folder = toHuggingFace(checkpoint, { dtype });
  const names = Object.keys(folder.files);
  writeFolder(out, { ...folder.files, [exportMarker]: exportMarkerOf(names, `step ${checkpoint.header.step}`) });
  const bytes = Object.values(folder.files).reduce((n, f) => n + f.length, 0);
  const size = `${(bytes / 1e6).toFixed(2)} MB`;
  console.log(`${out}: ${folder.modelType} (step ${checkpoint.header.step}), ${dtype}, ${size} in ${names.join(', ')}`);
  for (const note of folder.notes) console.log(`note: ${note}`);
  console.log(`load it: AutoModelForCausalLM.from_pretrained('${out}'); AutoTokenizer.from_pretrained('${out}')`);
} catch (e) {
  fail((e as Error).message);
}
