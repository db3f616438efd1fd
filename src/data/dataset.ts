/**
 * Text as training data: each domain's UTF-8 bytes split into a training part and a held-out validation tail;
 * random windows for training, fixed windows for evaluation. Knows nothing about tensors or models.
 */
import { encode } from '../model/tokenizer.js';
import type { Rng } from '../rng.js';
import { show } from '../validate.js';

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

/** Options of TextDataset. */
export interface DatasetOptions {
  /** Share of each domain held out, from its end. Default 0.05. */
  valFraction?: number;
  /** Longest window that will be asked for; every split must hold at least seqLen + 1 bytes. */
  seqLen: number;
}

/** Text as training data (see the file header): held-out validation tails, seeded training windows. */
export class TextDataset {
  readonly domains: string[];
  /** The longest window the dataset was built for: every split holds at least seqLen + 1 bytes. */
  readonly seqLen: number;
  private readonly splits: Split[];

  /** `corpus` maps a domain name to its text; a single text is one domain. */
  constructor(corpus: Record<string, string>, options: DatasetOptions) {
    const { valFraction = 0.05, seqLen } = options;
    if (corpus == null || typeof corpus !== 'object' || Object.keys(corpus).length === 0) {
      throw new Error(`dataset: expected a corpus object mapping domain names to text, but got ` +
        `${corpus == null ? String(corpus) : 'an empty object'}.`);
    }
    if (!(valFraction > 0 && valFraction < 1)) throw new Error(`dataset: expected valFraction in (0, 1), but got ${show(valFraction)}.`);
    if (!Number.isInteger(seqLen) || seqLen < 1) {
      throw new Error(`dataset: expected seqLen to be a positive integer, but got ${show(seqLen)}.`);
    }
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
    this.seqLen = seqLen;
  }

  /** Bytes per domain in the training and validation parts. */
  get sizes(): { domain: string; train: number; val: number }[] {
    return this.domains.map((domain, i) => ({ domain, train: this.splits[i]!.train.length, val: this.splits[i]!.val.length }));
  }

  /** B random training windows of S + 1 bytes; every window start is equally likely, across domains. */
  sampleBatch(B: number, S: number, rng: Rng): Batch {
    this.checkWindows('sampleBatch', 'batchSize', B, S);
    const batch = emptyBatch(B, S);
    const total = this.splits.reduce((n, s) => n + s.train.length - S, 0);
    for (let b = 0; b < B; b++) {
      let r = rng.int(total);
      let i = 0;
      while (r >= this.splits[i]!.train.length - S) r -= this.splits[i++]!.train.length - S;
      this.fill(batch, b, i, this.splits[i]!.train, r);
    }
    return batch;
  }

  /** Each domain's held-out validation tail (what evaluation windows are cut from). */
  get validationTexts(): { domain: string; bytes: Uint8Array }[] {
    return this.domains.map((domain, i) => ({ domain, bytes: this.splits[i]!.val }));
  }

  /** `n` fixed validation windows of domain i (evenly spaced), as one batch. */
  validationBatch(domain: number, n: number, S: number): Batch {
    if (!Number.isInteger(domain) || domain < 0 || domain >= this.domains.length) {
      throw new Error(`dataset.validationBatch: expected domain to be an index below ${this.domains.length}, but got ${show(domain)}.`);
    }
    this.checkWindows('validationBatch', 'n', n, S);
    const batch = emptyBatch(n, S);
    const val = this.splits[domain]!.val;
    const span = val.length - S - 1;
    for (let b = 0; b < n; b++) this.fill(batch, b, domain, val, Math.floor((b * span) / Math.max(1, n - 1)));
    return batch;
  }

  /** Window counts and lengths this dataset can serve, checked before anything is drawn. */
  private checkWindows(method: string, countName: string, count: number, S: number): void {
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`dataset.${method}: expected ${countName} to be a positive integer, but got ${show(count)}.`);
    }
    if (!Number.isInteger(S) || S < 1 || S > this.seqLen) {
      throw new Error(
        `dataset.${method}: expected seqLen to be an integer from 1 to ${this.seqLen} (the seqLen the dataset was built ` +
          `for), but got ${show(S)}.`,
      );
    }
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
