/**
 * The kernel contract on tfjs-node's 'tensorflow' backend: the expert stages as libtensorflow's own ops, run by name
 * through the backend's `executeSingleOutput` (the way tfjs-node's kernels run them). Each expert matmul is one
 * `BatchMatMulV2` over all experts at once, on blocks [E, C, .] that hold each expert's kept rows padded to the
 * busiest expert's count C; one `GatherV2` fills the blocks from token or row order and one takes the rows back.
 * The plan is read on the host (the backend keeps tensors in host memory, so this is a copy, not a sync), which
 * also sizes C. The routing kernels are the reference loops (loops.ts) over host memory: O(T E) on the host,
 * cheaper here than a dozen op dispatches.
 *
 * Why blocks and not one MatMul per expert: an op costs libtensorflow's eager dispatch (~10 us) plus tfjs-node's
 * bookkeeping, so E matmuls per stage cost more than the padding does while routing is balanced (C near A / E).
 */
import * as tf from '@tensorflow/tfjs';
import { hostAccess, type BackendAdapter, type NativeKernel } from './adapter.js';
import type { KernelKey } from './spec.js';

/** An attribute of a TF op as tfjs-node's binding takes it. */
interface OpAttr {
  name: string;
  type: number;
  value: boolean | number | number[];
}

/** The slice of tfjs-node's NodeJSKernelBackend these kernels use. */
export interface TensorflowBackend {
  binding: { TF_FLOAT: number; TF_INT32: number; TF_ATTR_BOOL: number; TF_ATTR_INT: number; TF_ATTR_TYPE: number };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
  readSync(dataId: tf.DataId): unknown;
}

/** One kernel call's TF ops; every intermediate is freed by `result`. */
class Ops {
  private readonly temps: tf.Tensor[] = [];
  constructor(private readonly backend: TensorflowBackend) {}

  private type(name: string, dtype: 'float32' | 'int32' = 'float32'): OpAttr {
    const { binding } = this.backend;
    return { name, type: binding.TF_ATTR_TYPE, value: dtype === 'float32' ? binding.TF_FLOAT : binding.TF_INT32 };
  }
  private flag(name: string, value: boolean): OpAttr {
    return { name, type: this.backend.binding.TF_ATTR_BOOL, value };
  }
  private int(name: string, value: number): OpAttr {
    return { name, type: this.backend.binding.TF_ATTR_INT, value };
  }
  private op(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor {
    const t = this.backend.executeSingleOutput(name, attrs, inputs);
    this.temps.push(t);
    return t;
  }
  /** Host values as a tensor of the backend. */
  upload(values: Int32Array | Float32Array, shape: number[]): tf.Tensor {
    const t = tf.tensor(values, shape, values instanceof Int32Array ? 'int32' : 'float32');
    this.temps.push(t);
    return t;
  }

  reshape(x: tf.TensorInfo, shape: number[]): tf.Tensor {
    const s = this.upload(new Int32Array(shape), [shape.length]);
    return this.op('Reshape', [this.type('T', x.dtype as 'float32'), this.type('Tshape', 'int32')], [x, s]);
  }
  /** Rows of x [N, c] at `rows` (host indices in [0, N)): [rows.length, c]. Rows 0..N-1 in order are x itself. */
  gather(x: tf.TensorInfo, rows: Int32Array): tf.TensorInfo {
    if (rows.length === x.shape[0] && rows.every((r, i) => r === i)) return x; // the shared experts' identity route
    const attrs = [this.type('Tparams'), this.type('Tindices', 'int32'), this.type('Taxis', 'int32'), this.int('batch_dims', 0)];
    return this.op('GatherV2', attrs, [x, this.upload(rows, [rows.length]), this.upload(new Int32Array([0]), [])]);
  }
  /** Like gather, and index N reads a row of zeros (dropped rows, padding that must not count). */
  gatherOrZero(x: tf.TensorInfo, rows: Int32Array): tf.TensorInfo {
    const [N, c] = x.shape as [number, number];
    if (!rows.includes(N)) return this.gather(x, rows);
    return this.gather(this.concat([x, this.upload(new Float32Array(c), [1, c])], 0), rows);
  }
  /** Part [begin, begin + size) of x along its first axis: a view of x's buffer (TF's Slice shares aligned rows). */
  slice(x: tf.TensorInfo, begin: number, size: number): tf.Tensor {
    const rest = x.shape.slice(1);
    const b = this.upload(new Int32Array([begin, ...rest.map(() => 0)]), [x.shape.length]);
    const n = this.upload(new Int32Array([size, ...rest]), [x.shape.length]);
    return this.op('Slice', [this.type('T'), this.type('Index', 'int32')], [x, b, n]);
  }
  concat(xs: tf.TensorInfo[], axis: number): tf.Tensor {
    const attrs = [this.int('N', xs.length), this.type('T'), this.type('Tidx', 'int32')];
    return this.op('ConcatV2', attrs, [...xs, this.upload(new Int32Array([axis]), [])]);
  }
  /** Batched a [B, n, k] x b [B, k, m] with adjoint flags. */
  bmm(a: tf.TensorInfo, b: tf.TensorInfo, adjA = false, adjB = false): tf.Tensor {
    return this.op('BatchMatMulV2', [this.type('T'), this.flag('adj_x', adjA), this.flag('adj_y', adjB)], [a, b]);
  }
  /** Sums of the rows of x [N, c] by segment (host ids, -1 dropped): [nSegments, c]. */
  segmentSum(x: tf.TensorInfo, ids: Int32Array, nSegments: number): tf.Tensor {
    const attrs = [this.type('T'), this.type('Tindices', 'int32'), this.type('Tnumsegments', 'int32')];
    const n = this.upload(new Int32Array([nSegments]), []);
    return this.op('UnsortedSegmentSum', attrs, [x, this.upload(ids, [ids.length]), n]);
  }
  unary(name: 'Sigmoid', x: tf.TensorInfo): tf.Tensor {
    return this.op(name, [this.type('T')], [x]);
  }
  binary(name: 'Mul' | 'AddV2' | 'Sub', a: tf.TensorInfo, b: tf.TensorInfo): tf.Tensor {
    return this.op(name, [this.type('T')], [a, b]);
  }
  /** Frees every intermediate but `out`, and returns it. */
  result(out: tf.TensorInfo): tf.TensorInfo {
    for (const t of this.temps) if (t !== out) t.dispose();
    return out;
  }
}

/**
 * The plan as blocks: expert e's kept rows are slots [e C, e C + kept_e) of E C, padded to C = max kept_e.
 *   slotRow[s]        row in slot s, or A (padding)
 *   slotAssignment[s] assignment in that row, or A (padding)
 *   rowSlot[r]        slot of row r, or E C (a dropped row)
 */
interface Blocks {
  E: number;
  C: number;
  slotRow: Int32Array;
  slotAssignment: Int32Array;
  rowSlot: Int32Array;
}

/** Blocks by plan: the six expert kernels of a step read the same plan (a plan's values never change). */
const blocksCache = new WeakMap<object, Blocks>();

function blocksOf(backend: TensorflowBackend, plan: tf.TensorInfo, A: number, E: number): Blocks {
  const cached = blocksCache.get(plan.dataId);
  if (cached !== undefined && cached.E === E) return cached;
  const p = hostAccess.read(backend, plan) as Int32Array;
  let C = 1;
  const kept = new Int32Array(E);
  for (let e = 0; e < E; e++) {
    let n = 0;
    for (let r = p[2 * A + e]!; r < p[2 * A + e + 1]! && p[A + r]! !== A; r++) n++;
    kept[e] = n;
    C = Math.max(C, n);
  }
  const slotRow = new Int32Array(E * C).fill(A);
  const slotAssignment = new Int32Array(E * C).fill(A);
  const rowSlot = new Int32Array(A).fill(E * C);
  for (let e = 0; e < E; e++) {
    const start = p[2 * A + e]!;
    for (let j = 0; j < kept[e]!; j++) {
      const r = start + j;
      slotRow[e * C + j] = r;
      slotAssignment[e * C + j] = p[A + r]!;
      rowSlot[r] = e * C + j;
    }
  }
  const blocks = { E, C, slotRow, slotAssignment, rowSlot };
  blocksCache.set(plan.dataId, blocks);
  return blocks;
}

/** The token of each slot, `padding` for padding slots. */
const slotTokens = (b: Blocks, A: number, K: number, padding: number) =>
  b.slotAssignment.map((a) => (a === A ? padding : Math.floor(a / K)));

type Kernel<K extends KernelKey> = NativeKernel<K, TensorflowBackend>;
const sizes = (ids: tf.TensorInfo) => ({ T: ids.shape[0]!, K: ids.shape[1]!, A: ids.shape[0]! * ids.shape[1]! });
/** Padding slots read token 0 / row 0 where their products are thrown away, not a zero row (one copy fewer). */
const orFirst = (index: Int32Array, sentinel: number) => index.map((i) => (i === sentinel ? 0 : i));

/** silu(h1) * h3 of h13 [2, A, h] as [A, h], with h1 and its sigmoid for the backward. */
function swiGLU(ops: Ops, h13: tf.TensorInfo) {
  const [, A, h] = h13.shape as [number, number, number];
  const h1 = ops.reshape(ops.slice(h13, 0, 1), [A, h]);
  const h3 = ops.reshape(ops.slice(h13, 1, 1), [A, h]);
  const s = ops.unary('Sigmoid', h1);
  return { h1, h3, s, act: ops.binary('Mul', ops.binary('Mul', h1, s), h3) };
}

const expertsUp: Kernel<'expertsUp'> = ({ x, w1, w3, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { K, A } = sizes(ids!);
  const [E, d, h] = w1!.shape as [number, number, number];
  const b = blocksOf(backend, plan!, A, E);
  const xBlocks = ops.reshape(ops.gather(x!, slotTokens(b, A, K, 0)), [E, b.C, d]);
  const h1 = ops.reshape(ops.bmm(xBlocks, w1!), [E * b.C, h]);
  const h3 = ops.reshape(ops.bmm(xBlocks, w3!), [E * b.C, h]);
  const rows = new Int32Array(2 * A);
  for (let r = 0; r < A; r++) {
    const s = b.rowSlot[r]!;
    rows[r] = s === E * b.C ? 2 * E * b.C : s;
    rows[A + r] = s === E * b.C ? 2 * E * b.C : E * b.C + s;
  }
  return ops.result(ops.reshape(ops.gatherOrZero(ops.concat([h1, h3], 0), rows), [2, A, h]));
};

const expertsDown: Kernel<'expertsDown'> = ({ h13, w2, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { A } = sizes(ids!);
  const [E, h, d] = w2!.shape as [number, number, number];
  const b = blocksOf(backend, plan!, A, E);
  const { act } = swiGLU(ops, h13!);
  const y = ops.bmm(ops.reshape(ops.gather(act, orFirst(b.slotRow, A)), [E, b.C, h]), w2!);
  return ops.result(ops.gatherOrZero(ops.reshape(y, [E * b.C, d]), b.rowSlot));
};

const expertsDownGradH: Kernel<'expertsDownGradH'> = ({ dYRows, h13, w2, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { A } = sizes(ids!);
  const [E, h, d] = w2!.shape as [number, number, number];
  const b = blocksOf(backend, plan!, A, E);
  const dYBlocks = ops.reshape(ops.gather(dYRows!, orFirst(b.slotRow, A)), [E, b.C, d]);
  const u = ops.gatherOrZero(ops.reshape(ops.bmm(dYBlocks, w2!, false, true), [E * b.C, h]), b.rowSlot); // [A, h]
  const { h1, h3, s } = swiGLU(ops, h13!);
  // d silu(h1) / d h1 = s (1 + h1 (1 - s))
  const one = ops.upload(new Float32Array([1]), []);
  const dSilu = ops.binary('Mul', s, ops.binary('AddV2', one, ops.binary('Mul', h1, ops.binary('Sub', one, s))));
  const dH1 = ops.binary('Mul', ops.binary('Mul', u, h3), dSilu);
  const dH3 = ops.binary('Mul', u, ops.binary('Mul', h1, s));
  return ops.result(ops.reshape(ops.concat([dH1, dH3], 0), [2, A, h]));
};

const expertsDownGradW: Kernel<'expertsDownGradW'> = ({ h13, dYRows, plan }, { nExperts: E }, backend) => {
  const ops = new Ops(backend);
  const [, A, h] = h13!.shape as [number, number, number];
  const d = dYRows!.shape[1]!;
  const b = blocksOf(backend, plan!, A, E);
  const { act } = swiGLU(ops, h13!);
  const actBlocks = ops.reshape(ops.gatherOrZero(act, b.slotRow), [E, b.C, h]); // padding zero: it must not count
  const dYBlocks = ops.reshape(ops.gather(dYRows!, orFirst(b.slotRow, A)), [E, b.C, d]);
  return ops.result(ops.bmm(actBlocks, dYBlocks, true, false));
};

const expertsUpGradX: Kernel<'expertsUpGradX'> = ({ dH13, w1, w3, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { T, K, A } = sizes(ids!);
  const [E, d, h] = w1!.shape as [number, number, number];
  const b = blocksOf(backend, plan!, A, E);
  const dFlat = ops.reshape(dH13!, [2 * A, h]);
  const first = orFirst(b.slotRow, A);
  const d1 = ops.reshape(ops.gather(dFlat, first), [E, b.C, h]);
  const d3 = ops.reshape(ops.gather(dFlat, first.map((r) => r + A)), [E, b.C, h]);
  const dx = ops.binary('AddV2', ops.bmm(d1, w1!, false, true), ops.bmm(d3, w3!, false, true)); // [E, C, d]
  const segment = slotTokens(b, A, K, -1); // padding adds to no token
  return ops.result(ops.segmentSum(ops.reshape(dx, [E * b.C, d]), segment, T));
};

const expertsUpGradW: Kernel<'expertsUpGradW'> = ({ x, dH13, plan }, { nExperts: E, topK: K, half }, backend) => {
  const ops = new Ops(backend);
  const [, A, h] = dH13!.shape as [number, number, number];
  const d = x!.shape[1]!;
  const b = blocksOf(backend, plan!, A, E);
  const xBlocks = ops.reshape(ops.gatherOrZero(x!, slotTokens(b, A, K, x!.shape[0]!)), [E, b.C, d]); // padding: 0
  const rows = orFirst(b.slotRow, A).map((r) => r + half * A);
  const dBlocks = ops.reshape(ops.gather(ops.reshape(dH13!, [2 * A, h]), rows), [E, b.C, h]);
  return ops.result(ops.bmm(xBlocks, dBlocks, true, false));
};

/** Each assignment's row, A when dropped: plan[0, A). */
const rowsOfAssignments = (backend: TensorflowBackend, plan: tf.TensorInfo, A: number) =>
  (hostAccess.read(backend, plan) as Int32Array).slice(0, A);

const combine: Kernel<'combine'> = ({ rows, gates, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const [T, K] = gates!.shape as [number, number];
  const d = rows!.shape[1]!;
  const chosen = ops.reshape(ops.gatherOrZero(rows!, rowsOfAssignments(backend, plan!, T * K)), [T, K, d]);
  const y = ops.bmm(ops.reshape(gates!, [T, 1, K]), chosen); // [T, 1, d]
  return ops.result(ops.reshape(y, [T, d]));
};

const combineGrad: Kernel<'combineGrad'> = ({ dy, gates, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const [T, K] = gates!.shape as [number, number];
  const A = T * K;
  const assignment = (hostAccess.read(backend, plan!) as Int32Array).subarray(A, 2 * A);
  const dyRows = ops.gatherOrZero(dy!, assignment.map((a) => (a === A ? T : Math.floor(a / K)))); // dropped: 0
  const gateRows = ops.gather(ops.reshape(gates!, [A, 1]), orFirst(assignment, A));
  return ops.result(ops.binary('Mul', dyRows, gateRows));
};

const combineGradGates: Kernel<'combineGradGates'> = ({ rows, dy, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const [T, d] = dy!.shape as [number, number];
  const A = rows!.shape[0]!;
  const K = A / T;
  const chosen = ops.reshape(ops.gatherOrZero(rows!, rowsOfAssignments(backend, plan!, A)), [T, K, d]);
  return ops.result(ops.reshape(ops.bmm(chosen, ops.reshape(dy!, [T, d, 1])), [T, K]));
};

export const tensorflowAdapter: BackendAdapter<TensorflowBackend> = {
  backendName: 'tensorflow',
  kernels: {
    expertsUp, expertsDown, expertsDownGradH, expertsDownGradW, expertsUpGradX, expertsUpGradW,
    combine, combineGrad, combineGradGates,
  },
  ...hostAccess,
};
