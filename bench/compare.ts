/**
 * npm run bench:compare -- A.json B.json
 * Two bench results (from `npm run bench` or the bench page, any machine) side by side: every figure both have,
 * B / A, and how many times better B is. Each file is checked against the schema first.
 */
import { readFileSync } from 'node:fs';
import { compareResults, formatComparison } from '../tools/bench-report/compare.js';
import { validateBenchResult } from '../tools/bench-suite/validate.js';

const files = process.argv.slice(2);
if (files.length !== 2) {
  console.error(`bench:compare: expected two result files (A.json B.json), but got ${files.length}: ${files.join(' ') || 'none'}.`);
  process.exit(2);
}
const [a, b] = files.map((file) => {
  try {
    return validateBenchResult(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    console.error(`bench:compare: ${file}: ${(e as Error).message}`);
    process.exit(2);
  }
});
process.stdout.write(formatComparison(compareResults(a!, b!)));
