// The command-line tools lose nothing: one test per defect of issue 24, each failing before its fix.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, preset } from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer, readCheckpoint, writeCheckpoint } from 'deepseek-moe-tfjs/train';
import { cli, fingerprint, npmRun, usageError, waitFor } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-safety-'));
let tiny = '';
let tinyBytes: Uint8Array = new Uint8Array();
/** The same checkpoint with one weight value replaced (a valid file: its checksum is rewritten). */
function withWeight(name: string, index: number, value: number): Uint8Array {
  const { header, tensors } = readCheckpoint(tinyBytes);
  const list = header.tensors.map((t) => ({ ...t, values: tensors.get(t.name)!.slice() }));
  list.find((t) => t.name === name)!.values[index] = value;
  const { modelConfig, trainConfig, step, rngState } = header;
  return writeCheckpoint({ modelConfig, trainConfig, step, rngState }, list);
}

beforeAll(async () => {
  await initBackend('cpu');
  const model = new DeepSeekLM(preset('tiny'));
  const trainer = new Trainer(model, new TextDataset({ a: 'abcdefgh'.repeat(100) }, { seqLen: 16 }), {
    seqLen: 16, learningRate: 0.01, batchSize: 2,
  });
  tinyBytes = await trainer.checkpoint();
  tiny = join(dir, 'tiny.ckpt');
  writeFileSync(tiny, tinyBytes);
  trainer.dispose();
  model.dispose();
});

/** A fresh folder under the test's own. */
const folder = (name: string) => {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
};

describe('export --force replaces only an earlier export', () => {
  it('refuses the folder holding the checkpoint and any folder with other files; nothing changes', () => {
    const p = folder('p/d');
    writeFileSync(join(p, 'notes.txt'), 'x');
    writeFileSync(join(p, 'a.ckpt'), tinyBytes);
    const before = fingerprint(dir);
    const r = cli('export', ['--checkpoint', join(p, 'a.ckpt'), '--out', p, '--force']);
    expect(usageError(r)).toMatch(/--out: '.*p\/d' holds the input '.*a.ckpt'; write the export to another folder/);
    const elsewhere = cli('export', ['--checkpoint', tiny, '--out', p, '--force']);
    expect(usageError(elsewhere)).toMatch(/--force replaces only an earlier export, and '.*' is not one: it has no/);
    expect(fingerprint(dir)).toEqual(before);
  });

  it('refuses the working directory or a folder holding it', () => {
    const work = folder('work');
    writeFileSync(join(work, 'a.ckpt'), tinyBytes);
    const before = fingerprint(dir);
    expect(usageError(cli('export', ['--checkpoint', tiny, '--out', '.', '--force'], work)))
      .toMatch(/--out: '\.' holds the (input|current directory)/);
    expect(usageError(cli('export', ['--checkpoint', tiny, '--out', '..', '--force'], work)))
      .toMatch(/--out: '\.\.' holds the (input|current directory)/);
    expect(fingerprint(dir)).toEqual(before);
  });

  it('refuses an earlier export that has gained a file, and replaces an untouched one', () => {
    const out = join(dir, 'export');
    expect(cli('export', ['--checkpoint', tiny, '--out', out]).status).toBe(0);
    writeFileSync(join(out, 'README.md'), 'my notes');
    expect(usageError(cli('export', ['--checkpoint', tiny, '--out', out, '--force'])))
      .toMatch(/it holds 'README.md', which the export did not write/);
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toBe('my notes');
    const clean = join(dir, 'export2');
    expect(cli('export', ['--checkpoint', tiny, '--out', clean]).status).toBe(0);
    const again = cli('export', ['--checkpoint', tiny, '--out', clean, '--force']);
    expect(again.status, again.stderr).toBe(0);
  });

  it('--out under a file is a usage error, written nowhere', () => {
    writeFileSync(join(dir, 'plain'), 'x');
    expect(usageError(cli('export', ['--checkpoint', tiny, '--out', join(dir, 'plain', 'sub')])))
      .toMatch(/--out: cannot create .*: '.*plain' is a file/);
  });
});

describe('train: Ctrl-C and SIGTERM save the run', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s through npm run: the step finishes, the run is saved', async (signal) => {
    const checkpoint = join(dir, `signal-${signal}.ckpt`);
    const run = npmRun('train', ['--preset', 'tiny', '--steps', '5000', '--eval-every', '2', '--batch-size', '2',
      '--backend', 'cpu', '--checkpoint', checkpoint]);
    await waitFor(() => /step 2: validation loss/.test(run.output().stdout));
    run.signal(signal);
    // The tool exits 130 (143) once saved; npm, which got the signal too, ends by it (at once for SIGTERM).
    const { code, signal: endedBy } = await run.exited;
    const { stdout } = run.output();
    expect(code === (signal === 'SIGINT' ? 130 : 143) || endedBy === signal, `${code} ${endedBy}\n${stdout}`).toBe(true);
    expect(stdout).toMatch(new RegExp(`${signal}: stopping after this step and saving`));
    const saved = /checkpoint: .* \(step (\d+); continue with --resume\)/.exec(stdout);
    expect(saved).not.toBeNull();
    const step = Number(saved![1]);
    expect(step).toBeGreaterThanOrEqual(2);
    expect(readCheckpoint(new Uint8Array(readFileSync(checkpoint))).header.step).toBe(step);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 180_000);
});

describe('train never overwrites what it did not write', () => {
  it('an existing checkpoint needs --resume or --force; any other file is never replaced', () => {
    const mine = join(dir, 'mine.txt');
    writeFileSync(mine, 'my notes');
    const before = fingerprint(dir);
    expect(usageError(cli('train', ['--preset', 'tiny', '--checkpoint', tiny])))
      .toMatch(/--checkpoint: '.*tiny.ckpt' exists; pass --resume to continue its run, another --checkpoint .* or --force/);
    expect(usageError(cli('train', ['--preset', 'tiny', '--checkpoint', mine, '--force'])))
      .toMatch(/--checkpoint: '.*mine.txt' exists and is not a checkpoint; it is never replaced/);
    expect(fingerprint(dir)).toEqual(before);
  });

  it('checks the checkpoint path before any work: a folder, or a path under a file', () => {
    writeFileSync(join(dir, 'afile'), 'x');
    const before = fingerprint(dir);
    expect(usageError(cli('train', ['--preset', 'tiny', '--checkpoint', dir])))
      .toMatch(/--checkpoint: expected a file path, but '.*' is a folder/);
    expect(usageError(cli('train', ['--preset', 'tiny', '--checkpoint', join(dir, 'afile', 'x.ckpt')])))
      .toMatch(/--checkpoint: cannot create '.*x.ckpt': '.*afile' is a file/);
    expect(usageError(cli('train', ['--resume', '--checkpoint', dir])))
      .toMatch(/--resume: expected a file at '.*', but it is a folder/);
    expect(fingerprint(dir)).toEqual(before);
  });
});

describe('train --resume continues the saved run', () => {
  it('takes the settings stored in the checkpoint, says what a flag changed, and keeps its model', () => {
    const checkpoint = join(dir, 'resume.ckpt');
    const first = cli('train', ['--preset', 'tiny', '--steps', '2', '--eval-every', '2', '--batch-size', '2',
      '--lr', '0.01', '--seq-len', '16', '--backend', 'cpu', '--sample-tokens', '0', '--checkpoint', checkpoint]);
    expect(first.status, first.stderr).toBe(0);
    const resumed = cli('train', ['--resume', '--checkpoint', checkpoint, '--steps', '3', '--backend', 'cpu',
      '--sample-tokens', '0']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^resume.ckpt on cpu/m); // not the default preset's name
    expect(resumed.stdout).toMatch(/at step 2 of 3; changed from the checkpoint by flags: steps 2 -> 3$/m);
    const { trainConfig, step } = readCheckpoint(new Uint8Array(readFileSync(checkpoint))).header;
    expect(step).toBe(3);
    expect(trainConfig).toMatchObject({ learningRate: 0.01, batchSize: 2, seqLen: 16, steps: 3 });
    const lr = cli('train', ['--resume', '--checkpoint', checkpoint, '--steps', '4', '--lr', '0.02', '--backend', 'cpu',
      '--sample-tokens', '0']);
    expect(lr.stdout).toMatch(/changed from the checkpoint by flags: steps 3 -> 4, learningRate 0.01 -> 0.02/);
  });

  it('refuses model flags, and a --steps the run has already taken', () => {
    const before = fingerprint(dir);
    expect(usageError(cli('train', ['--resume', '--checkpoint', tiny, '--preset', 'small', '--alpha1', '0.1'])))
      .toMatch(/--preset, --alpha1: a resumed run keeps the model \(and seed\) of its checkpoint/);
    expect(usageError(cli('train', ['--resume', '--checkpoint', tiny, '--steps', '0'])))
      .toMatch(/expected --steps to be an integer >= 1, but got '0'/);
    const done = join(dir, 'done.ckpt');
    writeFileSync(done, tinyBytes);
    const header = readCheckpoint(tinyBytes).header;
    expect(header.step).toBe(0);
    const once = cli('train', ['--resume', '--checkpoint', done, '--steps', '1', '--backend', 'cpu',
      '--sample-tokens', '0']);
    expect(once.status, once.stderr).toBe(0);
    expect(usageError(cli('train', ['--resume', '--checkpoint', done, '--steps', '1'])))
      .toMatch(/expected --steps to be above the checkpoint's step \(1\) to continue its run, but got 1/);
    expect(fingerprint(dir, [done])).toEqual(before);
  });
});

describe('input the tools refuse with a usage error', () => {
  it('train --data that is not UTF-8', () => {
    const bytes = new Uint8Array(2000).map((_, i) => (i * 7919) % 256);
    writeFileSync(join(dir, 'random.bin'), bytes);
    expect(usageError(cli('train', ['--preset', 'tiny', '--data', join(dir, 'random.bin'), '--checkpoint',
      join(dir, 'never.ckpt')]))).toMatch(/--data: expected UTF-8 text, but byte \d+ of '.*random.bin' \(0x[0-9a-f]+\)/);
    expect(existsSync(join(dir, 'never.ckpt'))).toBe(false);
  });

  it('eval and export of non-finite weights; nothing is written', () => {
    const nan = join(dir, 'nan.ckpt');
    writeFileSync(nan, withWeight('head', 3, NaN));
    expect(usageError(cli('eval', ['--checkpoint', nan, '--backend', 'cpu', '--json'])))
      .toMatch(/--checkpoint: checkpoint: weight 'head' holds NaN at index 3/);
    expect(usageError(cli('export', ['--checkpoint', nan, '--out', join(dir, 'nan-out')])))
      .toMatch(/--checkpoint: checkpoint: weight 'head' holds NaN at index 3/);
    expect(existsSync(join(dir, 'nan-out'))).toBe(false);
  });

  it.each([
    ['train', ['--sample-tokens', '99999999'], /expected --sample-tokens to be an integer in \[0, 100000\]/],
    ['eval', ['--checkpoint', '/no/such.ckpt'], /--checkpoint: expected a file at '\/no\/such.ckpt', but there is none/],
    ['eval', ['--checkpoint', '.'], /--checkpoint: expected a file at '\.', but it is a folder/],
    ['train', ['--resume', '--checkpoint', '.'], /--resume: expected a file at '\.', but it is a folder/],
  ] as const)('%s %j', (name, args, message) => {
    expect(usageError(cli(name, [...args]))).toMatch(message);
  });

  it('eval of a checkpoint whose header was edited to an invalid model', () => {
    const { header, tensors } = readCheckpoint(tinyBytes);
    const list = header.tensors.map((t) => ({ ...t, values: tensors.get(t.name)! }));
    const edited = join(dir, 'edited.ckpt');
    writeFileSync(edited, writeCheckpoint({ ...header, modelConfig: { ...header.modelConfig, nLayers: 0 } }, list));
    expect(usageError(cli('eval', ['--checkpoint', edited]))).toMatch(/its model config is not valid: .*nLayers/);
  });

  it('import skips a dangling link in the folder and suggests the model\'s own sequence length', () => {
    const out = join(dir, 'linked');
    expect(cli('export', ['--checkpoint', tiny, '--out', out]).status).toBe(0);
    symlinkSync(join(dir, 'nowhere'), join(out, 'dangling'));
    const r = cli('import', ['--from', out, '--checkpoint', join(dir, 'linked.ckpt')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sequences of up to 32 bytes/);
  });
});
