/**
 * The checkpoint file: everything a run needs to continue bit for bit. Layout: 8 magic bytes, a uint32
 * header length, the JSON header, zero padding to a multiple of 4, then the float32 tensors in header order.
 * The header carries a checksum of itself (without the checksum field) and the tensor bytes, so a truncated,
 * corrupted or edited file (a changed step or sampler state would silently break a bit-exact resume) is refused.
 * Version 1 files, whose checksum covered the tensor bytes only, are still read.
 */
import type { ModelConfig } from '../model/config.js';
import type { TrainConfig } from './config.js';
import { fnv1a } from '../rng.js';

/** The 8 bytes every checkpoint file starts with. */
export const checkpointMagic = 'DSMOECK1';
/** The header's format tag. */
export const checkpointFormat = 'deepseek-moe-tfjs/checkpoint';
/**
 * The newest version: 3 for files carrying optimizerStep or upcycledFrom (an older reader, which would ignore
 * them and restart AdamW's bias correction wrongly, refuses such a file), 2 for all others; readCheckpoint reads
 * 1, 2 and 3.
 */
export const checkpointVersion = 3;

/** The checkpoint file's JSON header. */
export interface CheckpointHeader {
  format: typeof checkpointFormat;
  version: number;
  modelConfig: ModelConfig;
  trainConfig: TrainConfig;
  /** Optimizer steps taken. */
  step: number;
  /**
   * AdamW's own step count (its bias correction), when it differs from `step`: an upcycled model's moments start
   * fresh at 0 while the run's step and schedule go on. Absent: equal to `step`.
   */
  optimizerStep?: number;
  /** Where an upcycled model came from (train/upcycle.ts); kept through later saves. */
  upcycledFrom?: UpcycledFrom;
  /** The batch sampler's state. */
  rngState: number;
  /** Name and shape of each tensor, in storage order: the weights, then AdamW's m and v ('adam.m/<name>'). */
  tensors: { name: string; shape: number[] }[];
  /** FNV-1a 32 of the header's canonical JSON without this field, then the tensor bytes (version 1: the tensors only). */
  checksum: number;
}

/** The dense checkpoint a model was grown from, and how. */
export interface UpcycledFrom {
  /** The dense file's step and header checksum. */
  step: number;
  checksum: number;
  /** The dense model's config. */
  modelConfig: ModelConfig;
  /** The dense FFN's hidden units were cut into this many slices (1: copies of the whole FFN). */
  granularity: number;
  /** Whether the grown model's first forward equals the dense model's (upcycle.ts says when it does). */
  exact: boolean;
}

/** A read checkpoint: its header and its tensors by name. */
export interface CheckpointContents {
  header: CheckpointHeader;
  tensors: Map<string, Float32Array>;
}

/** The checksum of a header (its checksum field left out) followed by the tensor bytes. */
function checksumOf(header: Omit<CheckpointHeader, 'checksum'>, data: Uint8Array): number {
  const { checksum: _, ...rest } = header as CheckpointHeader;
  return fnv1a(data, fnv1a(new TextEncoder().encode(canonicalJson(rest))));
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** JSON with object keys sorted, so equal configs compare equal whatever order their fields were written in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/** Writes the checkpoint file of a header and named float32 tensors (layout in the file header). */
export function writeCheckpoint(
  header: Omit<CheckpointHeader, 'format' | 'version' | 'tensors' | 'checksum'>,
  tensors: { name: string; shape: number[]; values: Float32Array }[],
): Uint8Array {
  const dataBytes = tensors.reduce((n, t) => n + t.values.byteLength, 0);
  const data = new Uint8Array(dataBytes);
  let offset = 0;
  for (const t of tensors) {
    if (t.values.length !== sizeOf(t.shape)) {
      throw new Error(`checkpoint: tensor '${t.name}' has ${t.values.length} values for shape [${t.shape}].`);
    }
    data.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength), offset);
    offset += t.values.byteLength;
  }
  const unsummed: Omit<CheckpointHeader, 'checksum'> = {
    format: checkpointFormat,
    version: header.optimizerStep !== undefined || header.upcycledFrom !== undefined ? checkpointVersion : 2,
    ...header,
    tensors: tensors.map((t) => ({ name: t.name, shape: t.shape })),
  };
  const full: CheckpointHeader = { ...unsummed, checksum: checksumOf(unsummed, data) };
  const json = new TextEncoder().encode(JSON.stringify(full));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(start + dataBytes);
  out.set(new TextEncoder().encode(checkpointMagic), 0);
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
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== checkpointMagic) corrupt('missing the magic bytes');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + headerLength > bytes.length) corrupt(`header of ${headerLength} bytes runs past the end of the ${bytes.length}-byte file`);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headerLength))) as CheckpointHeader;
  } catch (e) {
    return corrupt(`header is not JSON: ${(e as Error).message}`);
  }
  checkHeader(header);
  const start = Math.ceil((12 + headerLength) / 4) * 4;
  const expected = header.tensors.reduce((n, t) => n + 4 * sizeOf(t.shape), 0);
  if (bytes.length - start !== expected) corrupt(`expected ${expected} bytes of tensor data, but got ${bytes.length - start}`);
  const data = bytes.slice(start); // a copy: aligned, and independent of the caller's buffer
  const sum = header.version === 1 ? fnv1a(data) : checksumOf(header, data);
  if (sum !== header.checksum) corrupt('checksum mismatch: the header or the tensor data is damaged');
  const tensors = new Map<string, Float32Array>();
  let offset = 0;
  for (const t of header.tensors) {
    const n = sizeOf(t.shape);
    tensors.set(t.name, new Float32Array(data.buffer, offset, n));
    offset += 4 * n;
  }
  return { header, tensors };
}

const isObject = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Every header field's type, before anything is read by it. */
function checkHeader(header: unknown): asserts header is CheckpointHeader {
  const expect = (ok: boolean, field: string, wanted: string, got: unknown) => {
    if (!ok) corrupt(`expected ${field} to be ${wanted}, but got ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
  };
  if (!isObject(header)) return corrupt('the header is not an object');
  expect(header.format === checkpointFormat, 'format', `'${checkpointFormat}'`, header.format);
  if (header.version !== 1 && header.version !== 2 && header.version !== checkpointVersion) {
    throw new Error(`checkpoint: expected version 1, 2 or ${checkpointVersion}, but got ${JSON.stringify(header.version)}.`);
  }
  expect(isObject(header.modelConfig), 'modelConfig', 'an object', header.modelConfig);
  expect(isObject(header.trainConfig), 'trainConfig', 'an object', header.trainConfig);
  expect(isCount(header.step), 'step', 'a non-negative integer', header.step);
  expect(isCount(header.rngState) && (header.rngState as number) <= 0xffffffff, 'rngState', 'a uint32', header.rngState);
  if (header.optimizerStep !== undefined) {
    const ok = isCount(header.optimizerStep) && header.optimizerStep <= (header.step as number);
    expect(ok, 'optimizerStep', `a non-negative integer at most step (${String(header.step)})`, header.optimizerStep);
  }
  if (header.upcycledFrom !== undefined) {
    const u = header.upcycledFrom;
    const ok = isObject(u) && isCount(u.step) && isCount(u.checksum) && isObject(u.modelConfig) &&
      isCount(u.granularity) && (u.granularity as number) >= 1 && typeof u.exact === 'boolean';
    expect(ok, 'upcycledFrom', '{ step, checksum, modelConfig, granularity, exact }', u);
  }
  expect(isCount(header.checksum) && (header.checksum as number) <= 0xffffffff, 'checksum', 'a uint32', header.checksum);
  expect(Array.isArray(header.tensors), 'tensors', 'a list', header.tensors);
  const names = new Set<string>();
  (header.tensors as unknown[]).forEach((t, i) => {
    const ok = isObject(t) && typeof t.name === 'string' && Array.isArray(t.shape) && t.shape.every(isCount);
    expect(ok, `tensors[${i}]`, 'a { name, shape } of non-negative integers', t);
    const name = (t as { name: string }).name;
    if (names.has(name)) corrupt(`tensors[${i}] repeats the name '${name}'`);
    names.add(name);
  });
}
