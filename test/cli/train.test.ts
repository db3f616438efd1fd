import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from 'deepseek-moe-tfjs/train';

const root = new URL('../../', import.meta.url).pathname;
const train = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'cli/train.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('npm run train', () => {
  it('trains, prints loads, a sample and the specialisation report, and resumes from its checkpoint', () => {
    const checkpoint = join(mkdtempSync(join(tmpdir(), 'train-')), 'tiny.ckpt');
    const common = [
      '--preset', 'tiny', '--batch-size', '2', '--eval-every', '2', '--backend', 'wasm', '--checkpoint', checkpoint,
      '--sample-tokens', '8',
    ];
    const first = train(...common, '--steps', '3');
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/tiny on wasm: .*M parameters, .*M activated per token/);
    expect(first.stdout).toMatch(/step 2: validation loss \d\.\d{3}/);
    expect(first.stdout).toMatch(/block 1 +[\d. ]+/); // the per-expert load table
    expect(first.stdout).toMatch(/sample \(temperature 0.8, top-40\)/);
    expect(first.stdout).toMatch(/expert specialisation[\s\S]*arithmetic/);
    expect(readCheckpoint(new Uint8Array(readFileSync(checkpoint))).header.step).toBe(3);
    // The model and settings come from the checkpoint: only the new end is given.
    const second = train('--resume', '--checkpoint', checkpoint, '--steps', '5', '--backend', 'wasm',
      '--sample-tokens', '8');
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^tiny.ckpt on wasm/m);
    expect(second.stdout).toMatch(/resuming from .* at step 3 of 5; changed from the checkpoint by flags: steps 3 -> 5$/m);
    expect(readCheckpoint(new Uint8Array(readFileSync(checkpoint))).header.step).toBe(5);
  });

  it("takes the reference stacks' options: MTP, accumulation, global-batch balance, drops by affinity, " +
    'a gated shared expert', () => {
    const checkpoint = join(mkdtempSync(join(tmpdir(), 'train-')), 'options.ckpt');
    const r = train('--preset', 'tiny', '--batch-size', '4', '--grad-accum', '2', '--steps', '2', '--eval-every', '2',
      '--backend', 'wasm', '--checkpoint', checkpoint, '--sample-tokens', '8', '--mtp-depth', '1', '--alpha1', '0.01',
      '--balance-scope', 'globalBatch', '--bias-update', 'signCentered', '--dispatch', 'capacity',
      '--drop-policy', 'probs', '--shared-expert-gate');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 MTP module\(s\), 0\.\d\dM parameters apart/);
    expect(r.stdout).toMatch(
      /step 2: validation loss \d\.\d{3} .*; MaxVio_global block 1 \d\.\d{3}, block 2 \d\.\d{3}; MTP loss \d\.\d{3}/,
    );
    expect(r.stdout).toMatch(/MaxVio_batch/);
    expect(r.stdout).toMatch(/drafts accepted \d+ of \d+ \(\d+\.\d%\), \d\.\d\d tokens per main-model step/);
    const { modelConfig, trainConfig } = readCheckpoint(new Uint8Array(readFileSync(checkpoint))).header;
    expect(modelConfig.mtpDepth).toBe(1);
    expect(modelConfig.moe).toMatchObject({
      alpha1: 0.01, balanceScope: 'globalBatch', biasUpdate: 'signCentered', dispatch: 'capacity', dropPolicy: 'probs',
      sharedExpertGate: true,
    });
    expect(trainConfig.gradAccumSteps).toBe(2);
  });

  it.each([
    [['--grad-accum', '3'], /expected gradAccumSteps to divide batchSize \(16\), but got 3/],
    [['--drop-policy', 'random'], /expected --drop-policy to be one of position, probs, but got 'random'/],
    [['--steps', 'ten'], /expected --steps to be an integer >= 1, but got 'ten'/],
    [['--preset', 'huge'], /expected --preset to be one of tiny, small, but got 'huge'/],
    [['--dense-twin', 'half'], /expected --dense-twin to be one of activated, total, upcycle, but got 'half'/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--data', '/no/such/file.txt'], /--data: expected a file at '\/no\/such\/file.txt', but there is none/],
  ])('%j: usage and a clear error, exit code 2', (args, message) => {
    const r = train(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^Usage: npm run train/);
    expect(r.stderr).toMatch(message);
  });
});
