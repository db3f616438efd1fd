/**
 * The checkpoint file: everything a run needs to continue bit for bit. Layout: 8 magic bytes, a uint32
 * header length, the JSON header, zero padding to a multiple of 4, then the float32 tensors in header order.
 * The header carries a checksum of the tensor bytes, so a truncated or corrupted file is refused.
 */
import type { ModelConfig } from '../model/config.js';
import type { TrainConfig } from './config.js';

const magic = 'DSMOECK1';
export const checkpointFormat = 'deepseek-moe-tfjs/checkpoint';
export const checkpointVersion = 1;

export interface CheckpointHeader {
  format: typeof checkpointFormat;
  version: number;
  modelConfig: ModelConfig;
  trainConfig: TrainConfig;
  /** Optimizer steps taken. */
  step: number;
  /** The batch sampler's state. */
  rngState: number;
  /** Name and shape of each tensor, in storage order: the weights, then AdamW's m and v ('adam.m/<name>'). */
  tensors: { name: string; shape: number[] }[];
  /** FNV-1a 32 of the tensor bytes. */
  checksum: number;
}

export interface CheckpointContents {
  header: CheckpointHeader;
  tensors: Map<string, Float32Array>;
}

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** JSON with object keys sorted, so equal configs compare equal whatever order their fields were written in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

export function writeCheckpoint(header: Omit<CheckpointHeader, 'format' | 'version' | 'tensors' | 'checksum'>, tensors: { name: string; shape: number[]; values: Float32Array }[]): Uint8Array {
  const dataBytes = tensors.reduce((n, t) => n + t.values.byteLength, 0);
  const data = new Uint8Array(dataBytes);
  let offset = 0;
  for (const t of tensors) {
    if (t.values.length !== sizeOf(t.shape)) throw new Error(`checkpoint: tensor '${t.name}' has ${t.values.length} values for shape [${t.shape}].`);
    data.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength), offset);
    offset += t.values.byteLength;
  }
  const full: CheckpointHeader = {
    format: checkpointFormat, version: checkpointVersion, ...header,
    tensors: tensors.map((t) => ({ name: t.name, shape: t.shape })), checksum: fnv1a(data),
  };
  const json = new TextEncoder().encode(JSON.stringify(full));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(start + dataBytes);
  out.set(new TextEncoder().encode(magic), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(data, start);
  return out;
}

const corrupt = (why: string): never => {
  throw new Error(`checkpoint: not a valid checkpoint file (${why}).`);
};

/** Parses and checks a checkpoint file; throws saying what is wrong, and returns copies of the tensors. */
export function readCheckpoint(bytes: Uint8Array): CheckpointContents {
  if (!(bytes instanceof Uint8Array)) throw new Error(`checkpoint: expected a Uint8Array, but got ${typeof bytes}.`);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== magic) corrupt('missing the magic bytes');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + headerLength > bytes.length) corrupt(`header of ${headerLength} bytes runs past the end of the ${bytes.length}-byte file`);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headerLength))) as CheckpointHeader;
  } catch (e) {
    return corrupt(`header is not JSON: ${(e as Error).message}`);
  }
  if (header.format !== checkpointFormat) corrupt(`format '${String(header.format)}'`);
  if (header.version !== checkpointVersion) throw new Error(`checkpoint: expected version ${checkpointVersion}, but got ${header.version}.`);
  if (!Array.isArray(header.tensors)) corrupt('no tensor list');
  const start = Math.ceil((12 + headerLength) / 4) * 4;
  const expected = header.tensors.reduce((n, t) => n + 4 * sizeOf(t.shape), 0);
  if (bytes.length - start !== expected) corrupt(`expected ${expected} bytes of tensor data, but got ${bytes.length - start}`);
  const data = bytes.slice(start); // a copy: aligned, and independent of the caller's buffer
  if (fnv1a(data) !== header.checksum) corrupt('checksum mismatch: the tensor data is damaged');
  const tensors = new Map<string, Float32Array>();
  let offset = 0;
  for (const t of header.tensors) {
    const n = sizeOf(t.shape);
    tensors.set(t.name, new Float32Array(data.buffer, offset, n));
    offset += 4 * n;
  }
  return { header, tensors };
}
