/**
 * The package's entries mapped to their sources, for the repository's own apps and tests (vite, vitest; tsc and
 * tsx read the same map from tsconfig.json's paths), so they import the library by its name, as users do.
 */
const source = (path: string) => new URL(`../src/${path}`, import.meta.url).pathname;

export const entryAliases = [
  { find: /^deepseek-moe-tfjs$/, replacement: source('index.ts') },
  { find: /^deepseek-moe-tfjs\/model$/, replacement: source('model/index.ts') },
  { find: /^deepseek-moe-tfjs\/train$/, replacement: source('train/index.ts') },
  { find: /^deepseek-moe-tfjs\/config$/, replacement: source('config.ts') },
  { find: /^deepseek-moe-tfjs\/hf$/, replacement: source('hf/index.ts') },
];
