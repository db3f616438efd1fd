/**
 * Byte-level tokenizer: a token is one UTF-8 byte (vocabulary 256), so any text, Chinese included, trains
 * without a vocabulary file. A Chinese character is three tokens.
 */
const encoder = new TextEncoder();

export const byteVocabSize = 256;

/** Text to token ids: its UTF-8 bytes. */
export function encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes bytes; an incomplete UTF-8 sequence (a cut-off sample) becomes U+FFFD instead of throwing. */
export function decode(tokens: ArrayLike<number>): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(tokens));
}
