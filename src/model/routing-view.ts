/**
 * What a routing trace holds (routing-trace.ts makes one) and what views derive from it: a byte's top expert, the
 * text's UTF-8 characters as byte spans, and a per-expert legend in words. Plain arrays; no TF.js, so the lab page,
 * its worker and the CLI share it.
 */

/** One MoE block's routes over the traced bytes. */
export interface BlockRouting {
  /** The block's index in the model. */
  block: number;
  /** Per byte, its K routed experts in the router's order: [bytes][K]. */
  experts: number[][];
  /** Their gate weights as the output uses them (normalised, times routeScale): [bytes][K]. */
  gates: number[][];
  /** Whether capacity dropped each assignment (only with dispatch 'training' and capacity): [bytes][K]. */
  dropped: boolean[][];
  /** Per byte, the shared experts' share of the output norm, |shared| / (|shared| + |routed|); null without them. */
  sharedShare: number[] | null;
}

/** One UTF-8 character of the text: its bytes [start, end). */
export interface CharacterSpan {
  text: string;
  start: number;
  end: number;
}

/** Where every byte of a text went, block by block. */
export interface RoutingTrace {
  text: string;
  /** The UTF-8 bytes (the model's tokens). */
  bytes: number[];
  characters: CharacterSpan[];
  nRoutedExperts: number;
  topK: number;
  nSharedExperts: number;
  /** The dispatch it ran: 'inference' (dropless, as evaluation and generation) or 'training' (capacity, jitter). */
  dispatch: 'inference' | 'training';
  /** Every byte after the first window saw at least this many bytes before it (windows overlap by half). */
  context: number;
  blocks: BlockRouting[];
}

/** The byte spans of each UTF-8 character of `text` (a character is 1-4 bytes; a lone surrogate is U+FFFD, 3). */
export function characterSpans(text: string): CharacterSpan[] {
  const spans: CharacterSpan[] = [];
  let start = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const lone = code >= 0xd800 && code <= 0xdfff;
    const n = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 || lone ? 3 : 4;
    spans.push({ text: ch, start, end: start + n });
    start += n;
  }
  return spans;
}

/** The expert with the largest gate among a byte's K (the first on a tie); -1 when all K were dropped. */
export function topExpert(block: BlockRouting, byte: number): number {
  let best = -1;
  let bestGate = -Infinity;
  block.experts[byte]!.forEach((e, k) => {
    if (!block.dropped[byte]![k] && block.gates[byte]![k]! > bestGate) [best, bestGate] = [e, block.gates[byte]![k]!];
  });
  return best;
}

/** A character's top expert: its first byte's (the byte that starts it; the others are shown in its tooltip). */
export const characterExpert = (block: BlockRouting, span: CharacterSpan) => topExpert(block, span.start);

/** Rough kinds of characters a legend names. */
export function characterKind(ch: string): string {
  if (/\s/u.test(ch)) return 'spaces';
  if (/\p{Nd}/u.test(ch)) return 'digits';
  if (/\p{Script=Han}/u.test(ch)) return 'Chinese';
  if (/[A-Z]/.test(ch)) return 'capitals';
  if (/[a-z]/.test(ch)) return 'letters';
  if (/\p{L}/u.test(ch)) return 'other letters';
  return 'symbols';
}

/** One expert's line in a legend. */
export interface ExpertLegendEntry {
  expert: number;
  /** Share of the text's bytes whose top expert this is. */
  share: number;
  bytes: number;
  /** The kinds of characters it took, most first, with their share of its bytes. */
  kinds: { kind: string; share: number }[];
  /** Its most frequent characters, most first (up to 3). */
  top: string[];
  /** "expert 5: 31% of these bytes: mostly digits and '+'". */
  description: string;
}

const quote = (ch: string) => (ch === ' ' ? 'space' : ch === '\n' ? 'newline' : ch === '\t' ? 'tab' : `'${ch}'`);

/** Per expert that is some byte's top expert in `block`, what it took of the text, busiest first. */
export function expertLegend(trace: RoutingTrace, block: BlockRouting): ExpertLegendEntry[] {
  const byExpert = new Map<number, { bytes: number; kinds: Map<string, number>; chars: Map<string, number> }>();
  for (const span of trace.characters) {
    for (let b = span.start; b < span.end; b++) {
      const e = topExpert(block, b);
      const entry = byExpert.get(e) ?? { bytes: 0, kinds: new Map(), chars: new Map() };
      entry.bytes += 1;
      const kind = characterKind(span.text);
      entry.kinds.set(kind, (entry.kinds.get(kind) ?? 0) + 1);
      entry.chars.set(span.text, (entry.chars.get(span.text) ?? 0) + 1);
      byExpert.set(e, entry);
    }
  }
  const total = trace.bytes.length;
  const sorted = <K>(m: Map<K, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return [...byExpert.entries()].sort((a, b) => b[1].bytes - a[1].bytes || a[0] - b[0]).map(([expert, entry]) => {
    const kinds = sorted(entry.kinds).map(([kind, n]) => ({ kind, share: n / entry.bytes }));
    const top = sorted(entry.chars).slice(0, 3).map(([ch]) => ch);
    const share = entry.bytes / total;
    const main = kinds[0]!;
    const kindWords = main.share > 0.5 ? `mostly ${main.kind}` : kinds.slice(0, 2).map((k) => k.kind).join(' and ');
    const name = expert < 0 ? 'dropped' : `expert ${expert}`;
    return {
      expert, share, bytes: entry.bytes, kinds, top,
      description: `${name}: ${Math.round(100 * share)}% of these bytes: ${kindWords}, most often ` +
        `${top.map(quote).join(', ')}`,
    };
  });
}

/** ColorBrewer's Set3 without its grey: eleven light colours apart at a glance, for dark text. */
const set3: [number, number, number][] = [
  [141, 211, 199], [255, 255, 179], [190, 186, 218], [251, 128, 114], [128, 177, 211], [253, 180, 98],
  [179, 222, 105], [252, 205, 229], [188, 128, 189], [204, 235, 197], [255, 237, 111],
];

/**
 * A colour per expert, [r, g, b] 0-255, light enough for dark text: Set3 for the first eleven, then hues a golden
 * angle apart (64 experts still distinct). -1 (every assignment dropped) is grey.
 */
export function expertColour(expert: number): [number, number, number] {
  if (expert < 0) return [200, 200, 200];
  if (expert < set3.length) return set3[expert]!;
  const hue = (expert * 137.508) % 360;
  const lightness = expert % 2 === 0 ? 0.78 : 0.66;
  const a = 0.55 * Math.min(lightness, 1 - lightness);
  const channel = (n: number) => {
    const k = (n + hue / 30) % 12;
    return Math.round(255 * (lightness - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [channel(0), channel(8), channel(4)];
}
