/** Plain-text tables for the CLI: per-expert load and the specialisation report. */
import type { BlockSpecialisation, LayerReport } from 'deepseek-moe-tfjs/train';

const pct = (x: number) => (100 * x).toFixed(1).padStart(5);

/** One row per MoE block: load per expert in %, MaxVio_batch (the step's max violation), dropped share. */
export function loadTable(layers: LayerReport[]): string {
  if (layers.length === 0) return '(no MoE blocks)';
  const E = layers[0]!.expertLoad.length;
  const head = `load %  ${Array.from({ length: E }, (_, e) => `e${e}`.padStart(5)).join('')}   MaxVio_batch  dropped`;
  const rows = layers.map((l) => `block ${l.block} ${l.expertLoad.map(pct).join('')}   ` +
    `${l.maxViolation.toFixed(2).padStart(12)}  ${pct(l.droppedFraction)}%`);
  return [head, ...rows].join('\n');
}

/** Per block, one row per domain: its share of assignments per expert in %, the top expert marked. */
export function specialisationTable(report: BlockSpecialisation[]): string {
  return report
    .map((b) => {
      const E = b.shares[0]?.length ?? 0;
      const width = Math.max(...b.domains.map((d) => d.length), 6);
      const head = `block ${b.block}`.padEnd(width) + Array.from({ length: E }, (_, e) => `e${e}`.padStart(6)).join('');
      const rows = b.shares.map((shares, i) => {
        const top = shares.indexOf(Math.max(...shares));
        return b.domains[i]!.padEnd(width) + shares.map((s, e) => `${pct(s)}${e === top ? '*' : ' '}`).join('');
      });
      return [head, ...rows].join('\n');
    })
    .join('\n\n');
}
