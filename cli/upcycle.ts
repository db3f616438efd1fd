/**
 * npm run upcycle -- --checkpoint DENSE --out MOE [--granularity m] [--routed-experts N] [--top-k K]
 *   [--shared-experts S] [--route-scale X] [--seed N] [--force]
 * Grows a dense checkpoint (npm run train -- --dense-twin upcycle) into a DeepSeekMoE one (train/upcycle.ts):
 * each dense FFN becomes shared and routed experts, slices of its hidden units (m > 1) or copies of it (m = 1),
 * and says whether the first forward equals the dense model's. The input is only read; --out is checked before
 * any work, written atomically, and never the input (an existing checkpoint only with --force).
 */
import { countModelParams } from 'deepseek-moe-tfjs/config';
import { upcycle, type UpcycleConfigInput } from 'deepseek-moe-tfjs/train';
import { checkCheckpointOutput, isSameFile, readInputFile, writeFileAtomic } from '../tools/cli-files.js';
import { cliArgs } from './args.js';

const usage = `Usage: npm run upcycle -- --checkpoint DENSE --out MOE [options]
  --checkpoint FILE      the dense model (npm run train -- --dense-twin upcycle), only read
  --out FILE             the MoE checkpoint to write
  --granularity m        slices of the dense FFN's hidden units (1: copies of the whole FFN); default: its width
                         over the MoE's expert width
  --routed-experts N     routed experts (default: the dense model's own moe settings)
  --top-k K              routed experts per token
  --shared-experts S     slices that become the always-on shared experts
  --route-scale X        the routed gates' scale
  --seed N               seeds the router (default: the dense model's seed)
  --force                replace --out if it is a checkpoint (a file of any other kind is never replaced)
  --help                 this text`;

const args = cliArgs(usage, {
  checkpoint: { type: 'string' }, out: { type: 'string' }, granularity: { type: 'string' },
  'routed-experts': { type: 'string' }, 'top-k': { type: 'string' }, 'shared-experts': { type: 'string' },
  'route-scale': { type: 'string' }, seed: { type: 'string' }, force: { type: 'boolean' },
});
const fail: (message: string) => never = args.fail;
const input = args.required('checkpoint');
const out = args.required('out');
const optional = (flag: string, min: number) =>
  (args.values[flag] === undefined ? undefined : args.integer(flag, 0, min));
const granularity = optional('granularity', 1);
const moe = {
  nRoutedExperts: optional('routed-experts', 1), topK: optional('top-k', 1),
  nSharedExperts: optional('shared-experts', 0),
};
let routeScale: number | undefined;
if (args.values['route-scale'] !== undefined) {
  routeScale = Number(args.values['route-scale']);
  if (!(routeScale > 0) || !Number.isFinite(routeScale)) {
    fail(`expected --route-scale to be a positive number, but got '${String(args.values['route-scale'])}'.`);
  }
}
const seed = optional('seed', 0);
const settings: UpcycleConfigInput = {
  moe: Object.fromEntries(Object.entries({ ...moe, routeScale }).filter(([, v]) => v !== undefined)),
  ...(granularity === undefined ? {} : { granularity }), ...(seed === undefined ? {} : { seed }),
};

try {
  if (isSameFile(out, input)) {
    throw new Error(`--out: '${out}' is the input --checkpoint; write the MoE to another file (the dense one is ` +
      'kept).');
  }
  checkCheckpointOutput(out, '--out', args.values.force === true, 'choose another --out');
  const bytes = readInputFile(input, '--checkpoint');
  let grown: ReturnType<typeof upcycle>;
  try {
    grown = upcycle(bytes, settings);
  } catch (e) {
    const message = (e as Error).message;
    throw new Error(message.startsWith('upcycle:') ? message : `--checkpoint: ${message}`);
  }
  writeFileAtomic(out, grown.checkpoint);
  const { plan } = grown;
  const c = plan.modelConfig.moeConfig;
  const p = countModelParams(grown.modelConfig);
  const m = (n: number) => `${(n / 1e6).toFixed(2)}M`;
  console.log(`${out}: upcycled from ${input} (step ${grown.step}): ` +
    `${c.nRoutedExperts} routed experts (${plan.copies} copies of ${plan.routedSlices} slices of width ` +
    `${plan.sliceWidth}) + ${c.nSharedExperts} shared, top-${c.topK}; ${m(p.total)} parameters, ${m(p.activated)} ` +
    'activated');
  console.log(`first forward equals the dense model's: ${plan.exact ? 'yes' : `no (${plan.why})`}`);
  console.log(`train on: npm run train -- --resume --checkpoint ${out} --steps N (AdamW starts fresh; the schedule ` +
    `goes on from step ${grown.step})`);
} catch (e) {
  fail((e as Error).message);
}
