/**
 * Our weights against the Hub's DeepSeek-V2/V3 tensor layout: one `Link` per Hugging Face tensor, which builds it
 * from our tensors (export) and writes it back into them (import). PyTorch stores a linear layer as [out, in],
 * ours as [in, out]; per head, q_b_proj holds the no-position rows then the rotary rows, kv_a_proj_with_mqa the
 * latent then the shared rotary key, kv_b_proj each head's key then value; the routed experts are one tensor per
 * expert and projection. DeepSeek stores rotary dimensions in interleaved pairs (2j, 2j + 1) where we pair j with
 * j + r/2, so the rotary rows are permuted both ways. TF.js-free.
 */
import type { ResolvedModelConfig } from '../model/config.js';

/** Our tensors by checkpoint name, flat row-major float32. */
export type NamedTensors = Map<string, Float32Array>;

/** One Hugging Face tensor and how it maps onto ours. */
export interface Link {
  name: string;
  /** Its shape in the file (PyTorch's [out, in] for linear layers). */
  shape: number[];
  /** Builds the file's tensor from ours. */
  toHf(ours: NamedTensors): Float32Array;
  /** Writes the file's tensor into ours (which the caller allocated at our shapes). */
  fromHf(values: Float32Array, ours: NamedTensors): void;
}

/** How the file lays out what our config leaves open. */
export interface LayoutOptions {
  /** The rotary rows are interleaved pairs (DeepSeek's checkpoints; transformers' rope_interleave). */
  ropeInterleaved: boolean;
  /** Width of the dense FFNs in the file; narrower ones of ours are padded with zero units. */
  denseWidth: number;
  /** V3 files hold the selection bias; V2 files have none. */
  selectionBias: boolean;
}

const need = (ours: NamedTensors, name: string): Float32Array => {
  const t = ours.get(name);
  if (!t) throw new Error(`Hugging Face layout: expected our tensor '${name}', but there is none.`);
  return t;
};

/** The file's row j of an r-row rotary block holds our row order[j]. */
function ropeOrder(r: number, interleaved: boolean): number[] {
  return Array.from({ length: r }, (_, j) => (interleaved ? (j % 2 === 0 ? j / 2 : (j - 1) / 2 + r / 2) : j));
}

/** One column block of a stacked [out, in] file tensor: `per` rows per head taken from our [in, H per] tensor. */
interface Part {
  ours: string;
  per: number;
  /** Row order within a head (rotary blocks). */
  order?: number[];
  /** Our tensor starts at this offset (an expert's slice of a stacked tensor). */
  offset?: number;
}

/**
 * A file tensor [heads * sum(per) (or padded), width] whose rows are, head by head, the columns of our [width, n]
 * tensors: the transpose of a column-wise stack. With one part and one head it is a plain linear layer.
 */
function stacked(
  name: string, width: number, heads: number, parts: Part[], paddedRows?: number, paddedWidth?: number,
): Link {
  const perHead = parts.reduce((n, p) => n + p.per, 0);
  const rows = paddedRows ?? heads * perHead;
  const cols = paddedWidth ?? width;
  // Our (tensor, column) for every file row, and the row's place.
  const map: { part: Part; col: number }[] = [];
  for (let h = 0; h < heads; h++) {
    for (const part of parts) {
      for (let j = 0; j < part.per; j++) map.push({ part, col: h * part.per + (part.order ? part.order[j]! : j) });
    }
  }
  const n = (part: Part) => heads * part.per; // our tensor's width
  return {
    name, shape: [rows, cols],
    toHf(ours) {
      const out = new Float32Array(rows * cols);
      map.forEach(({ part, col }, r) => {
        const src = need(ours, part.ours);
        const base = part.offset ?? 0;
        for (let i = 0; i < width; i++) out[r * cols + i] = src[base + i * n(part) + col]!;
      });
      return out;
    },
    fromHf(values, ours) {
      map.forEach(({ part, col }, r) => {
        const dst = need(ours, part.ours);
        const base = part.offset ?? 0;
        for (let i = 0; i < width; i++) dst[base + i * n(part) + col] = values[r * cols + i]!;
      });
    },
  };
}

/** A file tensor stored as ours is (embeddings, norms, the bias). */
function same(name: string, ours: string, shape: number[]): Link {
  return {
    name, shape,
    toHf: (t) => need(t, ours).slice(),
    fromHf: (values, t) => need(t, ours).set(values),
  };
}

/** Every tensor of the file for a model of config `c`, in the order the file stores them. */
export function hfLayout(c: ResolvedModelConfig, o: LayoutOptions): Link[] {
  const { dModel: d, nHeads: H, vocabSize: V } = c;
  const m = c.moeConfig;
  const links: Link[] = [same('model.embed_tokens.weight', 'embed', [V, d])];
  for (let i = 0; i < c.nLayers; i++) links.push(...blockLinks(c, o, i));
  links.push(same('model.norm.weight', 'finalNorm', [d]), stacked('lm_head.weight', d, 1, [{ ours: 'head', per: V }]));
  // DeepSeek-V3's MTP layers follow the main ones: the block, enorm, hnorm, eh_proj [d, 2d] (its input is
  // [enorm(embedding); hnorm(hidden)]), shared_head.norm, and copies of the embedding and head (engines that load
  // them per layer need them; on import the main model's are kept).
  for (let i = c.nLayers; i < c.nLayers + c.mtpDepth; i++) {
    const hf = `model.layers.${i}`;
    const p = `blocks.${i}`;
    links.push(
      same(`${hf}.enorm.weight`, `${p}.enorm`, [d]), same(`${hf}.hnorm.weight`, `${p}.hnorm`, [d]),
      stacked(`${hf}.eh_proj.weight`, 2 * d, 1, [{ ours: `${p}.ehProj`, per: d }]),
      ...blockLinks(c, o, i),
      same(`${hf}.shared_head.norm.weight`, `${p}.headNorm`, [d]),
      exportOnly(same(`${hf}.embed_tokens.weight`, 'embed', [V, d])),
      exportOnly(stacked(`${hf}.shared_head.head.weight`, d, 1, [{ ours: 'head', per: V }])),
    );
  }
  return links;
}

/** A copy of a tensor another link already imports: written on export, ignored on import. */
const exportOnly = (link: Link): Link => ({ ...link, fromHf: () => {} });

/** Block i's attention, norms and FFN or MoE under model.layers.{i}. */
function blockLinks(c: ResolvedModelConfig, o: LayoutOptions, i: number): Link[] {
  const { dModel: d, nHeads: H } = c;
  const m = c.moeConfig;
  const links: Link[] = [];
  const p = `blocks.${i}`;
  const a = `${p}.attn`;
  const hf = `model.layers.${i}`;
  const at = `${hf}.self_attn`;
  const { qLoraRank: dq, kvLoraRank: dc, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: dv } = c;
  const ropeRows = ropeOrder(rope, o.ropeInterleaved);
  const rotary = (ours: string): Part => ({ ours, per: rope, order: ropeRows });
  const queryParts = (nopeName: string): Part[] => [{ ours: nopeName, per: nope }, rotary(`${a}.wQr`)];
  links.push(same(`${hf}.input_layernorm.weight`, `${p}.attnNorm`, [d]));
  if (dq > 0) {
    links.push(
      stacked(`${at}.q_a_proj.weight`, d, 1, [{ ours: `${a}.wDq`, per: dq }]),
      same(`${at}.q_a_layernorm.weight`, `${a}.qNorm`, [dq]),
      stacked(`${at}.q_b_proj.weight`, dq, H, queryParts(`${a}.wUq`)),
    );
  } else {
    links.push(stacked(`${at}.q_proj.weight`, d, H, queryParts(`${a}.wq`)));
  }
  links.push(
    stacked(`${at}.kv_a_proj_with_mqa.weight`, d, 1, [{ ours: `${a}.wDkv`, per: dc }, rotary(`${a}.wKr`)]),
    same(`${at}.kv_a_layernorm.weight`, `${a}.kvNorm`, [dc]),
    stacked(`${at}.kv_b_proj.weight`, dc, H, [{ ours: `${a}.wUk`, per: nope }, { ours: `${a}.wUv`, per: dv }]),
    stacked(`${at}.o_proj.weight`, H * dv, 1, [{ ours: `${a}.wo`, per: d }]),
    same(`${hf}.post_attention_layernorm.weight`, `${p}.ffnNorm`, [d]),
  );
  const moe = i >= c.nDenseLayers && c.ffn === 'moe';
  if (!moe) {
    const h = i < c.nDenseLayers ? c.interDim : c.twinInterDim;
    links.push(...swiGLULinks(`${hf}.mlp`, `${p}.ffn.w1`, `${p}.ffn.w3`, `${p}.ffn.w2`, d, h, 0, o.denseWidth));
    return links;
  }
  const E = m.nRoutedExperts;
  const h = m.expertHiddenDim;
  links.push(stacked(`${hf}.mlp.gate.weight`, d, 1, [{ ours: `${p}.moe.routerKernel`, per: E }]));
  if (o.selectionBias) links.push(biasLink(`${hf}.mlp.gate.e_score_correction_bias`, `${p}.moe.expertBias`, E));
  for (let e = 0; e < E; e++) {
    const w = (n: number) => `${p}.moe.expertW${n}`;
    links.push(...swiGLULinks(`${hf}.mlp.experts.${e}`, w(1), w(3), w(2), d, h, e * d * h, h));
  }
  if (m.nSharedExperts > 0) {
    const hs = m.nSharedExperts * h;
    const w = (n: number) => `${p}.moe.sharedW${n}`;
    links.push(...swiGLULinks(`${hf}.mlp.shared_experts`, w(1), w(3), w(2), d, hs, 0, hs));
  }
  return links;
}

/** gate_proj, up_proj, down_proj of a SwiGLU FFN of width h (padded to `width` with zero units). */
function swiGLULinks(
  hf: string, w1: string, w3: string, w2: string, d: number, h: number, offset: number, width: number,
): Link[] {
  return [
    stacked(`${hf}.gate_proj.weight`, d, 1, [{ ours: w1, per: h, offset }], width),
    stacked(`${hf}.up_proj.weight`, d, 1, [{ ours: w3, per: h, offset }], width),
    stacked(`${hf}.down_proj.weight`, h, 1, [{ ours: w2, per: d, offset }], d, width),
  ];
}

/** The selection bias; a model without one exports zeros (selection by the scores alone). */
function biasLink(name: string, ours: string, E: number): Link {
  return {
    name, shape: [E],
    toHf: (t) => t.get(ours)?.slice() ?? new Float32Array(E),
    fromHf: (values, t) => need(t, ours).set(values),
  };
}
