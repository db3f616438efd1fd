/**
 * Repetition in generated text, and prompts cut from held-out text, for the free-running speculative-decoding
 * measure (free-running.ts). TF.js-free: the report reads it too.
 */

/** The n of the repeated n-grams. */
export const repeatN = 8;

/**
 * Marks each byte of `bytes` from `start` on that lies inside an occurrence of an n-gram that also occurs at an
 * earlier position (the two may overlap: in a run of more than n equal bytes, every byte but the run's first).
 */
export function repeatedMask(bytes: ArrayLike<number>, start: number, n = repeatN): boolean[] {
  const mask = new Array<boolean>(bytes.length - start).fill(false);
  const seen = new Set<string>();
  for (let i = 0; i + n <= bytes.length; i++) {
    const gram = Array.prototype.slice.call(bytes, i, i + n).join(',');
    if (seen.has(gram)) for (let j = Math.max(i, start); j < i + n; j++) mask[j - start] = true;
    seen.add(gram);
  }
  return mask;
}

/**
 * `count` prompts of `promptBytes` bytes cut from the texts, the same number from each (the first domains take one
 * more when it does not divide), spread evenly over each text and moved forward to a character boundary.
 */
export function promptsFrom(
  texts: { domain: string; bytes: Uint8Array }[], count: number, promptBytes: number,
): { domain: string; bytes: Uint8Array }[] {
  const prompts: { domain: string; bytes: Uint8Array }[] = [];
  texts.forEach((t, d) => {
    const mine = Math.floor(count / texts.length) + (d < count % texts.length ? 1 : 0);
    const room = t.bytes.length - 2 * promptBytes;
    for (let k = 0; k < mine && room > 0; k++) {
      let start = Math.floor(((k + 0.5) * room) / mine);
      while (start < room && (t.bytes[start]! & 0xc0) === 0x80) start++; // not inside a UTF-8 character
      let end = start + promptBytes;
      while (end > start && (t.bytes[end]! & 0xc0) === 0x80) end--;
      prompts.push({ domain: t.domain, bytes: t.bytes.slice(start, end) });
    }
  });
  return prompts;
}
