// Random flag combinations and damaged files through the six command-line tools: each run either succeeds or
// exits 2 with one error line (no stack trace), and nothing outside the tool's own output changes on disk.
import fc from 'fast-check';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, denseTwin, preset } from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer } from 'deepseek-moe-tfjs/train';
import { cli, fingerprint, usageError, type CliName } from './run.js';

const base = mkdtempSync(join(tmpdir(), 'cli-fuzz-'));
const template = join(base, 'template');

beforeAll(async () => {
  await initBackend('cpu');
  const model = new DeepSeekLM(preset('tiny'));
  const trainer = new Trainer(model, new TextDataset({ a: 'abcdefgh'.repeat(100) }, { seqLen: 16 }), { seqLen: 16 });
  mkdirSync(join(template, 'sub'), { recursive: true });
  writeFileSync(join(template, 'a.ckpt'), await trainer.checkpoint());
  trainer.dispose();
  model.dispose();
  const dense = new DeepSeekLM(denseTwin(preset('tiny'), 'upcycle'));
  const denseTrainer = new Trainer(dense, new TextDataset({ a: 'abcdefgh'.repeat(100) }, { seqLen: 16 }), { seqLen: 16 });
  writeFileSync(join(template, 'dense.ckpt'), await denseTrainer.checkpoint());
  denseTrainer.dispose();
  dense.dispose();
  writeFileSync(join(template, 'notes.txt'), 'my notes\n');
  writeFileSync(join(template, 'sub', 'kept.txt'), 'kept\n');
  writeFileSync(join(template, 'text.txt'), 'The cat sat on the mat. 1 + 2 = 3\n'.repeat(40));
  const exported = cli('export', ['--checkpoint', 'a.ckpt', '--out', 'hf'], template);
  expect(exported.status, exported.stderr).toBe(0);
}, 120_000);

/** A damaged copy of a file: a byte changed, the file cut short, or bytes added at its end. */
const damage = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), to: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);
type Damage = typeof damage extends fc.Arbitrary<infer D> ? D : never;

function damaged(bytes: Uint8Array, d: Damage): Uint8Array {
  if (d.kind === 'append') return new Uint8Array([...bytes, ...d.bytes]);
  if (d.kind === 'cut') return bytes.slice(0, d.at % bytes.length);
  const out = bytes.slice();
  out[d.at % out.length] = d.to;
  return out;
}

const paths = ['a.ckpt', 'bad.ckpt', 'notes.txt', 'sub', 'sub/kept.txt', 'missing.ckpt', '.', '..', 'hf', 'hf-bad',
  'new.ckpt', 'out/new', 'notes.txt/x', 'text.txt', ''];
const numbers = ['1', '2', '0', '-1', '3.5', 'x', '', '1e309', '99999999'];
const flags: Record<CliName, Record<string, string[] | null>> = {
  train: {
    checkpoint: paths, resume: null, force: null, preset: ['tiny', 'huge', ''], steps: ['1', '2', '0', 'x'],
    'batch-size': ['1', '2', '3', '0'], 'seq-len': ['8', '16', '0', '-1', '3.5', 'x', '', '99999999'],
    lr: ['0.01', '0', '-1', 'NaN', '1e309'],
    'eval-every': numbers, data: paths, 'grad-accum': ['1', '2', '3'], 'mtp-depth': ['0', '1', '-1'],
    dispatch: ['capacity', 'dense', ''], 'dense-twin': ['activated', 'half'], seed: numbers,
  },
  eval: { checkpoint: paths, data: paths, 'seq-len': numbers, 'batch-size': numbers, json: null },
  export: { checkpoint: paths, out: paths, dtype: ['float32', 'bfloat16', 'f16'], force: null },
  import: { from: paths, checkpoint: paths, force: null },
  route: {
    checkpoint: paths, text: ['The cat 猫 1+2=3', '', 'x'.repeat(9000)], file: paths, block: numbers,
    dispatch: ['inference', 'training', 'fast'], json: null,
  },
  upcycle: {
    checkpoint: ['dense.ckpt', 'dense.ckpt', ...paths], out: paths, granularity: ['1', '3', '4', '0', 'x'],
    'routed-experts': ['4', '8', '7', '0'], 'top-k': ['1', '2', '3', '99'], 'shared-experts': ['0', '1', '3'],
    'route-scale': ['1', '2', '0', '-1', 'x'], seed: numbers, force: null,
  },
};
/** Given first (a flag drawn later overrides them), so that a run that succeeds stays short. */
const fixed: Record<CliName, string[]> = {
  train: ['--backend', 'cpu', '--sample-tokens', '0', '--steps', '1', '--batch-size', '2', '--seq-len', '16'],
  eval: ['--backend', 'cpu'], export: [], import: [], route: ['--backend', 'cpu'], upcycle: [],
};

/** Flag lists for one tool: a few of its flags, each with a value from its pool, sometimes an unknown flag. */
function argsFor(name: CliName): fc.Arbitrary<string[]> {
  const pool = flags[name];
  const one = fc.constantFrom(...Object.keys(pool)).chain((flag): fc.Arbitrary<string[]> => {
    const values = pool[flag];
    return values ? fc.constantFrom(...values).map((v) => [`--${flag}`, v]) : fc.constant([`--${flag}`]);
  });
  const unknown = fc.constantFrom([], [], [], ['--frobnicate'], ['stray']);
  return fc.tuple(fc.uniqueArray(one, { maxLength: 5, selector: (a) => a[0] }), unknown)
    .map(([chosen, extra]) => [...fixed[name], ...chosen.flat(), ...extra]);
}

/** The paths a successful run of the tool may write: its output, and nothing else. */
function outputsOf(name: CliName, args: string[], cwd: string): string[] {
  const value = (flag: string) => {
    const i = args.lastIndexOf(`--${flag}`);
    return i >= 0 && args[i + 1] !== undefined ? [resolve(cwd, args[i + 1]!)] : [];
  };
  if (name === 'export') return value('out');
  if (name === 'train') return value('checkpoint').concat(args.includes('--checkpoint') ? [] : [join(cwd, 'checkpoints')]);
  if (name === 'import') return value('checkpoint');
  if (name === 'upcycle') return value('out');
  return [];
}

describe.each(['eval', 'export', 'import', 'route', 'train', 'upcycle'] as const)('npm run %s under random flags and damaged files', (name) => {
  it('succeeds, or exits 2 with one error line and changes nothing; a success writes only its output', () => {
    let run = 0;
    fc.assert(fc.property(argsFor(name), damage, damage, (args, ckptDamage, hfDamage) => {
      const cwd = join(base, `${name}-${run++}`);
      cpSync(template, cwd, { recursive: true });
      writeFileSync(join(cwd, 'bad.ckpt'), damaged(readFileSync(join(cwd, 'a.ckpt')), ckptDamage));
      cpSync(join(cwd, 'hf'), join(cwd, 'hf-bad'), { recursive: true });
      const victim = join(cwd, 'hf-bad', hfDamage.kind === 'append' ? 'config.json' : 'model.safetensors');
      writeFileSync(victim, damaged(readFileSync(victim), hfDamage));
      const before = fingerprint(cwd);
      const r = cli(name, args, cwd);
      const context = `npm run ${name} -- ${args.join(' ')}\n${r.stdout}\n${r.stderr}`;
      if (r.status === 0) {
        expect(fingerprint(cwd, outputsOf(name, args, cwd)), context).toEqual(
          Object.fromEntries(Object.entries(before).filter(([k]) => !outputsOf(name, args, cwd).some((o) =>
            resolve(cwd, k) === o || resolve(cwd, k).startsWith(`${o}/`)))),
        );
      } else {
        expect(() => usageError(r), context).not.toThrow();
        expect(fingerprint(cwd), context).toEqual(before);
      }
    }), { numRuns: Number(process.env.CLI_FUZZ_RUNS ?? 10) }); // CLI_FUZZ_RUNS=200 for a deeper run
  }, 600_000);
});
