import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from 'deepseek-moe-tfjs/train';

const root = new URL('../../', import.meta.url).pathname;
const train = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'cli/train.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('npm run train', () => {
  it('trains, prints loads, a sample and the specialisation report, and resumes from its checkpoint', () => {
    const checkpoint = join(mkdtempSync(join(tmpdir(), 'train-')), 'tiny.ckpt');
    const common = ['--preset', 'tiny', '--batch-size', '2', '--eval-every', '2', '--backend', 'wasm', '--checkpoint', checkpoint, '--sample-tokens', '8'];
    const first = train(...common, '--steps', '3');
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/tiny on wasm: .*M parameters, .*M activated per token/);
    expect(first.stdout).toMatch(/step 2: validation loss \d\.\d{3}/);
    expect(first.stdout).toMatch(/block 1 +[\d. ]+/); // the per-expert load table
    expect(first.stdout).toMatch(/sample \(temperature 0.8, top-40\)/);
    expect(first.stdout).toMatch(/expert specialisation[\s\S]*arithmetic/);
    expect(readCheckpoint(new Uint8Array(readFileSync(checkpoint))).header.step).toBe(3);
    const second = train(...common, '--steps', '5', '--resume');
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/resuming from .* at step 3/);
    expect(readCheckpoint(new Uint8Array(readFileSync(checkpoint))).header.step).toBe(5);
  });

  it.each([
    [['--steps', 'ten'], /expected --steps to be an integer >= 1, but got 'ten'/],
    [['--preset', 'huge'], /expected --preset to be one of tiny, small, but got 'huge'/],
    [['--dense-twin', 'half'], /expected --dense-twin to be one of activated, total, but got 'half'/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--data', '/no/such/file.txt'], /--data: cannot read '\/no\/such\/file.txt' \(ENOENT\)/],
  ])('%j: usage and a clear error, exit code 2', (args, message) => {
    const r = train(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^Usage: npm run train/);
    expect(r.stderr).toMatch(message);
  });
});
