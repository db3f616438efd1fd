/** The routing trace as terminal text: the text coloured by each character's top expert, its routes, a legend. */
import {
  characterExpert, expertColour, expertLegend, type BlockRouting, type RoutingTrace,
} from 'deepseek-moe-tfjs/config';

const reset = '\x1b[0m';
const background = (e: number) => {
  const [r, g, b] = expertColour(e);
  return `\x1b[48;2;${r};${g};${b}m\x1b[38;2;0;0;0m`;
};
/** Terminal columns of a character: East Asian wide ones and emoji take two. */
const columns = (ch: string) =>
  (/[\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]|\p{Extended_Pictographic}/u.test(ch) ? 2 : 1);
const shown = (ch: string) => (ch === '\n' ? '\\n' : ch === '\t' ? '\\t' : ch === ' ' ? '␠' : ch);

/** The text with each character on its top expert's colour (ANSI truecolor); line breaks kept. */
export function colouredText(trace: RoutingTrace, block: BlockRouting): string {
  return trace.characters.map((span) => (span.text === '\n'
    ? `${reset}\n`
    : `${background(characterExpert(block, span))}${span.text}${reset}`)).join('');
}

/** One line per character: its bytes and, per byte, the K experts with their gates (dropped marked), shared share. */
export function routeLines(trace: RoutingTrace, block: BlockRouting, ansi: boolean): string[] {
  return trace.characters.map((span) => {
    const bytes = [];
    for (let b = span.start; b < span.end; b++) {
      const routes = block.experts[b]!.map((e, k) =>
        `e${e} ${block.gates[b]!.at(k)!.toFixed(3)}${block.dropped[b]![k] ? ' (dropped)' : ''}`);
      const shared = block.sharedShare ? `, shared ${(100 * block.sharedShare[b]!).toFixed(0)}%` : '';
      bytes.push(`${trace.bytes[b]!.toString(16).padStart(2, '0')}: ${routes.join(', ')}${shared}`);
    }
    const label = shown(span.text);
    const pad = ' '.repeat(Math.max(0, 3 - (label.length > 1 ? label.length : columns(label))));
    const coloured = ansi ? `${background(characterExpert(block, span))}${label}${reset}` : label;
    return `${coloured}${pad} ${bytes.join(' | ')}`;
  });
}

/** The legend: per expert that tops some byte, its share of the bytes and what they are. */
export function legendLines(trace: RoutingTrace, block: BlockRouting, ansi: boolean): string[] {
  const swatch = (e: number) => (ansi ? `${background(e)}  ${reset} ` : '');
  return expertLegend(trace, block).map((entry) => swatch(entry.expert) + entry.description);
}
