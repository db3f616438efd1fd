/**
 * The one reader of a checkpoint's model, shared by loadModel (eval, generation), the Hugging Face export and
 * Trainer.restore: the file's integrity (readCheckpoint), then its model config, every weight's presence, shape
 * and finiteness, and the optimizer state's names and shapes. Whatever reads a checkpoint refuses the same files.
 */
import { resolveModelConfig, type ResolvedModelConfig } from '../model/config.js';
import { modelWeightSpecs } from '../model/specs.js';
import { readCheckpoint, type CheckpointContents } from './checkpoint.js';

/** A checkpoint whose model is known to be complete: its config resolved, every weight there and finite. */
export interface ModelCheckpoint extends CheckpointContents {
  modelConfig: ResolvedModelConfig;
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((n, i) => n === b[i]);

/** Parses and checks a checkpoint file and its model; throws naming the field or tensor that is wrong. */
export function readModelCheckpoint(bytes: Uint8Array): ModelCheckpoint {
  const contents = readCheckpoint(bytes);
  const { header, tensors } = contents;
  let modelConfig: ResolvedModelConfig;
  try {
    modelConfig = resolveModelConfig(header.modelConfig);
  } catch (e) {
    throw new Error(`checkpoint: its model config is not valid: ${(e as Error).message}`);
  }
  const shapes = new Map(header.tensors.map((t) => [t.name, t.shape]));
  const weights = new Map(modelWeightSpecs(modelConfig).map((s) => [s.name, s.shape]));
  for (const [name, shape] of weights) {
    const got = shapes.get(name);
    if (!got) throw new Error(`checkpoint: expected a tensor '${name}', but the file has none.`);
    if (!sameShape(got, shape)) {
      throw new Error(`checkpoint: expected '${name}' to have shape [${shape}], but got [${got}].`);
    }
    const values = tensors.get(name)!;
    const at = values.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) {
      throw new Error(`checkpoint: weight '${name}' holds ${values[at]} at index ${at}; a model with non-finite ` +
        'weights cannot be scored or exported (resume from an earlier checkpoint).');
    }
  }
  for (const [name, shape] of shapes) {
    if (weights.has(name)) continue;
    const weight = /^adam\.[mv]\/(.+)$/.exec(name)?.[1];
    const of = weight === undefined ? undefined : weights.get(weight);
    if (!of) throw new Error(`checkpoint: expected only the model's weights and their AdamW state, but got '${name}'.`);
    if (!sameShape(shape, of)) throw new Error(`checkpoint: expected '${name}' to have shape [${of}], but got [${shape}].`);
  }
  return { ...contents, modelConfig };
}

/**
 * Where two plain configs differ, as 'field: a against b' for the first few differing fields (dotted paths), or
 * '' when they are equal: what a resume mismatch names instead of printing both configs whole.
 */
export function configDifference(a: unknown, b: unknown, path = '', out: string[] = []): string {
  const isObject = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      configDifference(a[key], b[key], path ? `${path}.${key}` : key, out);
    }
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push(`${path || 'config'}: ${JSON.stringify(a) ?? 'none'} against ${JSON.stringify(b) ?? 'none'}`);
  }
  return out.length > 3 ? `${out.slice(0, 3).join('; ')} (and ${out.length - 3} more)` : out.join('; ');
}
