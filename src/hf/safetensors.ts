/**
 * The safetensors file format: a little-endian u64 header length, a JSON header naming each tensor's dtype, shape
 * and byte range, then the raw little-endian bytes. Reading checks every entry against the file before any value is
 * decoded, so a truncated or corrupt file is refused naming the tensor it failed on. TF.js-free.
 */

/** The dtypes this reader decodes to float32 (and the writer encodes from it). */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** One tensor entry of a safetensors header. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** [begin, end) bytes into the data section. */
  data_offsets: [number, number];
}

/** A parsed file: its entries by name (in header order), its metadata, and where the data section starts. */
export interface SafetensorsFile {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  bytes: Uint8Array;
  dataStart: number;
}

const bytesPer: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1,
};

/** Header lengths above this are refused (the format's own reference reader uses 100 MB). */
const maxHeaderBytes = 100_000_000;

/** Parses a safetensors file's header and checks every entry's byte range against the file. */
export function parseSafetensors(bytes: Uint8Array, file = 'safetensors file'): SafetensorsFile {
  const bad = (why: string): never => {
    throw new Error(`${file}: not a valid safetensors file (${why}).`);
  };
  if (bytes.length < 8) bad(`expected at least 8 bytes, but got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > maxHeaderBytes || 8 + headerLength > bytes.length) {
    bad(`its header of ${headerLength} bytes runs past the end of the ${bytes.length}-byte file`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    return bad(`its header is not JSON: ${(e as Error).message}`);
  }
  if (header == null || typeof header !== 'object' || Array.isArray(header)) return bad('its header is not an object');
  const repeated = repeatedKey(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  if (repeated !== null) bad(`its header names ${JSON.stringify(repeated)} twice`);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as SafetensorsEntry;
    const at = `tensor '${name}'`;
    if (e == null || typeof e !== 'object') bad(`${at} has no entry`);
    if (!Object.hasOwn(bytesPer, e.dtype)) bad(`${at} has an unknown dtype ${JSON.stringify(e.dtype)}`);
    const shapeOk = Array.isArray(e.shape) && e.shape.every((n) => Number.isInteger(n) && n >= 0);
    if (!shapeOk) bad(`${at} has shape ${JSON.stringify(e.shape)}, expected a list of non-negative integers`);
    const [begin, end] = Array.isArray(e.data_offsets) ? e.data_offsets : [NaN, NaN];
    const size = e.shape.reduce((a, b) => a * b, 1) * bytesPer[e.dtype]!;
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin) {
      bad(`${at} has data_offsets ${JSON.stringify(e.data_offsets)}`);
    }
    if (end - begin !== size) {
      bad(`${at} of ${e.dtype} [${e.shape}] needs ${size} bytes, but its data_offsets span ${end - begin}`);
    }
    if (end > dataLength) {
      bad(`${at} ends at byte ${end} of a data section of ${dataLength} bytes: the file is truncated`);
    }
    entries.set(name, e);
  }
  // As the format's reference reader: the byte ranges tile the data section, no overlap, gap or trailing bytes.
  const byStart = ([, a]: [string, SafetensorsEntry], [, b]: [string, SafetensorsEntry]) =>
    a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1];
  const ranges = [...entries].sort(byStart);
  let covered = 0;
  for (const [name, e] of ranges) {
    const [begin, end] = e.data_offsets;
    if (begin < covered) bad(`tensor '${name}' starts at byte ${begin}, inside another tensor's bytes (to ${covered})`);
    if (begin > covered) bad(`bytes ${covered} to ${begin} of the data section belong to no tensor`);
    covered = end;
  }
  if (covered !== dataLength) bad(`expected ${covered} bytes of tensor data, but the data section holds ${dataLength}`);
  return { entries, metadata, bytes, dataStart };
}

/**
 * The first key an object of `json` (valid JSON) repeats, or null: JSON.parse keeps the last silently, so a
 * header naming a tensor twice would read one and drop the other unseen.
 */
function repeatedKey(json: string): string | null {
  const open: (Set<string> | null)[] = []; // per open container: an object's keys so far, null for an array
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const ch = json[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const keys = open.at(-1);
      if (expectKey && keys) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      expectKey = false;
      i = j;
    } else if (ch === '{' || ch === '[') {
      open.push(ch === '{' ? new Set() : null);
      expectKey = ch === '{';
    } else if (ch === '}' || ch === ']') open.pop();
    else if (ch === ',') expectKey = open.at(-1) != null;
  }
  return null;
}

/** Decodes one tensor to float32 (from F32, F16 or BF16); other dtypes are refused naming the tensor. */
export function readFloat32(file: SafetensorsFile, name: string, fileName = 'safetensors file'): Float32Array {
  const e = file.entries.get(name);
  if (!e) throw new Error(`${fileName}: expected a tensor '${name}', but the file has none.`);
  const [begin, end] = e.data_offsets;
  const raw = file.bytes.subarray(file.dataStart + begin, file.dataStart + end);
  const n = e.shape.reduce((a, b) => a * b, 1);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(n);
  if (e.dtype === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  else if (e.dtype === 'BF16') {
    const word = new Uint32Array(1);
    const asFloat = new Float32Array(word.buffer);
    for (let i = 0; i < n; i++) {
      word[0] = view.getUint16(2 * i, true) << 16;
      out[i] = asFloat[0]!;
    }
  } else if (e.dtype === 'F16') for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  else {
    const fp8 = e.dtype.startsWith('F8')
      ? ' (FP8 weights need their block scales; dequantise them to bfloat16 first)'
      : '';
    throw new Error(`${fileName}: expected tensor '${name}' to be F32, F16 or BF16, but got ${e.dtype}${fp8}.`);
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** float32 -> bfloat16 bits, rounding to nearest even (NaN stays NaN). */
function toBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i]!;
    out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** A tensor to write: float32 values stored as F32 or BF16. */
export interface TensorToWrite {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** Writes a safetensors file (entries in the given order, the header padded with spaces to 8 bytes). */
export function writeSafetensors(
  tensors: TensorToWrite[], dtype: 'F32' | 'BF16' = 'F32', metadata: Record<string, string> = {},
): Uint8Array {
  const width = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.values.length) {
      throw new Error(`safetensors: tensor '${t.name}' has ${t.values.length} values for shape [${t.shape}].`);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + n * width] };
    offset += n * width;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    const le = littleEndianBytes(dtype === 'F32' ? t.values : toBfloat16(t.values));
    out.set(le, at);
    at += le.length;
  }
  return out;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The values' bytes in little-endian order (a view on little-endian machines, a copy otherwise). */
function littleEndianBytes(values: Float32Array | Uint16Array): Uint8Array {
  if (littleEndian) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  const f32 = values instanceof Float32Array;
  values.forEach((v: number, i: number) => (f32 ? view.setFloat32(4 * i, v, true) : view.setUint16(2 * i, v, true)));
  return out;
}
