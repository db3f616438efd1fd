/** Node-side loading of training text: the bundled four-domain corpus, or a user's file as one domain. */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readInputFile } from './cli-files.js';

export const bundledDomains = ['english', 'chinese', 'code', 'arithmetic'] as const;

/** The bundled corpus from data/corpus/, one text per domain. */
export function bundledCorpus(): Record<string, string> {
  return corpusFolder(new URL('../data/corpus/', import.meta.url).pathname);
}

/**
 * The four domains' texts from a folder holding english.txt, chinese.txt, code.txt and arithmetic.txt (as
 * `npx tsx scripts/build-corpus.ts --large` writes data/corpus-large/); throws naming a missing file.
 */
export function corpusFolder(dir: string): Record<string, string> {
  const missing = bundledDomains.filter((d) => !existsSync(join(dir, `${d}.txt`)));
  if (missing.length > 0) {
    throw new Error(`expected a corpus folder holding ${bundledDomains.map((d) => `${d}.txt`).join(', ')}, but ` +
      `'${dir}' has no ${missing.map((d) => `${d}.txt`).join(', ')} (the large corpus: npx tsx ` +
      'scripts/build-corpus.ts --large).');
  }
  return Object.fromEntries(bundledDomains.map((d) => [d, readFileSync(join(dir, `${d}.txt`), 'utf8')]));
}

/**
 * A user's UTF-8 text file as a single domain named after the file. Bytes that are not UTF-8 are refused with
 * their offset: decoding them would train on replacement characters instead (the model sees UTF-8 bytes).
 */
export function fileCorpus(path: string): Record<string, string> {
  const bytes = readInputFile(path, '--data');
  const at = firstInvalidUtf8(bytes);
  if (at >= 0) {
    throw new Error(`--data: expected UTF-8 text, but byte ${at} of '${path}' (0x${bytes[at]!.toString(16)}) does ` +
      'not begin or continue a UTF-8 character; convert the file to UTF-8 first.');
  }
  return { [basename(path)]: new TextDecoder().decode(bytes) };
}

/** The offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, surrogates, nor past U+10FFFF), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0) return i;
    // The second byte's range excludes overlongs (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || x < (k === 1 ? lo : 0x80) || x > (k === 1 ? hi : 0xbf)) return x === undefined ? i : i + k;
    }
    i += n + 1;
  }
  return -1;
}
