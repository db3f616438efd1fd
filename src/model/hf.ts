/** A DeepSeekLM out to and in from a Hugging Face DeepSeek-V2/V3 folder (the file work is in src/hf/). */
import { fromHuggingFace, toHuggingFace, type ExportOptions, type HfFolder, type HfSource } from '../hf/index.js';
import { DeepSeekLM } from './model.js';
import { modelWeightSpecs } from './specs.js';

/** The model's Hugging Face folder (file name -> bytes); reads its weights from the backend. */
export async function exportHuggingFace(model: DeepSeekLM, options: ExportOptions = {}): Promise<HfFolder> {
  const names = modelWeightSpecs(model.config).map((s) => s.name);
  const values = await Promise.all(names.map((n) => model.weights[n]!.data() as Promise<Float32Array>));
  const tensors = new Map(names.map((n, i) => [n, values[i]!]));
  return toHuggingFace({ modelConfig: model.plainConfig, tensors }, options);
}

/** A DeepSeekLM holding a Hugging Face folder's weights, with the checkpoint and notes of fromHuggingFace. */
export async function importHuggingFace(
  source: HfSource,
): Promise<{ model: DeepSeekLM; checkpoint: Uint8Array; notes: string[] }> {
  const read = await fromHuggingFace(source);
  const model = new DeepSeekLM(read.modelConfig);
  model.setWeights(read.tensors);
  return { model, checkpoint: read.checkpoint, notes: read.notes };
}
