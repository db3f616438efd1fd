/**
 * The kernel contract on tfjs-node's 'tensorflow' backend: the expert stages as libtensorflow's own ops, run by
 * name through tfjs-node's binding (as its own kernels run them, without a TF.js tensor per intermediate). Each
 * expert matmul is one `BatchMatMulV2` over all experts at once, on blocks [E, C, .] that hold each expert's kept
 * rows padded to the busiest expert's count C; one `GatherV2` fills the blocks from token or row order and one
 * takes the rows back. The plan is read on the host (the backend keeps tensors in host memory, so this is a copy,
 * not a sync), which also sizes C. The routing kernels are TF ops from a layer's worth of scores on, host loops
 * (loops.ts) below it; the plan, counts and gates are always host loops: O(T K).
 *
 * Why blocks and not one MatMul per expert: 64 separate [240, 128] x [128, 64] MatMuls took 10.4 ms against
 * 3.4 ms for one BatchMatMulV2 over all 64 (2 cores), so E ops per stage cost more than padding to C does while
 * routing is balanced (C 1.29 times the mean count at T 2048, 1.6 times at T 256, for a fresh router).
 */
import * as tf from '@tensorflow/tfjs';
import { hostAccess, runLoop, type BackendAdapter, type NativeKernel } from './adapter.js';
import type { KernelKey } from './contract.js';

/** An attribute of a TF op as tfjs-node's binding takes it. */
interface OpAttr {
  name: string;
  type: number;
  value: boolean | number | number[];
}

/** A tensor in libtensorflow's eager runtime, as tfjs-node's binding returns it. */
interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/** The slice of tfjs-node's binding (tfjs_binding.d.ts) these kernels use. */
interface Binding {
  TF_FLOAT: number;
  TF_INT32: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_INT: number;
  TF_ATTR_TYPE: number;
  createTensor(shape: number[], dtype: number, values: Float32Array | Int32Array): number;
  deleteTensor(id: number): void;
  executeOp(name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number): TensorMetadata[];
}

/**
 * The slice of tfjs-node 4.22's NodeJSKernelBackend these kernels use. `getInputTensorIds` and
 * `createOutputTensor` are its own (TypeScript-private) steps around every op it runs.
 */
export interface TensorflowBackend {
  binding: Binding;
  readSync(dataId: tf.DataId): unknown;
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  createOutputTensor(metadata: TensorMetadata): tf.Tensor;
}

/** A libtensorflow tensor of one kernel call: an input of the call, or an intermediate it owns. */
interface Handle {
  id: number;
  shape: number[];
  dtype: number;
}
/** What an op takes: a handle, or a kernel input as TF.js holds it. */
type Ref = Handle | tf.TensorInfo;

/**
 * One kernel call's TF ops, run on the binding directly: intermediates are libtensorflow handles that never become
 * TF.js tensors (no engine bookkeeping per op, about 190 ops a layer step), freed by `result`, which hands the one
 * output to TF.js.
 */
class Ops {
  private readonly owned: number[] = [];
  private readonly binding: Binding;
  constructor(private readonly backend: TensorflowBackend) {
    this.binding = backend.binding;
    unfinished.add(this);
  }

  /** A handle of `ref`; a kernel input's is not owned (TF.js keeps it). */
  private handle(ref: Ref): Handle {
    if (!('dataId' in ref)) return ref;
    const [id] = this.backend.getInputTensorIds([ref]);
    return { id: id!, shape: ref.shape, dtype: ref.dtype === 'int32' ? this.binding.TF_INT32 : this.binding.TF_FLOAT };
  }
  private type(name: string, dtype: number = this.binding.TF_FLOAT): OpAttr {
    return { name, type: this.binding.TF_ATTR_TYPE, value: dtype };
  }
  private flag(name: string, value: boolean): OpAttr {
    return { name, type: this.binding.TF_ATTR_BOOL, value };
  }
  private int(name: string, value: number): OpAttr {
    return { name, type: this.binding.TF_ATTR_INT, value };
  }
  private op(name: string, attrs: OpAttr[], inputs: Ref[], numOutputs = 1): Handle {
    return this.opN(name, attrs, inputs, numOutputs)[0]!;
  }
  private opN(name: string, attrs: OpAttr[], inputs: Ref[], numOutputs: number): Handle[] {
    const out = this.binding.executeOp(name, attrs, inputs.map((r) => this.handle(r).id), numOutputs);
    for (const h of out) this.owned.push(h.id);
    return out;
  }
  /** Host values as a tensor. */
  upload(values: Int32Array | Float32Array, shape: number[]): Handle {
    const dtype = values instanceof Int32Array ? this.binding.TF_INT32 : this.binding.TF_FLOAT;
    const id = this.binding.createTensor(shape, dtype, values);
    this.owned.push(id);
    return { id, shape, dtype };
  }
  ints = (values: number[]) => this.upload(Int32Array.from(values), [values.length]);
  private scalar = (value: number) => this.upload(Int32Array.of(value), []);

  reshape(x: Ref, shape: number[]): Handle {
    const attrs = [this.type('T', this.handle(x).dtype), this.type('Tshape', this.binding.TF_INT32)];
    return this.op('Reshape', attrs, [x, this.ints(shape)]);
  }
  /**
   * Slices of x along `axis` at `index` (host values in [0, x.shape[axis])), the index shaped `indexShape`:
   * x [N, c] and an index [E, C] give [E, C, c]. An index 0..N-1 in order is x itself, reshaped (the shared
   * experts' identity route).
   */
  gather(x: Ref, index: Int32Array, indexShape = [index.length], axis = 0): Ref {
    if (axis === 0 && index.length === x.shape[0] && index.every((r, i) => r === i)) {
      return indexShape.length === 1 ? x : this.reshape(x, [...indexShape, ...x.shape.slice(1)]);
    }
    const { TF_INT32 } = this.binding;
    const attrs = [
      this.type('Tparams'), this.type('Tindices', TF_INT32), this.type('Taxis', TF_INT32), this.int('batch_dims', 0),
    ];
    return this.op('GatherV2', attrs, [x, this.upload(index, indexShape), this.scalar(axis)]);
  }
  /** Like gather on rows, and index N reads a row of zeros (dropped rows, padding that must not count). */
  gatherOrZero(x: Ref, index: Int32Array, indexShape = [index.length]): Ref {
    const [N, ...rest] = x.shape;
    if (!index.includes(N!)) return this.gather(x, index, indexShape);
    const zeros = this.upload(new Float32Array(rest.reduce((a, b) => a * b, 1)), [1, ...rest]);
    return this.gather(this.concat([x, zeros], 0), index, indexShape);
  }
  /** x [n, ...] as n tensors [...] (copies). */
  unpack(x: Ref, n: number): Handle[] {
    return this.opN('Unpack', [this.int('num', n), this.type('T'), this.int('axis', 0)], [x], n);
  }
  /** Tensors [...] stacked along a new first axis. */
  pack(xs: Ref[]): Handle {
    return this.op('Pack', [this.int('N', xs.length), this.type('T'), this.int('axis', 0)], xs);
  }
  concat(xs: Ref[], axis: number): Handle {
    const attrs = [this.int('N', xs.length), this.type('T'), this.type('Tidx', this.binding.TF_INT32)];
    return this.op('ConcatV2', attrs, [...xs, this.scalar(axis)]);
  }
  /** Batched a [B, n, k] x b [B, k, m] with adjoint flags. */
  bmm(a: Ref, b: Ref, adjA = false, adjB = false): Handle {
    return this.op('BatchMatMulV2', [this.type('T'), this.flag('adj_x', adjA), this.flag('adj_y', adjB)], [a, b]);
  }
  /** Sums of x [...idsShape, c] by segment (host ids shaped like x's leading axes, -1 dropped): [nSegments, c]. */
  segmentSum(x: Ref, ids: Int32Array, idsShape: number[], nSegments: number): Handle {
    const { TF_INT32 } = this.binding;
    const attrs = [this.type('T'), this.type('Tindices', TF_INT32), this.type('Tnumsegments', TF_INT32)];
    return this.op('UnsortedSegmentSum', attrs, [x, this.upload(ids, idsShape), this.scalar(nSegments)]);
  }
  unary(name: 'Sigmoid' | 'Log' | 'Neg', x: Ref): Handle {
    return this.op(name, [this.type('T')], [x]);
  }
  binary(name: 'Mul' | 'AddV2' | 'Sub' | 'RealDiv' | 'Maximum', a: Ref, b: Ref): Handle {
    return this.op(name, [this.type('T')], [a, b]);
  }
  /** A float32 scalar. */
  constant(value: number): Handle {
    return this.upload(Float32Array.of(value), []);
  }
  /** Sum over `axis`. */
  sum(x: Ref, axis: number, keepDims: boolean): Handle {
    const attrs = [this.flag('keep_dims', keepDims), this.type('T'), this.type('Tidx', this.binding.TF_INT32)];
    return this.op('Sum', attrs, [x, this.scalar(axis)]);
  }
  /** The k largest of each row's last axis, descending, ties to the lower index: [values, indices int32]. */
  topK(x: Ref, k: number): [Handle, Handle] {
    return this.opN('TopKV2', [this.flag('sorted', true), this.type('T')], [x, this.scalar(k)], 2) as [Handle, Handle];
  }
  /** x [T, E] at column index[t, k] (index an int32 [T, K] tensor, values in [0, E)): [T, K]. */
  pick(x: Ref, index: Ref): Handle {
    const { TF_INT32 } = this.binding;
    const attrs = [
      this.type('Tparams'), this.type('Tindices', TF_INT32), this.type('Taxis', TF_INT32), this.int('batch_dims', 1),
    ];
    return this.op('GatherV2', attrs, [x, index, this.scalar(1)]);
  }
  /** A zero tensor of `shape` with `updates` [n] added at the positions `index` [n, rank] (host values). */
  scatter(index: Int32Array, updates: Ref, shape: number[]): Handle {
    const attrs = [this.type('T'), this.type('Tindices', this.binding.TF_INT32)];
    const positions = this.upload(index, [index.length / shape.length, shape.length]);
    return this.op('ScatterNd', attrs, [positions, updates, this.ints(shape)]);
  }
  broadcastTo(x: Ref, shape: number[]): Handle {
    return this.op('BroadcastTo', [this.type('T'), this.type('Tidx', this.binding.TF_INT32)], [x, this.ints(shape)]);
  }
  /** Frees every intermediate but `out` and hands `out` to TF.js as the kernel's result. */
  result(out: Ref): tf.Tensor {
    if ('dataId' in out) throw new Error('tensorflow kernel: expected a result of its own, but got an input.');
    for (const id of this.owned) if (id !== out.id) this.binding.deleteTensor(id);
    unfinished.delete(this);
    return this.backend.createOutputTensor(out);
  }
  /** Frees every handle (a kernel that threw). */
  free(): void {
    for (const id of this.owned.splice(0)) this.binding.deleteTensor(id);
    unfinished.delete(this);
  }
}

/** Kernel calls that have not returned their result yet: libtensorflow handles TF.js cannot see. */
const unfinished = new Set<Ops>();

/** `kernel`, freeing the handles of its ops when it throws before its result (tf.memory() would not show them). */
function freeingOnThrow<K extends KernelKey>(kernel: Kernel<K>): Kernel<K> {
  return (inputs, attrs, backend) => {
    try {
      return kernel(inputs, attrs, backend);
    } catch (e) {
      for (const ops of [...unfinished]) ops.free();
      throw e;
    }
  };
}

/**
 * The plan as blocks: expert e's kept rows are slots [e C, e C + kept_e) of E C, padded to C = max kept_e.
 *   slotRow[s]        row in slot s, or A (padding)
 *   slotAssignment[s] assignment in that row, or A (padding)
 *   rowSlot[r]        slot of row r, or E C (a dropped row)
 * Padding slots read row 0 (`slotRowOrFirst`) where their products are thrown away: no zero row to append.
 */
interface Blocks {
  E: number;
  C: number;
  slotRow: Int32Array;
  slotRowOrFirst: Int32Array;
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
  const slotRowOrFirst = slotRow.map((r) => (r === A ? 0 : r));
  const blocks = { E, C, slotRow, slotRowOrFirst, slotAssignment, rowSlot };
  blocksCache.set(plan.dataId, blocks);
  return blocks;
}

/** The token of each slot, `padding` for padding slots. */
const slotTokens = (b: Blocks, A: number, K: number, padding: number) =>
  b.slotAssignment.map((a) => (a === A ? padding : Math.floor(a / K)));

type Kernel<K extends KernelKey> = NativeKernel<K, TensorflowBackend>;
const sizes = (ids: tf.TensorInfo) => ({ T: ids.shape[0]!, K: ids.shape[1]!, A: ids.shape[0]! * ids.shape[1]! });

/** Block rows [E, C, c] back in row order: [A, c] (`halves` 2: blocks [2 E, C, c] into [2, A, c]). */
function fromBlocks(ops: Ops, blocks: Ref, b: Blocks, halves: 1 | 2 = 1): Ref {
  const A = b.rowSlot.length;
  const n = b.E * b.C;
  const index = new Int32Array(halves * A);
  for (let half = 0; half < halves; half++) {
    for (let r = 0; r < A; r++) {
      const slot = b.rowSlot[r]!;
      index[half * A + r] = slot === n ? halves * n : half * n + slot; // a dropped row reads zeros
    }
  }
  // GatherV2 on the flat blocks: GatherNd on [E, C, c] took five times as long per element (tfjs-node, 2 cores)
  return ops.gatherOrZero(ops.reshape(blocks, [halves * n, blocks.shape[2]!]), index, halves === 1 ? [A] : [2, A]);
}

/** h1, h3 and silu(h1) * h3 of h13 [2, A, h], each [A, h], with sigmoid(h1) and silu(h1) for the backward. */
function swiGLU(ops: Ops, h13: Ref) {
  const [h1, h3] = ops.unpack(h13, 2) as [Handle, Handle];
  const s = ops.unary('Sigmoid', h1);
  const silu = ops.binary('Mul', h1, s);
  return { h1, h3, s, silu, act: ops.binary('Mul', silu, h3) };
}

const expertsUp: Kernel<'expertsUp'> = ({ x, w1, w3, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { K, A } = sizes(ids!);
  const E = w1!.shape[0]!;
  const b = blocksOf(backend, plan!, A, E);
  const xBlocks = ops.gather(x!, slotTokens(b, A, K, 0), [E, b.C]); // [E, C, d]
  return ops.result(fromBlocks(ops, ops.concat([ops.bmm(xBlocks, w1!), ops.bmm(xBlocks, w3!)], 0), b, 2));
};

const expertsDown: Kernel<'expertsDown'> = ({ h13, w2, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { A } = sizes(ids!);
  const E = w2!.shape[0]!;
  const b = blocksOf(backend, plan!, A, E);
  const { act } = swiGLU(ops, h13!);
  return ops.result(fromBlocks(ops, ops.bmm(ops.gather(act, b.slotRowOrFirst, [E, b.C]), w2!), b));
};

const expertsDownGradH: Kernel<'expertsDownGradH'> = ({ dYRows, h13, w2, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { A } = sizes(ids!);
  const E = w2!.shape[0]!;
  const b = blocksOf(backend, plan!, A, E);
  const u = fromBlocks(ops, ops.bmm(ops.gather(dYRows!, b.slotRowOrFirst, [E, b.C]), w2!, false, true), b); // [A, h]
  const { h3, s, silu } = swiGLU(ops, h13!);
  // d silu(h1) / d h1 = s (1 + h1 (1 - s)) = s + silu (1 - s)
  const dSilu = ops.binary('AddV2', s, ops.binary('Mul', silu, ops.binary('Sub', ops.constant(1), s)));
  const dH1 = ops.binary('Mul', ops.binary('Mul', u, h3), dSilu);
  return ops.result(ops.pack([dH1, ops.binary('Mul', u, silu)]));
};

const expertsDownGradW: Kernel<'expertsDownGradW'> = ({ h13, dYRows, plan }, { nExperts: E }, backend) => {
  const ops = new Ops(backend);
  const A = h13!.shape[1]!;
  const b = blocksOf(backend, plan!, A, E);
  const { act } = swiGLU(ops, h13!);
  const actBlocks = ops.gatherOrZero(act, b.slotRow, [E, b.C]); // padding reads zeros: it must not count
  return ops.result(ops.bmm(actBlocks, ops.gather(dYRows!, b.slotRowOrFirst, [E, b.C]), true, false));
};

const expertsUpGradX: Kernel<'expertsUpGradX'> = ({ dH13, w1, w3, ids, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const { T, K, A } = sizes(ids!);
  const E = w1!.shape[0]!;
  const b = blocksOf(backend, plan!, A, E);
  const [d1, d3] = ops.unpack(ops.gather(dH13!, b.slotRowOrFirst, [E, b.C], 1), 2) as [Handle, Handle]; // [E, C, h]
  const dx = ops.binary('AddV2', ops.bmm(d1, w1!, false, true), ops.bmm(d3, w3!, false, true)); // [E, C, d]
  return ops.result(ops.segmentSum(dx, slotTokens(b, A, K, -1), [E, b.C], T)); // padding adds to no token
};

const expertsUpGradW: Kernel<'expertsUpGradW'> = ({ x, dH13, plan }, { nExperts: E, topK: K, half }, backend) => {
  const ops = new Ops(backend);
  const A = dH13!.shape[1]!;
  const b = blocksOf(backend, plan!, A, E);
  const xBlocks = ops.gatherOrZero(x!, slotTokens(b, A, K, x!.shape[0]!), [E, b.C]); // padding reads zeros
  const rows = b.slotRowOrFirst.map((r) => half * A + r);
  const dBlocks = ops.gather(ops.reshape(dH13!, [2 * A, dH13!.shape[2]!]), rows, [E, b.C]); // [E, C, h]
  return ops.result(ops.bmm(xBlocks, dBlocks, true, false));
};

/** Each assignment's row, A when dropped: plan[0, A). */
const rowsOfAssignments = (backend: TensorflowBackend, plan: tf.TensorInfo, A: number) =>
  (hostAccess.read(backend, plan) as Int32Array).subarray(0, A);

const combine: Kernel<'combine'> = ({ rows, gates, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const [T, K] = gates!.shape as [number, number];
  const d = rows!.shape[1]!;
  const chosen = ops.gatherOrZero(rows!, rowsOfAssignments(backend, plan!, T * K), [T, K]); // [T, K, d]
  return ops.result(ops.reshape(ops.bmm(ops.reshape(gates!, [T, 1, K]), chosen), [T, d]));
};

const combineGrad: Kernel<'combineGrad'> = ({ dy, gates, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const [T, K] = gates!.shape as [number, number];
  const A = T * K;
  const assignment = (hostAccess.read(backend, plan!) as Int32Array).subarray(A, 2 * A);
  const dyRows = ops.gatherOrZero(dy!, assignment.map((a) => (a === A ? T : Math.floor(a / K)))); // dropped: 0
  const gateRows = ops.gather(ops.reshape(gates!, [A, 1]), assignment.map((a) => (a === A ? 0 : a)));
  return ops.result(ops.binary('Mul', dyRows, gateRows));
};

const combineGradGates: Kernel<'combineGradGates'> = ({ rows, dy, plan }, _attrs, backend) => {
  const ops = new Ops(backend);
  const [T, d] = dy!.shape as [number, number];
  const A = rows!.shape[0]!;
  const K = A / T;
  const chosen = ops.gatherOrZero(rows!, rowsOfAssignments(backend, plan!, A), [T, K]); // [T, K, d]
  return ops.result(ops.reshape(ops.bmm(chosen, ops.reshape(dy!, [T, d, 1])), [T, K]));
};

/**
 * The routing kernels over [T, E] scores: as TF ops once a layer has this many scores, where a dozen ops cost less
 * than the host loop (at T 2048, E 64 the loops took 1.5-2.2 ms each); below it the loops, which beat the ops'
 * dispatch cost (tens of microseconds an op on 2 cores).
 */
const routingOpsFrom = 32_768;
const onHost = (scores: tf.TensorInfo | undefined) => scores!.shape[0]! * scores!.shape[1]! < routingOpsFrom;

/** DeepSeek-V3's selection, TopKV2 on scores + bias; group-limited routing stays on the host loop. */
const selectExperts: Kernel<'selectExperts'> = (inputs, attrs, backend) => {
  if (attrs.nGroups > 1 || onHost(inputs.scores)) return runLoop(tensorflowAdapter, 'selectExperts', inputs, attrs, backend);
  const ops = new Ops(backend);
  const v = inputs.bias ? ops.binary('AddV2', inputs.scores!, inputs.bias) : inputs.scores!;
  return ops.result(ops.topK(v, attrs.topK)[1]);
};

/** With g_k = c s_k / S (S = sum_j s_j): dS_k = c (dG_k / S - sum_j dG_j s_j / S^2), scattered into [T, E]. */
const gateWeightsGrad: Kernel<'gateWeightsGrad'> = (inputs, attrs, backend) => {
  const { dGates, scores, ids } = inputs;
  if (onHost(scores)) return runLoop(tensorflowAdapter, 'gateWeightsGrad', inputs, attrs, backend);
  const ops = new Ops(backend);
  const [T, K] = ids!.shape as [number, number];
  let g: Ref = dGates!;
  if (attrs.normTopK) {
    const chosen = ops.pick(scores!, ids!); // [T, K]
    const S = ops.sum(chosen, 1, true);
    const dot = ops.sum(ops.binary('Mul', dGates!, chosen), 1, true);
    g = ops.binary('Sub', ops.binary('RealDiv', dGates!, S), ops.binary('RealDiv', dot, ops.binary('Mul', S, S)));
  }
  const chosenIds = hostAccess.read(backend, ids!) as Int32Array;
  const index = new Int32Array(2 * T * K);
  for (let a = 0; a < T * K; a++) (index[2 * a] = Math.floor(a / K)), (index[2 * a + 1] = chosenIds[a]!);
  const updates = ops.reshape(ops.binary('Mul', g, ops.constant(attrs.routeScale)), [T * K]);
  return ops.result(ops.scatter(index, updates, scores!.shape));
};

/** s' = s / sum_j s_j (normalise) or s, and the weights of each token's block, W[b(t)] ([T, E], or [1, E]). */
function affinities(ops: Ops, scores: tf.TensorInfo, weights: tf.TensorInfo, normalise: boolean) {
  const [T] = scores.shape as [number, number];
  const B = weights.shape[0]!;
  const R = normalise ? ops.sum(scores, 1, true) : null; // [T, 1]
  const rows = B === 1 ? weights : ops.gather(weights, Int32Array.from({ length: T }, (_, t) => Math.floor((t * B) / T)));
  return { R, rows };
}

const routerEntropy: Kernel<'routerEntropy'> = (inputs, attrs, backend) => {
  if (onHost(inputs.scores)) return runLoop(tensorflowAdapter, 'routerEntropy', inputs, attrs, backend);
  const ops = new Ops(backend);
  const s = inputs.scores!;
  const p = attrs.normalise ? ops.binary('RealDiv', s, ops.sum(s, 1, true)) : s;
  const plogp = ops.binary('Mul', p, ops.unary('Log', ops.binary('Maximum', p, ops.constant(1e-12))));
  return ops.result(ops.unary('Neg', ops.sum(plogp, 1, false)));
};

/** L_t = scale sum_i W[b(t), i] s'_(t,i). */
const affinityBalance: Kernel<'affinityBalance'> = (inputs, attrs, backend) => {
  if (onHost(inputs.scores)) return runLoop(tensorflowAdapter, 'affinityBalance', inputs, attrs, backend);
  const ops = new Ops(backend);
  const { R, rows } = affinities(ops, inputs.scores!, inputs.weights!, attrs.normalise);
  const acc = ops.binary('Mul', ops.sum(ops.binary('Mul', rows, inputs.scores!), 1, false), ops.constant(attrs.scale));
  return ops.result(R ? ops.binary('RealDiv', acc, ops.reshape(R, [inputs.scores!.shape[0]!])) : acc);
};

/** dy (W[b(t), j] - L_t) / R_t with normalise, dy W[b(t), j] otherwise (W = scale weights). */
const affinityBalanceGrad: Kernel<'affinityBalanceGrad'> = (inputs, attrs, backend) => {
  if (onHost(inputs.scores)) return runLoop(tensorflowAdapter, 'affinityBalanceGrad', inputs, attrs, backend);
  const ops = new Ops(backend);
  const scores = inputs.scores!;
  const { R, rows } = affinities(ops, scores, inputs.weights!, attrs.normalise);
  const factor = ops.binary('Mul', inputs.dy!, ops.constant(attrs.scale)); // []
  if (!R) return ops.result(ops.broadcastTo(ops.binary('Mul', rows, factor), scores.shape));
  const L = ops.binary('RealDiv', ops.sum(ops.binary('Mul', rows, scores), 1, true), R); // [T, 1]
  return ops.result(ops.binary('RealDiv', ops.binary('Mul', ops.binary('Sub', rows, L), factor), R));
};

const kernels: Partial<{ [K in KernelKey]: Kernel<K> }> = {
  expertsUp, expertsDown, expertsDownGradH, expertsDownGradW, expertsUpGradX, expertsUpGradW,
  combine, combineGrad, combineGradGates,
  selectExperts, gateWeightsGrad, routerEntropy, affinityBalance, affinityBalanceGrad,
};

export const tensorflowAdapter: BackendAdapter<TensorflowBackend> = {
  backendName: 'tensorflow',
  kernels: Object.fromEntries(
    Object.entries(kernels).map(([key, kernel]) => [key, freeingOnThrow(kernel as Kernel<KernelKey>)]),
  ),
  ...hostAccess,
};
