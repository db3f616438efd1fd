/**
 * npm run route: the same trace as the library function, printed per character with a legend; plain text when
 * stdout is not a terminal, ANSI colours from the formatter; bad flags refused by name.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, denseTwin, preset, traceRouting, type RoutingTrace } from 'deepseek-moe-tfjs/model';
import { loadModel, TextDataset, Trainer } from 'deepseek-moe-tfjs/train';
import { colouredText, legendLines, routeLines } from '../../cli/route-format.js';
import { cli, usageError } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-route-'));
const text = 'The cat 猫 sat.\n12+34=46';
let checkpoint: Uint8Array;

beforeAll(async () => {
  await initBackend('cpu');
  for (const [name, config] of [['tiny', preset('tiny')], ['dense', denseTwin(preset('tiny'), 'activated')]] as const) {
    const model = new DeepSeekLM(config);
    const trainer = new Trainer(model, new TextDataset({ a: 'abcdefgh'.repeat(100) }, { seqLen: 16 }), { seqLen: 16 });
    const bytes = await trainer.checkpoint();
    if (name === 'tiny') checkpoint = bytes;
    writeFileSync(join(dir, `${name}.ckpt`), bytes);
    trainer.dispose();
    model.dispose();
  }
}, 120_000);

describe('npm run route', () => {
  it('prints the library trace per character and a legend, plain when stdout is not a terminal', async () => {
    const r = cli('route', ['--checkpoint', 'tiny.ckpt', '--text', text, '--block', '1', '--backend', 'cpu', '--json'],
      dir);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const printed = JSON.parse(lines.at(-1)!) as RoutingTrace;
    const model = loadModel(checkpoint);
    const trace = await traceRouting(model, text);
    model.dispose();
    expect(printed.bytes).toEqual(trace.bytes);
    printed.blocks.forEach((b, i) => {
      expect(b.experts).toEqual(trace.blocks[i]!.experts);
      b.gates.flat().forEach((g, j) => expect(g).toBeCloseTo(trace.blocks[i]!.gates.flat()[j]!, 5));
    });
    const block = trace.blocks.find((b) => b.block === 1)!;
    expect(r.stdout).not.toMatch(/\x1b\[/); // not a terminal: no colour codes
    expect(lines[0]).toMatch(new RegExp(`block 1 of 1; ${Buffer.byteLength(text)} bytes, top-\\d+ of \\d+ routed`));
    // One line per character; '猫' lists its three bytes.
    const catLine = lines.find((l) => l.startsWith('猫'))!;
    expect(catLine.split(' | ')).toHaveLength(3);
    expect(catLine).toContain(`e${block.experts[8]![0]} ${block.gates[8]![0]!.toFixed(3)}`);
    for (const l of legendLines(trace, block, false)) expect(r.stdout).toContain(l);
  });

  it('colours each character by its top expert on a terminal', async () => {
    const model = loadModel(checkpoint);
    const trace = await traceRouting(model, 'ab\nc');
    model.dispose();
    const block = trace.blocks[0]!;
    const coloured = colouredText(trace, block);
    expect(coloured.match(/\x1b\[48;2;\d+;\d+;\d+m/g)).toHaveLength(3); // a, b, c; the line break stays plain
    expect(coloured).toContain('\x1b[0m\n');
    expect(routeLines(trace, block, true)[0]).toMatch(/^\x1b\[48;2/);
    expect(legendLines(trace, block, true).every((l) => l.startsWith('\x1b[48;2'))).toBe(true);
  });

  it('refuses a dense model, a block that is not MoE, both or neither text flag, by name', () => {
    const cases: [string[], RegExp][] = [
      [['--checkpoint', 'dense.ckpt', '--text', 'x'], /expected a model with MoE blocks, but 'dense.ckpt' is dense/],
      [['--checkpoint', 'tiny.ckpt', '--text', 'x', '--block', '0'], /expected --block to be a MoE block \(1\), but got 0/],
      [['--checkpoint', 'tiny.ckpt'], /expected --text or --file, but got neither/],
      [['--checkpoint', 'tiny.ckpt', '--text', 'x', '--file', 'a.txt'], /expected one of --text and --file, but got both/],
      [['--checkpoint', 'tiny.ckpt', '--text', ''], /expected a non-empty text/],
    ];
    for (const [args, message] of cases) {
      const r = cli('route', [...args, '--backend', 'cpu'], dir);
      expect(r.status, r.stdout).toBe(2);
      expect(usageError(r)).toMatch(message);
    }
  });
});
