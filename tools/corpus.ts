/** Node-side loading of training text: the bundled four-domain corpus, or a user's file as one domain. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export const bundledDomains = ['english', 'chinese', 'code', 'arithmetic'] as const;

/** The bundled corpus from data/corpus/, one text per domain. */
export function bundledCorpus(): Record<string, string> {
  const dir = new URL('../data/corpus/', import.meta.url);
  return Object.fromEntries(bundledDomains.map((d) => [d, readFileSync(new URL(`${d}.txt`, dir), 'utf8')]));
}

/** A user's UTF-8 text file as a single domain named after the file. */
export function fileCorpus(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`--data: cannot read '${path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
  return { [basename(path)]: text };
}
