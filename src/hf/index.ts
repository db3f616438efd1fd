/**
 * deepseek-moe-tfjs/hf: Hugging Face DeepSeek-V2/V3 folders out of and into our checkpoints. `toHuggingFace` writes
 * what `AutoModelForCausalLM.from_pretrained` loads (config.json, model.safetensors in the Hub's per-expert layout,
 * a byte-level tokenizer, generation_config.json); `fromHuggingFace` reads such a folder (one or several shards;
 * float32, float16 or bfloat16) into a checkpoint that trains and resumes here. Everything is checked before
 * anything is returned. Nothing here imports TF.js.
 */
import { resolveModelConfig, type ModelConfig } from '../model/config.js';
import { modelWeightSpecs } from '../model/specs.js';
import { Rng } from '../rng.js';
import { writeCheckpoint, type CheckpointContents } from '../train/checkpoint.js';
import { trainConfigDefaults } from '../train/config.js';
import { checkWeightSizes, show } from '../validate.js';
import { exportConfig, importConfig, type HfModelType } from './config.js';
import { parseSafetensors, readFloat32, writeSafetensors, type SafetensorsFile } from './safetensors.js';
import { generationConfigJson, tokenizerConfigJson, tokenizerJson } from './tokenizer.js';
import { hfLayout, type NamedTensors } from './weights.js';

export { exportConfig, importConfig } from './config.js';
export type { HfConfig, HfExportPlan, HfImportPlan, HfModelType } from './config.js';
export { parseSafetensors, readFloat32, writeSafetensors } from './safetensors.js';
export type { SafetensorsEntry, SafetensorsFile, TensorToWrite } from './safetensors.js';
export { hfLayout } from './weights.js';
export type { Link, LayoutOptions, NamedTensors } from './weights.js';
export { byteToUnicode, tokenizerJson } from './tokenizer.js';

/** A model to export: a read checkpoint, or a model config and its weights by checkpoint name. */
export type ExportSource = CheckpointContents | { modelConfig: ModelConfig; tensors: NamedTensors };

/** Options of toHuggingFace. */
export interface ExportOptions {
  /** Weight precision in model.safetensors (default float32, what the model trained in). */
  dtype?: 'float32' | 'bfloat16';
}

/** An exported folder: file name -> bytes, and what the export decided. */
export interface HfFolder {
  files: Record<string, Uint8Array>;
  modelType: HfModelType;
  notes: string[];
}

/** transformers' configs are typed: a float field must be written as one (2.0, not 2). */
const floatFields = new Set(['routed_scaling_factor', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'initializer_range', 'aux_loss_alpha']);

const json = (value: unknown) => {
  const text = JSON.stringify(value, (key, v: unknown) => (floatFields.has(key) && Number.isInteger(v) ? `@float:${v}` : v), 2);
  return new TextEncoder().encode(`${text.replace(/"@float:(-?\d+)"/g, '$1.0')}\n`);
};

/** Our model as a Hugging Face DeepSeek-V2 (softmax) or V3 (sigmoid) folder; refuses what they cannot express. */
export function toHuggingFace(source: ExportSource, options: ExportOptions = {}): HfFolder {
  const modelConfig = 'header' in source ? source.header.modelConfig : source.modelConfig;
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'bfloat16') {
    throw new Error(`Hugging Face export: expected dtype to be 'float32' or 'bfloat16', but got ${show(dtype)}.`);
  }
  const plan = exportConfig(modelConfig);
  const c = resolveModelConfig(modelConfig);
  for (const s of modelWeightSpecs(c)) {
    const t = source.tensors.get(s.name);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!t || t.length !== n) {
      throw new Error(`Hugging Face export: expected weight '${s.name}' of shape [${s.shape}], but got ` +
        `${t ? `${t.length} values` : 'none'}.`);
    }
  }
  const layout = hfLayout(c, { ropeInterleaved: true, denseWidth: plan.denseWidth, selectionBias: plan.modelType === 'deepseek_v3' });
  const tensors = layout.map((l) => ({ name: l.name, shape: l.shape, values: l.toHf(source.tensors) }));
  const weights = writeSafetensors(tensors, dtype === 'float32' ? 'F32' : 'BF16', { format: 'pt' });
  const config = { ...plan.config, torch_dtype: dtype };
  const files = {
    'config.json': json(config),
    'generation_config.json': json(generationConfigJson()),
    'model.safetensors': weights,
    'tokenizer.json': json(tokenizerJson()),
    'tokenizer_config.json': json(tokenizerConfigJson(c.maxSeqLen)),
  };
  return { files, modelType: plan.modelType, notes: plan.notes };
}

/** A folder to read: its file names (no directories) and a reader (a folder on disk, files a browser picked...). */
export interface HfSource {
  names: string[];
  read(name: string): Promise<Uint8Array>;
}

/** What fromHuggingFace returns: a checkpoint file of the model, its config and weights, and what it noticed. */
export interface HfImport {
  /** A checkpoint at step 0 (fresh optimizer state) that Trainer.restore and `npm run train -- --resume` take. */
  checkpoint: Uint8Array;
  modelConfig: ModelConfig;
  tensors: NamedTensors;
  modelType: HfModelType;
  notes: string[];
}

const tolerated = /(^|\.)rotary_emb\.inv_freq$/; // old remote-code checkpoints saved this buffer; it is recomputed

/** Reads a Hugging Face DeepSeek-V2 or V3 folder into our model; throws naming the file and tensor at fault. */
export async function fromHuggingFace(source: HfSource): Promise<HfImport> {
  const names = new Set(source.names);
  const read = (name: string) => source.read(name);
  if (!names.has('config.json')) throw new Error('Hugging Face import: expected a config.json in the folder, but there is none.');
  let configJson: unknown;
  try {
    configJson = JSON.parse(new TextDecoder().decode(await read('config.json')));
  } catch (e) {
    throw new Error(`Hugging Face import: config.json is not JSON (${(e as Error).message}).`);
  }
  const plan = importConfig(configJson);
  const c = resolveModelConfig(plan.modelConfig);
  const specs = modelWeightSpecs(c);
  checkWeightSizes('Hugging Face import', specs); // before any shard is read

  // Where each tensor lives: one file, or the shards an index names.
  const fileOf = new Map<string, string>();
  if (names.has('model.safetensors.index.json')) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(new TextDecoder().decode(await read('model.safetensors.index.json')));
    } catch (e) {
      throw new Error(`Hugging Face import: model.safetensors.index.json is not JSON (${(e as Error).message}).`);
    }
    if (index.weight_map == null || typeof index.weight_map !== 'object') {
      throw new Error(`Hugging Face import: expected model.safetensors.index.json to have a weight_map, but got ${show(index.weight_map)}.`);
    }
    for (const [tensor, file] of Object.entries(index.weight_map)) {
      if (!names.has(file)) throw new Error(`Hugging Face import: shard '${file}' (holding '${tensor}') is missing from the folder.`);
      fileOf.set(tensor, file);
    }
  }
  const files = new Map<string, SafetensorsFile>();
  const open = async (file: string) => {
    if (!files.has(file)) files.set(file, parseSafetensors(await read(file), file));
    return files.get(file)!;
  };
  if (fileOf.size === 0) {
    if (!names.has('model.safetensors')) {
      throw new Error('Hugging Face import: expected model.safetensors or model.safetensors.index.json in the folder, but found neither.');
    }
    for (const tensor of (await open('model.safetensors')).entries.keys()) fileOf.set(tensor, 'model.safetensors');
  }
  for (const file of new Set(fileOf.values())) {
    const parsed = await open(file);
    for (const tensor of fileOf.keys()) {
      if (fileOf.get(tensor) === file && !parsed.entries.has(tensor)) {
        throw new Error(`Hugging Face import: ${file}: expected tensor '${tensor}' (the index says it is here), but the file has none.`);
      }
    }
  }

  const layout = hfLayout(c, { ropeInterleaved: plan.ropeInterleaved, denseWidth: c.interDim, selectionBias: plan.modelType === 'deepseek_v3' });
  const tensors: NamedTensors = new Map(specs.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]));
  const expected = new Set(layout.map((l) => l.name));
  const notes = [...plan.notes];
  const mtp = [...fileOf.keys()].filter((k) => Number(/^model\.layers\.(\d+)\./.exec(k)?.[1] ?? -1) >= c.nLayers);
  if (mtp.length > 0 || plan.mtpLayers > 0) {
    notes.push(`Multi-token prediction: ${plan.mtpLayers} layer(s) in config.json, ${mtp.length} tensor(s) after the main ` +
      'model; skipped (this library has no MTP modules yet).');
  }
  const unknown = [...fileOf.keys()].filter((k) => !expected.has(k) && !mtp.includes(k) && !tolerated.test(k));
  const tiedHead = plan.tieEmbeddings && !fileOf.has('lm_head.weight');
  if (unknown.length > 0) {
    throw new Error(`Hugging Face import: unexpected tensor(s) ${unknown.slice(0, 5).map((k) => `'${k}'`).join(', ')}` +
      `${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''} for a ${plan.modelType} model of this config.json.`);
  }
  for (const link of layout) {
    const stored = link.name === 'lm_head.weight' && tiedHead ? 'model.embed_tokens.weight' : link.name;
    const file = fileOf.get(stored);
    if (!file) throw new Error(`Hugging Face import: expected tensor '${stored}' in the folder, but no file holds it.`);
    const parsed = await open(file);
    const entry = parsed.entries.get(stored)!;
    const shape = entry.shape;
    if (shape.length !== link.shape.length || shape.some((n, i) => n !== link.shape[i])) {
      throw new Error(`Hugging Face import: ${file}: expected tensor '${stored}' to have shape [${link.shape}], but got [${entry.shape}].`);
    }
    const values = readFloat32(parsed, stored, file);
    if (!values.every(Number.isFinite)) throw new Error(`Hugging Face import: ${file}: tensor '${stored}' holds NaN or infinite values.`);
    link.fromHf(values, tensors);
  }

  const modelConfig = plan.modelConfig;
  const trainable = specs.filter((s) => s.trainable);
  const zeros = (s: (typeof specs)[number]) => new Float32Array(s.shape.reduce((a, b) => a * b, 1));
  const checkpoint = writeCheckpoint(
    {
      modelConfig, step: 0, rngState: new Rng(trainConfigDefaults.seed).state,
      trainConfig: { ...trainConfigDefaults, seqLen: Math.min(trainConfigDefaults.seqLen, modelConfig.maxSeqLen) },
    },
    [
      ...specs.map((s) => ({ name: s.name, shape: s.shape, values: tensors.get(s.name)! })),
      ...trainable.flatMap((s) => [
        { name: `adam.m/${s.name}`, shape: s.shape, values: zeros(s) },
        { name: `adam.v/${s.name}`, shape: s.shape, values: zeros(s) },
      ]),
    ],
  );
  return { checkpoint, modelConfig, tensors, modelType: plan.modelType, notes };
}
