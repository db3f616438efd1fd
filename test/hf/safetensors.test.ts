import { describe, expect, it } from 'vitest';
import { parseSafetensors, readFloat32, writeSafetensors } from 'deepseek-moe-tfjs/hf';

/** A file by hand: header JSON and raw data bytes, laid out as the format says. */
function rawFile(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('writes float32 that reads back bit for bit, in header order, with an 8-byte aligned header', () => {
    const a = new Float32Array([1.5, -2, 3e-30, Infinity]);
    const b = new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    const bytes = writeSafetensors([{ name: 'a', shape: [4], values: a }, { name: 'b', shape: [2, 3], values: b }],
      'F32', { format: 'pt' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const file = parseSafetensors(bytes);
    expect([...file.entries.keys()]).toEqual(['a', 'b']);
    expect(file.entries.get('b')).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [16, 40] });
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(readFloat32(file, 'a')).toEqual(a);
    expect(readFloat32(file, 'b')).toEqual(b);
  });

  it('writes bfloat16 rounded to nearest even and reads it back exactly', () => {
    // 1 + 2^-8 is halfway between two bfloat16 values (1 and 1 + 2^-7): ties go to the even one, 1.
    // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
    const values = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.140625, 65536]);
    const file = parseSafetensors(writeSafetensors([{ name: 'x', shape: [4], values }], 'BF16'));
    expect(file.entries.get('x')!.dtype).toBe('BF16');
    expect(Array.from(readFloat32(file, 'x'))).toEqual([1, 1 + 2 ** -6, -3.140625, 65536]);
  });

  it('decodes float16 by hand-worked bit patterns', () => {
    const halves = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0xfc00]);
    const file = parseSafetensors(rawFile({ h: { dtype: 'F16', shape: [6], data_offsets: [0, 12] } }, new Uint8Array(halves.buffer)));
    const got = Array.from(readFloat32(file, 'h'));
    expect(got.slice(0, 4)).toEqual([1, -2, 65504, 2 ** -24]);
    expect(got[4]).toBeCloseTo(0.333251953125, 12);
    expect(got[5]).toBe(-Infinity);
  });

  it('refuses a truncated file naming the tensor that runs past its end', () => {
    const bytes = writeSafetensors([{ name: 'first', shape: [2], values: new Float32Array(2) }, { name: 'second',
      shape: [3], values: new Float32Array(3) }]);
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 4), 'model.safetensors'))
      .toThrow(/model.safetensors: .*tensor 'second' ends at byte 20 of a data section of 16 bytes: the file is truncated/);
  });

  it('refuses a header that runs past the file, bad JSON, and offsets that do not fit the shape', () => {
    const bytes = writeSafetensors([{ name: 'w', shape: [2], values: new Float32Array(2) }]);
    expect(() => parseSafetensors(bytes.subarray(0, 20))).toThrow(/header of \d+ bytes runs past the end of the 20-byte file/);
    expect(() => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))))
      .toThrow(/tensor 'w' of F32 \[3\] needs 12 bytes, but its data_offsets span 8/);
    const notJson = rawFile({}, new Uint8Array(0));
    notJson[9] = 0x7b; // '{{'
    expect(() => parseSafetensors(notJson)).toThrow(/header is not JSON/);
    expect(() => parseSafetensors(rawFile({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1))))
      .toThrow(/tensor 'w' has an unknown dtype "Q4"/);
  });

  it('refuses to decode integer and FP8 tensors, naming them', () => {
    const file = parseSafetensors(rawFile({
      ids: { dtype: 'I32', shape: [1], data_offsets: [0, 4] }, q: { dtype: 'F8_E4M3', shape: [4], data_offsets: [4, 8] },
    }, new Uint8Array(8)), 'shard.safetensors');
    expect(() => readFloat32(file, 'ids',
      'shard.safetensors')).toThrow(/shard.safetensors: expected tensor 'ids' to be F32, F16 or BF16, but got I32/);
    expect(() => readFloat32(file, 'q')).toThrow(/'q' to be F32, F16 or BF16, but got F8_E4M3 \(FP8 weights need their block scales/);
    expect(() => readFloat32(file, 'absent')).toThrow(/expected a tensor 'absent', but the file has none/);
  });
  it('refuses byte ranges that overlap, leave a gap, or stop short of the data (as the format requires)', () => {
    const two = (a: [number, number], b: [number, number], size: number) => rawFile({
      a: { dtype: 'F32', shape: [1], data_offsets: a }, b: { dtype: 'F32', shape: [1], data_offsets: b },
    }, new Uint8Array(size));
    expect(() => parseSafetensors(two([0, 4], [0, 4], 4))).toThrow(/tensor '(a|b)' starts at byte 0, inside another tensor's/);
    expect(() => parseSafetensors(two([0, 4], [8, 12], 12))).toThrow(/bytes 4 to 8 of the data section belong to no tensor/);
    expect(() => parseSafetensors(two([0, 4], [4, 8], 10))).toThrow(/expected 8 bytes of tensor data, but the data section holds 10/);
    expect(parseSafetensors(two([4, 8], [0, 4], 8)).entries.size).toBe(2); // any order, tiling the data
  });

  it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty'])('names an inherited key %j as an unknown dtype', (dtype) => {
    const file = rawFile({ w: { dtype, shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
    expect(() => parseSafetensors(file)).toThrow(`tensor 'w' has an unknown dtype "${dtype}"`);
  });

  it('refuses a header naming a tensor twice (JSON.parse would keep the second silently)', () => {
    const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    const json = new TextEncoder().encode(`{"w":${entry},"__metadata__":{"a":"{\\"w\\":1","w":"x"},"w":${entry}}`);
    const bytes = new Uint8Array(8 + json.length + 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    expect(() => parseSafetensors(bytes)).toThrow(/its header names "w" twice/);
    const nested = new TextEncoder().encode(`{"__metadata__":{"w":"1"},"w":${entry}}`); // same key, other objects
    const ok = new Uint8Array(8 + nested.length + 4);
    new DataView(ok.buffer).setBigUint64(0, BigInt(nested.length), true);
    ok.set(nested, 8);
    expect(parseSafetensors(ok).entries.has('w')).toBe(true);
  });
});
