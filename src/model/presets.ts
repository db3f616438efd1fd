import { resolveModelConfig, type ModelConfig, type ResolvedModelConfig } from './config.js';
import presetFile from './presets.json' with { type: 'json' };

/** The named model presets, as written in presets.json. */
export const presets = presetFile as unknown as Record<string, ModelConfig>;

export type PresetName = keyof typeof presetFile;

/** A preset by name, resolved; throws listing the names when there is none. */
export function preset(name: string): ResolvedModelConfig {
  const p = presets[name];
  if (!p) throw new Error(`preset: expected one of ${Object.keys(presets).map((n) => `'${n}'`).join(', ')}, but got '${name}'.`);
  return resolveModelConfig(p);
}
