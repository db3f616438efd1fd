/**
 * npm run route -- --checkpoint FILE (--text "..." | --file TEXTFILE) [--block N] [--dispatch training] [--json]
 * Where the router sends each byte of a text: per character its top expert (coloured on a terminal), per byte the
 * K experts with their gates, and a legend of what each expert took. With --json the last line is the whole trace.
 */
import { backendOrder, initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { maxTraceBytes, traceRouting } from 'deepseek-moe-tfjs/model';
import { loadModel, readModelCheckpoint } from 'deepseek-moe-tfjs/train';
import { readInputFile } from '../tools/cli-files.js';
import { cliArgs } from './args.js';
import { colouredText, legendLines, routeLines } from './route-format.js';

const usage = `Usage: npm run route -- --checkpoint FILE (--text TEXT | --file FILE) [options]
  --checkpoint FILE   the model (npm run train, npm run import, or the lab's download)
  --text TEXT         the text to route (at most ${maxTraceBytes} UTF-8 bytes)
  --file FILE         or a UTF-8 file's text
  --block N           the MoE block to show (default: the first)
  --dispatch MODE     inference (default: dropless, as evaluation runs) or training (capacity drops, jitter)
  --backend NAME      ${backendOrder.node.join(', ')}; default: the best available
  --json              end with one JSON line: the trace of every block
  --help              this text`;

const args = cliArgs(usage, {
  checkpoint: { type: 'string' }, text: { type: 'string' }, file: { type: 'string' }, block: { type: 'string' },
  dispatch: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' },
});
const fail: (message: string) => never = args.fail;
const checkpointPath = args.required('checkpoint');
const backendChoice = args.choice('backend', backendOrder.node);
const dispatch = args.choice('dispatch', ['inference', 'training'] as const) ?? 'inference';

let text: string;
if (typeof args.values.text === 'string' && typeof args.values.file === 'string') {
  fail('expected one of --text and --file, but got both.');
}
if (typeof args.values.text === 'string') {
  text = args.values.text;
} else if (typeof args.values.file === 'string') {
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readInputFile(args.values.file, '--file'));
  } catch (e) {
    const notText = `expected --file to hold UTF-8 text, but '${args.values.file}' does not.`;
    fail(e instanceof TypeError ? notText : (e as Error).message);
  }
} else {
  fail('expected --text or --file, but got neither.');
}
const length = new TextEncoder().encode(text!).length;
if (length === 0) fail('expected a non-empty text, but got an empty one.');
if (length > maxTraceBytes) fail(`expected at most ${maxTraceBytes} UTF-8 bytes of text, but got ${length}.`);

let bytes: Uint8Array;
let header: ReturnType<typeof readModelCheckpoint>['header'];
let config: ReturnType<typeof readModelCheckpoint>['modelConfig'];
try {
  bytes = readInputFile(checkpointPath, '--checkpoint');
  ({ header, modelConfig: config } = readModelCheckpoint(bytes));
} catch (e) {
  fail(`--checkpoint: ${(e as Error).message.replace(/^--checkpoint: /, '')}`);
}
const { nLayers, nDenseLayers, ffn } = config!;
const moeBlocks = ffn === 'dense' ? [] : Array.from({ length: nLayers - nDenseLayers }, (_, i) => nDenseLayers + i);
if (moeBlocks.length === 0) fail(`--checkpoint: expected a model with MoE blocks, but '${checkpointPath}' is dense.`);
const block = args.integer('block', moeBlocks[0]!, 0);
if (!moeBlocks.includes(block)) {
  fail(`expected --block to be a MoE block (${moeBlocks.join(', ')}), but got ${block}.`);
}

const backend = await initBackend(backendChoice as BackendName | undefined);
const model = loadModel(bytes);
const trace = await traceRouting(model, text!, { dispatch });
model.dispose();

const ansi = process.stdout.isTTY === true && !args.values.json;
const routing = trace.blocks.find((b) => b.block === block)!;
const K = trace.topK;
console.log(`${checkpointPath}, step ${header.step}, ${backend}: block ${block} of ${moeBlocks.join(', ')}; ` +
  `${trace.bytes.length} bytes, top-${K} of ${trace.nRoutedExperts} routed experts` +
  `${trace.nSharedExperts > 0 ? ` + ${trace.nSharedExperts} shared` : ''}, ${dispatch} dispatch.`);
if (ansi) console.log(`\n${colouredText(trace, routing)}\n`);
console.log(routeLines(trace, routing, ansi).join('\n'));
console.log('\nTop experts of these bytes (the largest gate of each byte):');
console.log(legendLines(trace, routing, ansi).join('\n'));
if (args.values.json) console.log(JSON.stringify(trace));
