/** The command lines' shared flag handling: parse strictly, print the usage with any error, exit 2 on bad input. */
import { parseArgs } from 'node:util';

type Flags = Record<string, { type: 'string' | 'boolean' }>;

/** Parses process.argv against `options` (plus --help); returns the values and checkers that exit on bad input. */
export function cliArgs(usage: string, options: Flags) {
  const fail = (message: string): never => {
    console.error(`${usage}\n\nerror: ${message}`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | undefined> = {};
  try {
    const all: Flags = { ...options, help: { type: 'boolean' } };
    ({ values } = parseArgs({ options: all, strict: true, allowPositionals: false }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const integer = (flag: string, fallback: number, min = 1, max = Infinity): number => {
    const raw = values[flag];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
      fail(`expected --${flag} to be an integer ${range}, but got '${String(raw)}'.`);
    }
    return n;
  };
  const choice = <T extends string>(flag: string, allowed: readonly T[]): T | undefined => {
    const raw = values[flag];
    if (raw === undefined) return undefined;
    if (!allowed.includes(raw as T)) {
      fail(`expected --${flag} to be one of ${allowed.join(', ')}, but got '${String(raw)}'.`);
    }
    return raw as T;
  };
  const required = (flag: string): string => {
    const raw = values[flag];
    if (typeof raw !== 'string' || raw === '') fail(`expected --${flag}, but it is missing.`);
    return raw as string;
  };
  return { values, fail, integer, choice, required };
}
