/**
 * The one config validator behind every config kind (layer, model, trainer, the playground's classifier): each
 * check throws `<scope>: expected <field> to be <what>, but got <value>.` naming the field, before anything is
 * built. TF.js-free.
 */

/** A value as an error message shows it: strings quoted, objects as JSON, a missing field as 'nothing'. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Bounds of ConfigChecker.number. */
export interface NumberRange {
  min?: number;
  max?: number;
  /** The bounds are excluded. */
  minOpen?: boolean;
  maxOpen?: boolean;
}

/** Checks for one config kind; every failure throws `<scope>: expected ..., but got ....`. */
export class ConfigChecker {
  constructor(readonly scope: string) {}

  fail(message: string): never {
    throw new Error(`${this.scope}: ${message}`);
  }

  /** A plain object whose fields are all among `known` (`ignored` fields pass unchecked). */
  fields(input: unknown, known: readonly string[], ignored: readonly string[] = []): asserts input is Record<string, unknown> {
    if (input == null || typeof input !== 'object' || Array.isArray(input)) this.fail(`expected a config object, but got ${show(input)}.`);
    for (const key of Object.keys(input)) {
      if (!known.includes(key) && !ignored.includes(key)) this.fail(`unknown field '${key}'; known fields are ${known.join(', ')}.`);
    }
  }

  /** An integer from min (and to max): "a positive integer", "a non-negative integer" or "an integer >= min". */
  int(name: string, v: unknown, min: number, max = Infinity): asserts v is number {
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return;
    const what = max !== Infinity ? `an integer in [${min}, ${max}]`
      : min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer >= ${min}`;
    this.fail(`expected ${name} to be ${what}, but got ${show(v)}.`);
  }

  /** A finite number in a range: "a finite number >= 0", "> 0", or "a number in [lo, hi]". */
  number(name: string, v: unknown, range: NumberRange = {}): asserts v is number {
    const { min = -Infinity, max = Infinity, minOpen = false, maxOpen = false } = range;
    const ok = typeof v === 'number' && Number.isFinite(v) && (minOpen ? v > min : v >= min) && (maxOpen ? v < max : v <= max);
    if (ok) return;
    const what = max === Infinity
      ? min === -Infinity ? 'a finite number' : `a finite number ${minOpen ? '>' : '>='} ${min}`
      : `a number in ${minOpen ? '(' : '['}${min}, ${max}${maxOpen ? ')' : ']'}`;
    this.fail(`expected ${name} to be ${what}, but got ${show(v)}.`);
  }

  oneOf<T extends string>(name: string, v: unknown, options: readonly T[]): asserts v is T {
    if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) {
      this.fail(`expected ${name} to be one of ${options.map(show).join(', ')}, but got ${show(v)}.`);
    }
  }

  bool(name: string, v: unknown): asserts v is boolean {
    if (typeof v !== 'boolean') this.fail(`expected ${name} to be a boolean, but got ${show(v)}.`);
  }

  /** A relation between fields: `message` says what was expected and what came. */
  require(ok: boolean, message: string): void {
    if (!ok) this.fail(message);
  }
}

/** The most numbers one weight may hold (1 GiB of float32), and all of a model's or layer's weights together. */
export const maxWeightNumbers = 2 ** 28;
export const maxTotalNumbers = 2 ** 29;

/**
 * Refuses weights too large to allocate, before any is made, with the config's scope: a config can be valid
 * field by field (dModel 2^31 is an integer) and still ask for more memory than any backend has.
 */
export function checkWeightSizes(scope: string, specs: { name: string; shape: number[] }[]): void {
  let total = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (n > maxWeightNumbers) {
      throw new Error(`${scope}: expected every weight to hold at most ${maxWeightNumbers} numbers (1 GiB of ` +
        `float32), but '${s.name}' [${s.shape}] would hold ${n}.`);
    }
    total += n;
  }
  if (total > maxTotalNumbers) {
    throw new Error(`${scope}: expected at most ${maxTotalNumbers} numbers in all weights (2 GiB of float32), but ` +
      `the config asks for ${total}.`);
  }
}
