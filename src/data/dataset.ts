/**
 * Text as training data: each domain's UTF-8 bytes split into a training part and a held-out validation tail;
 * random windows for training, fixed windows for evaluation. Knows nothing about tensors or models.
 */
import { encode } from '../model/tokenizer.js';
import type { Rng } from '../rng.js';

/** One batch of windows: ids and next-token targets, row-major [B, S], and each row's domain index. */
export interface Batch {
  ids: Int32Array;
  targets: Int32Array;
  domains: number[];
  batchSize: number;
  seqLen: number;
}

interface Split {
  train: Uint8Array;
  val: Uint8Array;
}

export interface DatasetOptions {
  /** Share of each domain held out, from its end. Default 0.05. */
  valFraction?: number;
  /** Longest window that will be asked for; every split must hold at least seqLen + 1 bytes. */
  seqLen: number;
}

export class TextDataset {
  readonly domains: string[];
  private readonly splits: Split[];
  private readonly trainTotal: number;

  /** `corpus` maps a domain name to its text; a single text is one domain. */
  constructor(corpus: Record<string, string>, options: DatasetOptions) {
    const { valFraction = 0.05, seqLen } = options;
    if (corpus == null || typeof corpus !== 'object' || Object.keys(corpus).length === 0) {
      throw new Error(`dataset: expected a corpus object mapping domain names to text, but got ${corpus == null ? String(corpus) : 'an empty object'}.`);
    }
    if (!(valFraction > 0 && valFraction < 1)) throw new Error(`dataset: expected valFraction in (0, 1), but got ${valFraction}.`);
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`dataset: expected seqLen to be a positive integer, but got ${seqLen}.`);
    this.domains = Object.keys(corpus);
    this.splits = this.domains.map((name) => {
      const text = corpus[name];
      if (typeof text !== 'string') throw new Error(`dataset: expected domain '${name}' to be a string, but got ${typeof text}.`);
      const bytes = encode(text);
      const nVal = Math.floor(bytes.length * valFraction);
      const split = { train: bytes.subarray(0, bytes.length - nVal), val: bytes.subarray(bytes.length - nVal) };
      const need = seqLen + 1;
      if (split.val.length < need || split.train.length < need) {
        throw new Error(
          `dataset: expected domain '${name}' to hold at least ${Math.ceil(need / valFraction)} bytes (seqLen + 1 = ${need} in its ` +
            `validation share of ${valFraction}), but got ${bytes.length}.`,
        );
      }
      return split;
    });
    this.trainTotal = this.splits.reduce((n, s) => n + s.train.length - seqLen, 0);
  }

  /** Bytes per domain in the training and validation parts. */
  get sizes(): { domain: string; train: number; val: number }[] {
    return this.domains.map((domain, i) => ({ domain, train: this.splits[i]!.train.length, val: this.splits[i]!.val.length }));
  }

  /** B random training windows of S + 1 bytes; every window start is equally likely, across domains. */
  sampleBatch(B: number, S: number, rng: Rng): Batch {
    const batch = emptyBatch(B, S);
    for (let b = 0; b < B; b++) {
      let r = rng.int(this.trainTotal);
      let i = 0;
      while (r >= this.splits[i]!.train.length - S) r -= this.splits[i++]!.train.length - S;
      this.fill(batch, b, i, this.splits[i]!.train, r);
    }
    return batch;
  }

  /** `n` fixed validation windows of domain i (evenly spaced), as one batch. */
  validationBatch(domain: number, n: number, S: number): Batch {
    const batch = emptyBatch(n, S);
    const val = this.splits[domain]!.val;
    const span = val.length - S - 1;
    for (let b = 0; b < n; b++) this.fill(batch, b, domain, val, Math.floor((b * span) / Math.max(1, n - 1)));
    return batch;
  }

  private fill(batch: Batch, row: number, domain: number, bytes: Uint8Array, start: number): void {
    const S = batch.seqLen;
    for (let s = 0; s < S; s++) {
      batch.ids[row * S + s] = bytes[start + s]!;
      batch.targets[row * S + s] = bytes[start + s + 1]!;
    }
    batch.domains[row] = domain;
  }
}

function emptyBatch(B: number, S: number): Batch {
  return { ids: new Int32Array(B * S), targets: new Int32Array(B * S), domains: new Array<number>(B).fill(0), batchSize: B, seqLen: S };
}
