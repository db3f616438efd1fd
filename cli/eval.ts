/**
 * npm run eval -- --checkpoint FILE [--data TEXTFILE] [--seq-len N] [--batch-size N] [--backend NAME] [--json]
 * The mean negative log-likelihood, in nats per predicted byte, of a text: consecutive windows of --seq-len bytes,
 * each predicting its bytes after the first. Without --data, the bundled corpus's validation tails, per domain.
 * With --json the last line is {"bytes": N, "nll": X, ...}.
 */
import { basename } from 'node:path';
import { backendOrder, initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { evaluateText, type TextScore } from 'deepseek-moe-tfjs/model';
import { TextDataset, loadModel, readModelCheckpoint } from 'deepseek-moe-tfjs/train';
import { readInputFile } from '../tools/cli-files.js';
import { bundledCorpus } from '../tools/corpus.js';
import { cliArgs } from './args.js';

const usage = `Usage: npm run eval -- --checkpoint FILE [options]
  --checkpoint FILE   the model to score (npm run train, npm run import, or the lab's download)
  --data FILE         a file scored as its bytes (default: the bundled corpus's validation tails, per domain)
  --seq-len N         window length in bytes (default: the model's maxSeqLen)
  --batch-size N      windows per forward pass (default 8)
  --backend NAME      ${backendOrder.node.join(', ')}; default: the best available
  --json              end with one JSON line of the results
  --help              this text`;

const args = cliArgs(usage, {
  checkpoint: { type: 'string' }, data: { type: 'string' }, 'seq-len': { type: 'string' },
  'batch-size': { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' },
});
const fail: (message: string) => never = args.fail;
const checkpointPath = args.required('checkpoint');
const backendChoice = args.choice('backend', backendOrder.node);
const batchSize = args.integer('batch-size', 8);

let bytes: Uint8Array;
let header: ReturnType<typeof readModelCheckpoint>['header'];
try {
  bytes = readInputFile(checkpointPath, '--checkpoint');
  header = readModelCheckpoint(bytes).header;
} catch (e) {
  fail(`--checkpoint: ${(e as Error).message.replace(/^--checkpoint: /, '')}`);
}
const seqLen = args.integer('seq-len', header.modelConfig.maxSeqLen, 2);
const { maxSeqLen } = header.modelConfig;
if (seqLen > maxSeqLen) fail(`expected --seq-len to be at most the model's maxSeqLen (${maxSeqLen}), but got ${seqLen}.`);

let texts: { domain: string; bytes: Uint8Array }[];
try {
  if (typeof args.values.data === 'string') {
    const path = args.values.data;
    const data = readInputFile(path, '--data');
    if (data.length < 2) fail(`expected --data to hold at least 2 bytes, but '${path}' holds ${data.length}.`);
    texts = [{ domain: basename(path), bytes: data }];
  } else {
    texts = new TextDataset(bundledCorpus(), { seqLen }).validationTexts;
  }
} catch (e) {
  fail((e as Error).message);
}

const backend = await initBackend(backendChoice as BackendName | undefined);
const model = loadModel(bytes);
const scores: Record<string, TextScore> = {};
for (const t of texts) scores[t.domain] = await evaluateText(model.view, model.config, t.bytes, { seqLen, batchSize });
model.dispose();

const all = Object.values(scores);
const predicted = all.reduce((n, s) => n + s.predicted, 0);
const nll = all.reduce((n, s) => n + s.nll * s.predicted, 0) / predicted;
if (!Number.isFinite(nll)) {
  console.error(`eval: the model's scores are not finite (${nll}); its weights are finite, so the forward pass ` +
    'overflowed: score it on another backend, or resume from an earlier checkpoint.');
  process.exit(1);
}
const sum = (field: 'bytes' | 'windows') => all.reduce((n, s) => n + s[field], 0);
const total = { bytes: sum('bytes'), predicted, windows: sum('windows'), nll };
for (const [domain, s] of Object.entries(scores)) {
  const bits = (s.nll / Math.LN2).toFixed(4);
  console.log(`${domain}: ${s.nll.toFixed(4)} nats/byte (${bits} bits) over ${s.predicted} predicted bytes`);
}
if (all.length > 1) console.log(`all: ${nll.toFixed(4)} nats/byte over ${predicted} predicted bytes`);
console.log(`(${checkpointPath}, step ${header.step}, ${backend}, windows of ${seqLen} bytes)`);
if (args.values.json) {
  const domains = all.length > 1 ? scores : undefined;
  console.log(JSON.stringify({ ...total, seqLen, step: header.step, backend, domains }));
}
