/**
 * npm run upcycle: a dense run trained by the CLI grows into the preset's MoE, exactly at step 0, and trains on
 * with --resume; the input is never written, --out never the input, and refusals change nothing on disk.
 */
import { existsSync, linkSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from 'deepseek-moe-tfjs/config';
import { cli, fingerprint, usageError } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-upcycle-'));
const run = (name: 'train' | 'upcycle', ...args: string[]) => cli(name, args, dir);

describe('npm run upcycle', () => {
  it('grows a dense run into the preset\'s MoE, exact at step 0, and train --resume goes on', () => {
    const trained = run('train', '--preset', 'tiny', '--dense-twin', 'upcycle', '--steps', '2', '--batch-size', '2',
      '--seq-len', '16', '--eval-every', '2', '--sample-tokens', '0', '--backend', 'cpu', '--checkpoint', 'dense.ckpt');
    expect(trained.status, trained.stderr).toBe(0);
    const dense = readFileSync(join(dir, 'dense.ckpt'));
    const r = run('upcycle', '--checkpoint', 'dense.ckpt', '--out', 'moe.ckpt');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/moe\.ckpt: upcycled from dense\.ckpt \(step 2\): 8 routed experts \(4 copies of 2 slices of width 16\) \+ 1 shared, top-2/);
    expect(r.stdout).toContain("first forward equals the dense model's: yes");
    expect(readFileSync(join(dir, 'dense.ckpt'))).toEqual(dense); // only read
    const { header } = readCheckpoint(new Uint8Array(readFileSync(join(dir, 'moe.ckpt'))));
    expect(header).toMatchObject({ step: 2, optimizerStep: 0, upcycledFrom: { step: 2, granularity: 3, exact: true } });
    const resumed = run('train', '--resume', '--checkpoint', 'moe.ckpt', '--steps', '3', '--sample-tokens', '0',
      '--backend', 'cpu');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/upcycled from a dense model at step 2 \(granularity 3\); AdamW has taken 0 steps/);
    expect(readCheckpoint(new Uint8Array(readFileSync(join(dir, 'moe.ckpt')))).header)
      .toMatchObject({ step: 3, optimizerStep: 1, upcycledFrom: { step: 2 } });
    // Sparse upcycling of the same file: copies of the whole FFN.
    const copies = run('upcycle', '--checkpoint', 'dense.ckpt', '--out', 'copies.ckpt', '--granularity', '1',
      '--shared-experts', '0', '--routed-experts', '4', '--top-k', '1', '--route-scale', '1');
    expect(copies.status, copies.stderr).toBe(0);
    expect(copies.stdout).toMatch(/4 routed experts \(4 copies of 1 slices of width 48\) \+ 0 shared, top-1/);
  });

  it.each([
    ['--out is the input, even with --force', ['--checkpoint', 'dense.ckpt', '--out', './dense.ckpt', '--force'],
      /--out: '.\/dense.ckpt' is the input --checkpoint/],
    ['--out is a hard link to the input (or, on a case-insensitive disk, another spelling of it)',
      ['--checkpoint', 'dense.ckpt', '--out', 'same.ckpt', '--force'], /--out: 'same.ckpt' is the input --checkpoint/],
    ['an existing checkpoint without --force', ['--checkpoint', 'dense.ckpt', '--out', 'moe.ckpt'],
      /--out: 'moe.ckpt' exists; choose another --out, or --force/],
    ['a file that is not a checkpoint', ['--checkpoint', 'dense.ckpt', '--out', 'notes.txt', '--force'],
      /--out: 'notes.txt' exists and is not a checkpoint; it is never replaced/],
    ['a MoE model', ['--checkpoint', 'moe.ckpt', '--out', 'again.ckpt'],
      /upcycle: expected a dense model, but this checkpoint was already upcycled/],
    ['a granularity that does not divide the width', ['--checkpoint', 'dense.ckpt', '--out', 'x.ckpt', '--granularity', '5'],
      /upcycle: expected granularity to be a positive integer dividing the dense FFN width \(twinInterDim 48\), but got 5/],
    ['a route scale that is not positive', ['--checkpoint', 'dense.ckpt', '--out', 'x.ckpt', '--route-scale', '0'],
      /expected --route-scale to be a positive number, but got '0'/],
  ])('refuses %s; nothing changes', (_name, args, message) => {
    writeFileSync(join(dir, 'notes.txt'), 'my notes\n');
    if (!existsSync(join(dir, 'same.ckpt'))) linkSync(join(dir, 'dense.ckpt'), join(dir, 'same.ckpt'));
    const before = fingerprint(dir);
    const r = run('upcycle', ...args);
    expect(usageError(r)).toMatch(message);
    expect(fingerprint(dir)).toEqual(before);
  });
});
