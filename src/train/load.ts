/** A model from a checkpoint file, for evaluation and generation (training resumes with Trainer.restore). */
import { DeepSeekLM } from '../model/model.js';
import { readModelCheckpoint } from './model-checkpoint.js';

/** A DeepSeekLM of the checkpoint's config holding its weights; the file is checked whole before any allocation. */
export function loadModel(bytes: Uint8Array): DeepSeekLM {
  const { modelConfig, tensors } = readModelCheckpoint(bytes);
  const model = new DeepSeekLM(modelConfig);
  try {
    model.setWeights(tensors);
  } catch (e) {
    model.dispose();
    throw new Error(`checkpoint: ${(e as Error).message}`);
  }
  return model;
}
