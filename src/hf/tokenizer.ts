/**
 * The byte-level tokenizer as Hugging Face files: id = byte value, so `AutoTokenizer` turns any UTF-8 text into
 * the ids `encode` gives. It is a BPE model with no merges over GPT-2's byte-to-character table, behind a
 * byte-level pre-tokenizer and decoder without the regex split or a prefix space. TF.js-free.
 */

/** GPT-2's reversible byte -> printable character table (the ByteLevel pre-tokenizer's). */
export function byteToUnicode(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

/** tokenizer.json: 256 tokens, one per byte. */
export function tokenizerJson(): object {
  const byteLevel = { add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel }, post_processor: null,
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(byteToUnicode().map((ch, id) => [ch, id])), merges: [],
    },
  };
}

/** tokenizer_config.json: the fast tokenizer of tokenizer.json, no special tokens added. */
export function tokenizerConfigJson(maxSeqLen: number): object {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast', model_max_length: maxSeqLen, clean_up_tokenization_spaces: false,
    add_bos_token: false, add_eos_token: false, bos_token: null, eos_token: null, pad_token: null, unk_token: null,
  };
}

/**
 * generation_config.json: no special tokens (the model has none); greedy unless the caller samples. The longest
 * sequence is config.json's max_position_embeddings.
 */
export function generationConfigJson(): object {
  return { bos_token_id: null, eos_token_id: null, pad_token_id: null, do_sample: false };
}
