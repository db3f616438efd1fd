/**
 * The lab's routing view: a text coloured by each character's top expert in one MoE block, a tooltip per character
 * with its bytes' K experts and gates, and a legend of what each expert took. The routes come from the worker
 * (traceRouting on the lab's model); this file only draws them. Keyboard: one tab stop, arrow keys move.
 */
import {
  characterExpert, expertColour, expertLegend, type BlockRouting, type RoutingTrace,
} from 'deepseek-moe-tfjs/config';
import { $ } from './common/page.js';

const css = (e: number) => `rgb(${expertColour(e).join(',')})`;
const named = (ch: string) => (ch === ' ' ? 'space' : ch === '\n' ? 'line break' : ch === '\t' ? 'tab' : ch);
const hex = (b: number) => b.toString(16).padStart(2, '0');

/** A byte's routes in words: "expert 2 0.61, expert 5 0.39 (dropped); shared 29%". */
function byteRoutes(block: BlockRouting, b: number): string {
  const routes = block.experts[b]!.map((e, k) =>
    `expert ${e} ${block.gates[b]![k]!.toFixed(2)}${block.dropped[b]![k] ? ' (dropped)' : ''}`);
  const shared = block.sharedShare ? `; shared ${Math.round(100 * block.sharedShare[b]!)}%` : '';
  return routes.join(', ') + shared;
}

export class RoutingView {
  trace: RoutingTrace | null = null;
  block = -1;
  private active = 0;

  /** `route` asks the worker; `shown` hears what is drawn (the lab mirrors it into its demoState). */
  constructor(
    private readonly route: (text: string) => Promise<RoutingTrace>,
    private readonly shown: (trace: RoutingTrace, block: number) => void,
  ) {
    $('route-block').addEventListener('change', () => {
      this.block = Number($<HTMLSelectElement>('route-block').value);
      this.render();
    });
    const view = $('route-view');
    view.addEventListener('keydown', (e) => this.onKey(e));
    view.addEventListener('focusin', (e) => {
      const target = e.target as HTMLElement;
      if (target.dataset.index !== undefined) this.makeActive(Number(target.dataset.index));
      this.showTip(target);
    });
    view.addEventListener('mouseover', (e) => this.showTip(e.target as HTMLElement));
    view.addEventListener('focusout', () => this.hideTip());
    view.addEventListener('mouseleave', () => {
      if (!view.contains(document.activeElement)) this.hideTip();
    });
  }

  /** Routes `text` through the lab's model and draws it. */
  async show(text: string): Promise<void> {
    const note = $('route-note');
    note.textContent = 'routing…';
    note.classList.remove('error');
    try {
      const trace = await this.route(text);
      this.trace = trace;
      const blocks = trace.blocks.map((b) => b.block);
      if (!blocks.includes(this.block)) this.block = blocks[0] ?? -1;
      $('route-block').replaceChildren(...trace.blocks.map((b) => Object.assign(document.createElement('option'), {
        value: String(b.block), textContent: `block ${b.block}`, selected: b.block === this.block,
      })));
      this.active = 0;
      note.textContent = `${trace.bytes.length} bytes, top-${trace.topK} of ${trace.nRoutedExperts} routed experts` +
        (trace.nSharedExperts ? ` + ${trace.nSharedExperts} shared` : '') + '; colour: the expert with the largest ' +
        'gate' + (trace.context ? `; each byte after the first window saw at least ${trace.context} bytes before it` : '') +
        '.';
      this.render();
    } catch (e) {
      this.trace = null; // what is on screen would be the previous model's or text's
      $('route-view').replaceChildren();
      $('route-legend').replaceChildren();
      this.hideTip();
      note.textContent = `could not route: ${(e as Error).message}`;
      note.classList.add('error');
    }
  }

  private get routing(): BlockRouting | undefined {
    return this.trace?.blocks.find((b) => b.block === this.block);
  }

  private render(): void {
    const trace = this.trace;
    const block = this.routing;
    if (!trace || !block) return;
    this.shown(trace, this.block);
    const spans = trace.characters.map((c, i) => {
      const expert = characterExpert(block, c);
      const span = document.createElement('span');
      span.textContent = c.text;
      span.dataset.index = String(i);
      span.dataset.expert = String(expert);
      span.style.background = css(expert);
      span.tabIndex = i === this.active ? 0 : -1;
      span.setAttribute('role', 'option');
      span.setAttribute('aria-selected', String(i === this.active));
      span.setAttribute('aria-label', `${named(c.text)}: ${expert < 0 ? 'dropped' : `expert ${expert}`}`);
      return span;
    });
    $('route-view').replaceChildren(...spans);
    $('route-legend').replaceChildren(...expertLegend(trace, block).map((entry) => {
      const li = document.createElement('li');
      const swatch = document.createElement('i');
      swatch.style.background = css(entry.expert);
      li.append(swatch, entry.description);
      return li;
    }));
  }

  /** Arrow keys, Home and End move between characters (one tab stop for the whole text). */
  private onKey(e: KeyboardEvent): void {
    if (e.key === 'Escape') {
      this.hideTip();
      return;
    }
    const n = this.trace?.characters.length ?? 0;
    const moves: Record<string, number> = {
      ArrowRight: this.active + 1, ArrowLeft: this.active - 1, Home: 0, End: n - 1,
    };
    if (!(e.key in moves) || n === 0) return;
    e.preventDefault();
    this.focus(Math.max(0, Math.min(n - 1, moves[e.key]!)));
  }

  private focus(i: number): void {
    this.makeActive(i);
    $('route-view').querySelector<HTMLElement>(`[data-index="${i}"]`)?.focus();
  }

  /** Character i becomes the text's one tab stop (clicked, tapped or moved to). */
  private makeActive(i: number): void {
    const view = $('route-view');
    const before = view.querySelector(`[data-index="${this.active}"]`);
    before?.setAttribute('tabindex', '-1');
    before?.setAttribute('aria-selected', 'false');
    this.active = i;
    const now = view.querySelector(`[data-index="${i}"]`);
    now?.setAttribute('tabindex', '0');
    now?.setAttribute('aria-selected', 'true');
  }

  /** The tooltip of a character: its bytes, and each byte's experts and gates. */
  private showTip(target: HTMLElement): void {
    const trace = this.trace;
    const block = this.routing;
    if (!trace || !block || target.dataset.index === undefined) return;
    const c = trace.characters[Number(target.dataset.index)]!;
    const tip = $('route-tip');
    const lines = [];
    for (let b = c.start; b < c.end; b++) lines.push(`byte ${hex(trace.bytes[b]!)}: ${byteRoutes(block, b)}`);
    const n = c.end - c.start;
    tip.textContent = `${named(c.text)} (${n} byte${n > 1 ? 's' : ''})\n${lines.join('\n')}`;
    const box = target.getBoundingClientRect();
    const parent = $('route-view').getBoundingClientRect();
    tip.style.left = `${Math.max(0, Math.min(box.left - parent.left, parent.width - 340))}px`;
    tip.style.top = `${box.bottom - parent.top + 4}px`;
    tip.hidden = false;
    document.querySelectorAll('#route-view [aria-describedby]').forEach((el) => el.removeAttribute('aria-describedby'));
    target.setAttribute('aria-describedby', 'route-tip');
  }

  private hideTip(): void {
    $('route-tip').hidden = true;
  }
}
