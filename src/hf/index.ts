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
const floatFields = new Set([
  'routed_scaling_factor', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'initializer_range', 'aux_loss_alpha',
]);

const json = (value: unknown) => {
  const mark = (key: string, v: unknown) => (floatFields.has(key) && Number.isInteger(v) ? `@float:${v}` : v);
  const text = JSON.stringify(value, mark, 2).replace(/"@float:(-?\d+)"/g, '$1.0');
  return new TextEncoder().encode(`${text}\n`);
};

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

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
    if (!t || t.length !== sizeOf(s.shape)) {
      throw new Error(`Hugging Face export: expected weight '${s.name}' of shape [${s.shape}], but got ` +
        `${t ? `${t.length} values` : 'none'}.`);
    }
    const at = t.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) {
      throw new Error(`Hugging Face export: expected finite weights, but '${s.name}' holds ${t[at]} at index ${at}.`);
    }
  }
  const selectionBias = plan.modelType === 'deepseek_v3';
  const layout = hfLayout(c, { ropeInterleaved: true, denseWidth: plan.denseWidth, selectionBias });
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
  const fail = (message: string): never => {
    throw new Error(`Hugging Face import: ${message}`);
  };
  const readJson = async (file: string): Promise<unknown> => {
    const bytes = await source.read(file);
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return fail(`${file} is not JSON (${(e as Error).message}).`);
    }
  };
  if (!names.has('config.json')) fail('expected a config.json in the folder, but there is none.');
  const plan = importConfig(await readJson('config.json'));
  // before any shard is read
  checkWeightSizes('Hugging Face import', modelWeightSpecs(resolveModelConfig(plan.modelConfig)));

  // Where each tensor lives: one file, or the shards an index names.
  const fileOf = new Map<string, string>();
  if (names.has('model.safetensors.index.json')) {
    const index = (await readJson('model.safetensors.index.json')) as { weight_map?: Record<string, string> } | null;
    const weightMap = index?.weight_map;
    if (weightMap == null || typeof weightMap !== 'object') {
      fail(`expected model.safetensors.index.json to have a weight_map, but got ${show(weightMap)}.`);
    }
    for (const [tensor, file] of Object.entries(weightMap!)) {
      if (!names.has(file)) fail(`shard '${file}' (holding '${tensor}') is missing from the folder.`);
      fileOf.set(tensor, file);
    }
  }
  const files = new Map<string, SafetensorsFile>();
  const open = async (file: string) => {
    if (!files.has(file)) files.set(file, parseSafetensors(await source.read(file), file));
    return files.get(file)!;
  };
  if (fileOf.size === 0) {
    if (!names.has('model.safetensors')) {
      fail('expected model.safetensors or model.safetensors.index.json in the folder, but found neither.');
    }
    for (const tensor of (await open('model.safetensors')).entries.keys()) fileOf.set(tensor, 'model.safetensors');
  }
  for (const [tensor, file] of fileOf) {
    if (!(await open(file)).entries.has(tensor)) {
      fail(`${file}: expected tensor '${tensor}' (the index says it is here), but the file has none.`);
    }
  }

  const selectionBias = plan.modelType === 'deepseek_v3';
  const layoutOf = (config: ModelConfig) => {
    const resolved = resolveModelConfig(config);
    return {
      c: resolved,
      layout: hfLayout(resolved, {
        ropeInterleaved: plan.ropeInterleaved, denseWidth: resolved.interDim, selectionBias,
      }),
    };
  };
  const notes = [...plan.notes];
  // MTP layers (model.layers.{n} for n >= num_hidden_layers) become MTP modules when the folder holds all of them.
  let modelConfig = plan.modelConfig;
  const mtp = [...fileOf.keys()]
    .filter((k) => Number(/^model\.layers\.(\d+)\./.exec(k)?.[1] ?? -1) >= modelConfig.nLayers);
  if (plan.mtpLayers > 0) {
    const withMtp = { ...modelConfig, mtpDepth: plan.mtpLayers };
    const missing = layoutOf(withMtp).layout.filter((l) => !fileOf.has(l.name));
    if (missing.length === 0) {
      modelConfig = withMtp;
      checkWeightSizes('Hugging Face import', modelWeightSpecs(resolveModelConfig(modelConfig)));
      notes.push(`Multi-token prediction: ${plan.mtpLayers} MTP layer(s) imported as MTP modules ` +
        `(mtpDepth ${plan.mtpLayers}).`);
    } else {
      notes.push(`Multi-token prediction: config.json has ${plan.mtpLayers} MTP layer(s), but the folder lacks ` +
        `${missing.length} of their tensors (e.g. '${missing[0]!.name}'); imported without MTP modules.`);
    }
  } else if (mtp.length > 0) {
    notes.push(`Multi-token prediction: ${mtp.length} tensor(s) after the main model, but ` +
      `num_nextn_predict_layers is 0; skipped.`);
  }
  const { c, layout } = layoutOf(modelConfig);
  const specs = modelWeightSpecs(c);
  const tensors: NamedTensors = new Map(specs.map((s) => [s.name, new Float32Array(sizeOf(s.shape))]));
  const expected = new Set(layout.map((l) => l.name));
  const unknown = [...fileOf.keys()].filter((k) => !expected.has(k) && !mtp.includes(k) && !tolerated.test(k));
  const tiedHead = plan.tieEmbeddings && !fileOf.has('lm_head.weight');
  if (unknown.length > 0) {
    const listed = unknown.slice(0, 5).map((k) => `'${k}'`).join(', ');
    const more = unknown.length > 5 ? ` and ${unknown.length - 5} more` : '';
    fail(`unexpected tensor(s) ${listed}${more} for a ${plan.modelType} model of this config.json.`);
  }
  for (const link of layout) {
    const stored = link.name === 'lm_head.weight' && tiedHead ? 'model.embed_tokens.weight' : link.name;
    const file = fileOf.get(stored);
    if (!file) return fail(`expected tensor '${stored}' in the folder, but no file holds it.`);
    const parsed = await open(file);
    const { shape } = parsed.entries.get(stored)!;
    if (shape.length !== link.shape.length || shape.some((n, i) => n !== link.shape[i])) {
      fail(`${file}: expected tensor '${stored}' to have shape [${link.shape}], but got [${shape}].`);
    }
    const values = readFloat32(parsed, stored, file);
    if (!values.every(Number.isFinite)) fail(`${file}: tensor '${stored}' holds NaN or infinite values.`);
    link.fromHf(values, tensors);
  }

  const trainable = specs.filter((s) => s.trainable);
  const zeros = (s: (typeof specs)[number]) => new Float32Array(sizeOf(s.shape));
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
