/**
 * The two tiled shapes every expert matmul takes on webgpu, as WGSL templates with workgroup-memory tiles (the
 * scheme of TF.js's own matmul). The kernels (experts.ts) supply how to read their operands and write results.
 *
 * - rowsMatmul: out[r, n] = sum_k a(r, k) b(e, k, n) for every row r of expert e's segment. A workgroup owns a row
 *   tile inside one segment, so it reads one expert's weights and wastes no work on other experts' rows; the tiles
 *   are numbered expert by expert (segment e holds ceil(count_e / TM) of them), found from the plan's starts.
 * - expertReduce: out[e, m, n] = sum over the kept rows r of segment e of l(r, m) r(r, n), the weight gradients.
 *   A workgroup owns an (expert, output tile) and walks its segment in steps of TK rows.
 *
 * Every output element is written (dropped rows read as zeros), since the backend reuses buffers unzeroed.
 */
import type * as tf from '@tensorflow/tfjs';
import { i32, run, type Uniform, type WebGPUBackend } from './program.js';

/**
 * Output tile TM x TN, TK inner steps per tile load, 8 x 8 threads: thread (tx, ty) owns tile rows 4 ty .. + 4 and
 * the column quads tx and tx + 8, 32 outputs in 8 vec4 accumulators. Tiles hold vec4s of 4 rows (tileA) or 4
 * columns (tileB), so each inner step reads 3 vec4s of workgroup memory for 32 multiply-adds.
 * Measured on SwiftShader (expertsUp, A = 12288, d = 128, 2 h = 128): 32 x 32 x 32 tiles of 4 x 4 outputs with
 * loops over accumulator arrays took 1.4-1.9x the time of TF.js's matMul of the same FLOPs; this layout 0.5-0.6x.
 * There a workgroup costs in proportion to its workgroup memory even when little is used (hence TK 8: 3 KB of
 * tiles), and accumulators stay in registers only with constant indices (hence the unrolled multiply).
 */
const TM = 32;
const TN = 64;
const TK = 8;
const WX = 8;
const WY = TM / 4;
const threads = WX * WY;
/** Column quads per thread. */
const CQ = TN / 4 / WX;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const acc = (i: number, c: number) => `acc${i}_${c}`;

/** WGSL: this thread's share of a tile's `count` quads: `statement` fills quad `l`. */
const eachQuad = (count: number, statement: string) => range(Math.ceil(count / threads)).map((j) => `{
      let l = lid + ${j * threads};
      ${count % threads === 0 ? '' : `if (l < ${count})`} { ${statement} }
    }`).join('');

/**
 * WGSL: the accumulators and the loop filling them; `loop` is the header of the loop over inner steps s0, TK at a
 * time. Each pass loads tileA [TK][TM / 4] by `quadA(s, m)` (tile rows m .. m + 3 at inner step s) and tileB
 * [TK][TN / 4] by `quadB(s, n)` (tile columns n .. n + 3), then multiplies them. With `stepFastest`, neighbouring
 * threads load neighbouring steps of tileA (when its quads gather 4 rows, a row's steps are what is contiguous).
 */
function tiledProduct(loop: string, stepFastest: boolean): string {
  const [aStep, aRow] = stepFastest ? [`l % ${TK}`, `4 * (l / ${TK})`] : [`l / ${TM / 4}`, `4 * (l % ${TM / 4})`];
  const multiply = range(TK).map((kk) => {
    const bs = range(CQ).map((c) => `let b${c} = tileB[${kk}][tx + ${c * WX}];`);
    const fmas = range(4).flatMap((i) => range(CQ)
      .map((c) => `${acc(i, c)} = fma(b${c}, vec4(a[${i}]), ${acc(i, c)});`));
    return `{\n        let a = tileA[${kk}][ty];\n        ${bs.join(' ')}\n        ${fmas.join('\n        ')}\n      }`;
  }).join('');
  const zeros = range(4).flatMap((i) => range(CQ).map((c) => `var ${acc(i, c)} = vec4<f32>(0.0);`));
  return `
    ${zeros.join('\n    ')}
    ${loop} {
      ${eachQuad((TK * TM) / 4, `let s = ${aStep}; let m = ${aRow}; tileA[s][m / 4] = quadA(s0 + s, m);`)}
      ${eachQuad((TK * TN) / 4, `let s = l / ${TN / 4}; let n = 4 * (l % ${TN / 4});
        tileB[s][n / 4] = quadB(s0 + s, n);`)}
      workgroupBarrier();
      ${multiply}
      workgroupBarrier();
    }`;
}

/** WGSL: `write(row, col, value)` for each output of this thread, at tile row 4 ty + i, column 4 (tx + ..) + j. */
const eachOutput = (write: (row: string, col: string, value: string) => string) => range(4).flatMap((i) => range(CQ)
  .map((c) => `for (var j = 0; j < 4; j++) {${write(`4 * ty + ${i}`, `4 * (tx + ${c * WX}) + j`, `${acc(i, c)}[j]`)}}`))
  .join('\n    ');

const tiles = `
  var<workgroup> tileA : array<array<vec4<f32>, ${TM / 4}>, ${TK}>;
  var<workgroup> tileB : array<array<vec4<f32>, ${TN / 4}>, ${TK}>;`;

interface Operands {
  /** Shader cache key of the kernel. */
  key: string;
  inputs: tf.TensorInfo[];
  /** WGSL names of the inputs; one of them is 'plan'. */
  names: string[];
  outputShape: number[];
  /** Kernel sizes the helpers read as uniforms (nRows, nExperts, nInner/nM, nCols/nN are always there). */
  uniforms: Uniform[];
  /** WGSL helper functions, see each template. */
  helpers: string;
}

/**
 * Helpers: `fn rowSource(r : i32) -> i32` (what loadA needs of row r, or -1 when the row was dropped),
 * `fn loadA(src : i32, k : i32) -> f32`, `fn loadB(e : i32, k : i32, n : i32) -> f32`,
 * `fn store(r : i32, n : i32, v : f32)`. Sizes: A rows, E experts, `inner` k, `cols` n.
 */
export function rowsMatmul(backend: WebGPUBackend,
  o: Operands & { A: number; E: number; inner: number; cols: number }): tf.TensorInfo {
  const code = `
    ${o.helpers}
    ${tiles}
    var<workgroup> rowSrc : array<i32, ${TM}>;
    var<workgroup> tileInfo : vec4<i32>;
    var<private> expert : i32;
    var<private> col0 : i32;

    // Row tile w: (expert, first row, end row, 1), or 0 past the last tile (the dispatch is an upper bound).
    fn findTile(w : i32) -> vec4<i32> {
      var before = 0;
      for (var e = 0; e < uniforms.nExperts; e++) {
        let start = plan[2 * uniforms.nRows + e];
        let end = plan[2 * uniforms.nRows + e + 1];
        let count = (end - start + ${TM - 1}) / ${TM};
        if (w < before + count) {
          let first = start + (w - before) * ${TM};
          return vec4<i32>(e, first, min(first + ${TM}, end), 1);
        }
        before += count;
      }
      return vec4<i32>(0);
    }
    fn quadA(k : i32, m : i32) -> vec4<f32> {
      var v = vec4<f32>(0.0);
      if (k >= uniforms.nInner) { return v; }
      for (var i = 0; i < 4; i++) {
        let src = rowSrc[m + i];
        if (src >= 0) { v[i] = loadA(src, k); }
      }
      return v;
    }
    fn quadB(k : i32, n : i32) -> vec4<f32> {
      var v = vec4<f32>(0.0);
      if (k >= uniforms.nInner) { return v; }
      for (var i = 0; i < 4; i++) {
        if (col0 + n + i < uniforms.nCols) { v[i] = loadB(expert, k, col0 + n + i); }
      }
      return v;
    }

    fn main() {
      if (localIndex == 0u) { tileInfo = findTile(i32(workgroupId.x)); }
      // A uniform value, so the early exit keeps the barriers below in uniform control flow.
      let tile = workgroupUniformLoad(&tileInfo);
      if (tile.w == 0) { return; }
      expert = tile.x;
      col0 = i32(workgroupId.y) * ${TN};
      let lid = i32(localIndex);
      let tx = i32(localId.x);
      let ty = i32(localId.y);
      if (lid < ${TM}) { rowSrc[lid] = select(-1, rowSource(tile.y + lid), tile.y + lid < tile.z); }
      workgroupBarrier();
      ${tiledProduct(`for (var s0 = 0; s0 < uniforms.nInner; s0 += ${TK})`, true)}
      ${eachOutput((row, col, value) => `
        let r = tile.y + ${row};
        let n = col0 + ${col};
        if (r < tile.z && n < uniforms.nCols) { store(r, n, ${value}); }`)}
    }`;
  return run(backend, {
    key: `rows_${o.key}_${TM}_${TN}_${TK}`, inputs: o.inputs, names: o.names, outputShape: o.outputShape,
    dtype: 'float32', code, workgroupSize: [WX, WY, 1],
    dispatch: [Math.ceil(o.A / TM) + o.E, Math.ceil(o.cols / TN), 1],
    uniforms: [i32('nRows', o.A), i32('nExperts', o.E), i32('nInner', o.inner), i32('nCols', o.cols), ...o.uniforms],
  });
}

/**
 * Helpers: `fn rowSource(r : i32) -> i32` (-1 for a dropped row), `fn loadL(src : i32, r : i32, m : i32) -> f32`,
 * `fn loadR(src : i32, r : i32, n : i32) -> f32`. Output [E, M, N]; sizes A rows, E experts.
 */
export function expertReduce(backend: WebGPUBackend,
  o: Operands & { A: number; E: number; M: number; N: number }): tf.TensorInfo {
  const quad = (name: string, load: string, size: string, base: string) => `
    fn ${name}(r : i32, at : i32) -> vec4<f32> {
      var v = vec4<f32>(0.0);
      if (r >= segmentEnd) { return v; }
      let src = rowSource(r);
      if (src < 0) { return v; }
      for (var i = 0; i < 4; i++) {
        if (${base} + at + i < ${size}) { v[i] = ${load}(src, r, ${base} + at + i); }
      }
      return v;
    }`;
  const code = `
    ${o.helpers}
    ${tiles}
    var<workgroup> segment : vec2<i32>;
    var<private> segmentEnd : i32;
    var<private> m0 : i32;
    var<private> n0 : i32;
    ${quad('quadA', 'loadL', 'uniforms.nM', 'm0')}
    ${quad('quadB', 'loadR', 'uniforms.nN', 'n0')}

    fn main() {
      let e = i32(workgroupId.z);
      if (localIndex == 0u) {
        segment = vec2<i32>(plan[2 * uniforms.nRows + e], plan[2 * uniforms.nRows + e + 1]);
      }
      // Uniform bounds, so the loop's barriers are in uniform control flow.
      let rows = workgroupUniformLoad(&segment);
      segmentEnd = rows.y;
      m0 = i32(workgroupId.y) * ${TM};
      n0 = i32(workgroupId.x) * ${TN};
      let lid = i32(localIndex);
      let tx = i32(localId.x);
      let ty = i32(localId.y);
      ${tiledProduct(`for (var s0 = rows.x; s0 < rows.y; s0 += ${TK})`, false)}
      ${eachOutput((row, col, value) => `
        let m = m0 + ${row};
        let n = n0 + ${col};
        if (m < uniforms.nM && n < uniforms.nN) { result[(e * uniforms.nM + m) * uniforms.nN + n] = ${value}; }`)}
    }`;
  return run(backend, {
    key: `reduce_${o.key}_${TM}_${TN}_${TK}`, inputs: o.inputs, names: o.names, outputShape: o.outputShape,
    dtype: 'float32', code, workgroupSize: [WX, WY, 1],
    dispatch: [Math.ceil(o.N / TN), Math.ceil(o.M / TM), o.E],
    uniforms: [i32('nRows', o.A), i32('nExperts', o.E), i32('nM', o.M), i32('nN', o.N), ...o.uniforms],
  });
}
