/** A model from a checkpoint file, for evaluation and generation (training resumes with Trainer.restore). */
import * as tf from '@tensorflow/tfjs';
import { DeepSeekLM } from '../model/model.js';
import { modelWeightSpecs } from '../model/specs.js';
import { resolveModelConfig } from '../model/config.js';
import { readCheckpoint } from './checkpoint.js';

/** A DeepSeekLM of the checkpoint's config holding its weights; the file is checked whole before any allocation. */
export function loadModel(bytes: Uint8Array): DeepSeekLM {
  const { header, tensors } = readCheckpoint(bytes);
  const config = resolveModelConfig(header.modelConfig);
  const shapes = new Map(header.tensors.map((t) => [t.name, t.shape]));
  for (const s of modelWeightSpecs(config)) {
    const shape = shapes.get(s.name);
    if (!shape) throw new Error(`checkpoint: expected a tensor '${s.name}', but the file has none.`);
    if (!tf.util.arraysEqual(shape, s.shape)) throw new Error(`checkpoint: expected '${s.name}' to have shape [${s.shape}], but got [${shape}].`);
  }
  const model = new DeepSeekLM(header.modelConfig);
  for (const s of modelWeightSpecs(config)) {
    const v = model.weights[s.name]!;
    tf.tidy(() => v.assign(tf.tensor(tensors.get(s.name)!, s.shape, 'float32')));
  }
  return model;
}
