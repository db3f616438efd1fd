/** Markdown tables and SVG charts of a claims result (schema.ts): what the bench writes and docs/claims.md shows. */
import type { ClaimResult, ClaimsResult, SeedResult, VariantResult } from './schema.js';
import { repeatN } from './repeats.js';
import { bootstrapInterval, pairedInterval, verdict } from './stats.js';
import { balancePhases, maxVioBatchPhase, pairedMeasure, pooledTeacherForced } from './summaries.js';

const paramCount = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`);
const f3 = (x: number) => x.toFixed(3);
const average = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The widest seed-to-seed spread of the final validation loss in a table: smaller differences are no difference. */
export function spread(claim: ClaimResult): number {
  return Math.max(...claim.variants.map((v) => v.valLoss.max - v.valLoss.min));
}

/** Each model's validation loss minus the baseline's, seed by seed (the same seed: the same batches, in order). */
export function pairedDifferences(claim: ClaimResult): Record<string, number[]> {
  const base = new Map(claim.variants.find((v) => v.key === claim.baseline)!.seeds.map((s) => [s.seed, s.valLoss]));
  const minusBase = (v: VariantResult) => v.seeds.map((s) => s.valLoss - base.get(s.seed)!);
  return Object.fromEntries(claim.variants.map((v) => [v.key, minusBase(v)]));
}

/** Three decimals with a sign; what rounds to zero is 0.000. */
const signed = (x: number) => (Math.abs(x) < 5e-4 ? '0.000' : `${x > 0 ? '+' : ''}${x.toFixed(3)}`);

/**
 * How far a model's experts specialise by domain: the total-variation distance of each domain's expert shares
 * from uniform, the mean over domains and MoE blocks. 0: every domain spread evenly; 1 - 1/E: each on one expert.
 */
export function domainSpecialisation(shares: number[][][]): number {
  const fromUniform = (d: number[]) => d.reduce((a, x) => a + Math.abs(x - 1 / d.length), 0) / 2;
  return average(shares.flatMap((block) => block.map(fromUniform)));
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/** A paired comparison as the table prints it: mean [95% t-interval], resolved or not, then seed by seed. */
export function pairedCell(differences: number[]): string {
  const p = pairedInterval(differences);
  const interval = p.low === null ? 'one seed: no interval' : `[${signed(p.low)}, ${signed(p.high!)}]`;
  return `${signed(p.mean)} ${interval}, ${verdict(p)} (${differences.map(signed).join(', ')})`;
}

function row(v: VariantResult, claim: ClaimResult, differences: number[]): string {
  const loss = `${f3(v.valLoss.mean)} (${f3(v.valLoss.min)}-${f3(v.valLoss.max)})`;
  const paired = v.key === claim.baseline ? 'baseline' : pairedCell(differences);
  const bySeed = v.seeds.map((s) => (s.acceptanceRate === undefined ? '-' : percent(s.acceptanceRate))).join(', ');
  const extra = claim.name === 'mtp'
    ? ` ${v.acceptanceRate === undefined ? '-' : `${percent(v.acceptanceRate)} (${bySeed})`} |`
    : '';
  const mix = v.maxVioGlobalTrainingMix === undefined ? '' : ` (${v.maxVioGlobalTrainingMix.toFixed(3)})`;
  return `| ${v.label} | ${paramCount(v.params.total)} | ${paramCount(v.params.activated)} | ${loss} | ${paired} | ` +
    `${v.maxVioGlobal.toFixed(3)}${mix} |${extra}`;
}

/** Validation loss per domain, the mean over seeds. */
function domainTable(claim: ClaimResult): string[] {
  const domains = Object.keys(claim.variants[0]?.seeds[0]?.domainLoss ?? {});
  const cell = (v: VariantResult, d: string) => f3(average(v.seeds.map((s) => s.domainLoss[d]!)));
  return [
    `| model, per domain (mean over seeds) | ${domains.join(' | ')} |`,
    `|---|${domains.map(() => '---|').join('')}`,
    ...claim.variants.map((v) => `| ${v.label} | ${domains.map((d) => cell(v, d)).join(' | ')} |`),
  ];
}

/**
 * One claim as markdown: our table (means over seeds, min-max in brackets, and each seed's difference from the
 * baseline), the losses per domain, the probes, the paper's figures.
 */
export function claimMarkdown(claim: ClaimResult): string {
  const mtp = claim.name === 'mtp';
  const seeds = claim.variants[0]?.seeds.length ?? 0;
  const differences = pairedDifferences(claim);
  const lines = [
    `#### ${claim.title}`, '',
    `| model | total | activated | validation loss, nats/byte (${seeds} seeds: mean (min-max)) | ` +
      `minus the baseline: paired mean [95% t-interval], resolved or not (seed by seed) | ` +
      `MaxVio_global, domains alike (in training proportions) |` +
      `${mtp ? ' drafts accepted (by seed) |' : ''}`,
    `|---|---|---|---|---|---|${mtp ? '---|' : ''}`,
    ...claim.variants.map((v) => row(v, claim, differences[v.key]!)),
    '',
    `Largest seed spread in this table: ${f3(spread(claim))} nats/byte. A difference is resolved when its 95% ` +
      't-interval over the seeds (paired: the same seed, the same batches and initial weights) excludes zero; ' +
      'otherwise this run cannot tell it from none.',
    '',
    ...domainTable(claim),
  ];
  if (claim.name === 'lossFree') lines.push('', ...maxVioBatchTable(claim));
  const mapped = claim.variants.filter((v) => v.seeds.every((s) => s.specialisation));
  if (mapped.length > 0) {
    const figures = mapped.map((v) => {
      const each = v.seeds.map((s) => domainSpecialisation(s.specialisation!));
      return `${v.key} ${f3(average(each))} (${each.map(f3).join(', ')})`;
    });
    const specialisation = (s: SeedResult) => s.specialisation && domainSpecialisation(s.specialisation);
    const paired = Object.entries(pairedMeasure(claim, specialisation));
    lines.push('', 'Domain specialisation (the total-variation distance of each domain\'s expert shares from ' +
      `uniform, the mean over domains and MoE blocks; 0: every domain spread evenly), seed by seed: ` +
      `${figures.join('; ')}.` +
      paired.map(([key, d]) => ` ${key} minus ${claim.baseline}, paired: ${pairedCell(d)}.`).join(''));
  }
  if (claim.name === 'lossFree' || claim.name === 'globalBatch') lines.push('', maxVioGlobalLine(claim));
  for (const v of claim.variants) {
    const pooled = pooledTeacherForced(v);
    if (!pooled) continue;
    const range = (xs: number[]) => `seeds ${percent(Math.min(...xs))}-${percent(Math.max(...xs))}`;
    const cell = (d: string) => `${d} ${percent(pooled[d]!.rate)} (${range(pooled[d]!.bySeed)})`;
    const domains = Object.keys(pooled).filter((d) => d !== 'all');
    lines.push('', `${v.label}: teacher-forced acceptance pooled over the seeds: ${domains.map(cell).join(', ')}; ` +
      `${percent(pooled.all!.rate)} of ${pooled.all!.eligible} drafts in all (${range(pooled.all!.bySeed)}).`);
  }
  for (const v of claim.variants.filter((x) => x.seeds.every((s) => s.teacherForced))) {
    const domains = Object.keys(v.seeds[0]!.teacherForced!);
    const cells = domains.map((d) => `${d} ${v.seeds.map((s) => {
      const t = s.teacherForced![d]!;
      return `${percent(t.accepted / t.eligible)} [${percent(t.low)}, ${percent(t.high)}] of ${t.eligible}`;
    }).join('; ')}`);
    lines.push('', `${v.label}: drafts accepted teacher-forced over the held-out text, per domain, seed by seed ` +
      `(95% bootstrap interval over windows; of N drafts where the greedy token was the true one): ` +
      `${cells.join(' | ')}.`);
  }
  for (const v of claim.variants.filter((x) => x.seeds.every((s) => s.freeRunning))) {
    lines.push('', freeRunningLine(v));
  }
  const probe = claim.probes.m4SharedWithoutShared;
  const shared = claim.variants.find((v) => v.key === 'm4Shared');
  if (probe && probe.length > 0 && shared) {
    const differences = probe.map((x, i) => x - shared.seeds[i]!.valLoss);
    lines.push('', `The m = 4 + shared model evaluated with its shared expert disabled and one more routed expert ` +
      `(DeepSeekMoE section 4.5): ${f3(average(probe))} against ${f3(shared.valLoss.mean)} with it; the paired ` +
      `difference ${pairedCell(differences)}.`);
  }
  const gaps = Object.entries(claim.probes).filter(([k]) => k.startsWith('stepZeroGap.'));
  if (gaps.length > 0) {
    const each = gaps.map(([k, xs]) => `${k.slice('stepZeroGap.'.length)} ${xs.map((x) => x.toExponential(1)).join(', ')}`);
    lines.push('', 'Each upcycled model\'s validation loss at the step it grew minus the dense model\'s there, seed by ' +
      `seed (0 up to float error when its first forward equals the dense model's): ${each.join('; ')}.`);
  }
  lines.push('', `Paper (${claim.source}):`, '', ...claim.paper.map((p) => `- ${p.label}: ${p.value}`));
  return lines.join('\n');
}

const f2 = (x: number) => x.toFixed(2);
/** Mean over seeds with the seeds' min-max, two decimals. */
const overSeeds = (xs: number[]) => `${f2(average(xs))} (${f2(Math.min(...xs))}-${f2(Math.max(...xs))})`;

/** MaxVio_batch early and late in training (how fast balance comes, how well it holds), per variant over seeds. */
function maxVioBatchTable(claim: ClaimResult): string[] {
  const steps = claim.variants[0]?.seeds[0]?.maxVioBatch.length ?? 0;
  const { early, late } = balancePhases(steps);
  const span = (p: { from: number; to: number }) => `steps ${p.from}-${p.to - 1}`;
  return [
    `MaxVio_batch (each optimizer step's batch, the mean over the MoE blocks), ` +
      `${claim.variants[0]?.seeds.length ?? 0} seeds: mean (min-max).`,
    '',
    `| model | ${span(early)} | ${span(late)} | its standard deviation over ${span(late)} |`,
    '|---|---|---|---|',
    ...claim.variants.map((v) => {
      const [a, b] = [maxVioBatchPhase(v, early), maxVioBatchPhase(v, late)];
      return `| ${v.label} | ${overSeeds(a.mean)} | ${overSeeds(b.mean)} | ${overSeeds(b.sd)} |`;
    }),
  ];
}

/** Each MoE variant's MaxVio_global minus the baseline's, paired, on both validation sets. */
function maxVioGlobalLine(claim: ClaimResult): string {
  const alike = pairedMeasure(claim, (s) => s.maxVioGlobal);
  const mix = pairedMeasure(claim, (s) => s.maxVioGlobalTrainingMix);
  const cells = Object.keys(alike).map((key) => `${key}: domains alike ${pairedCell(alike[key]!)}` +
    (mix[key] ? `; in training proportions ${pairedCell(mix[key])}` : ''));
  return `MaxVio_global minus ${claim.baseline}'s, paired: ${cells.join(' | ')}.`;
}

/** Free-running speculative decoding over the seeds: acceptance, the share in repeats, and each seed's figures. */
function freeRunningLine(v: VariantResult): string {
  const runs = v.seeds.map((s) => s.freeRunning!);
  const rate = (a: number, n: number) => (n > 0 ? `${percent(a / n)} of ${n}` : 'none');
  const total = (k: 'generated' | 'repeated' | 'drafted' | 'accepted' | 'draftedInRepeat' | 'acceptedInRepeat') =>
    runs.reduce((a, r) => a + r[k], 0);
  const prompts = runs.flatMap((r) => r.samples.map((x): [number, number] => [x.drafted, x.accepted]));
  const [low, high] = bootstrapInterval(prompts);
  const bySeed = v.seeds.map((s) => {
    const r = s.freeRunning!;
    return `${percent(r.accepted / Math.max(1, r.drafted))}, ${percent(r.repeated / r.generated)} in repeats`;
  });
  return `${v.label}: free-running greedy decoding from ${runs[0]!.samples.length} prompts cut from the held-out ` +
    `text per seed: drafts accepted ${rate(total('accepted'), total('drafted'))} [95% bootstrap over prompts ` +
    `${percent(low)}, ${percent(high)}]; ${percent(total('repeated') / total('generated'))} of the generated bytes ` +
    `lie inside an ${repeatN}-gram that occurred before; accepted inside such repeats ` +
    `${rate(total('acceptedInRepeat'), total('draftedInRepeat'))}, outside ` +
    `${rate(total('accepted') - total('acceptedInRepeat'), total('drafted') - total('draftedInRepeat'))}. ` +
    `Seed by seed: ${bySeed.join('; ')}.`;
}

export function claimsMarkdown(result: ClaimsResult): string {
  const s = result.settings;
  const head = `${result.date}, ${result.backend}, ${s.quick ? 'quick' : 'full'} run: ` +
    `${s.steps} steps of ${s.batchSize} x ` +
    `${s.seqLen} bytes per model and seed, ${s.seeds} seeds, ${(result.seconds / 60).toFixed(1)} minutes in all.`;
  return [head, ...result.claims.map((c) => claimMarkdown(c))].join('\n\n');
}

const palette = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf8700', '#57606a', '#e16f24'];

/** A line chart as an SVG string: one polyline per series of [x, y] points. */
export function lineChartSvg(
  title: string,
  yLabel: string,
  series: { label: string; points: [number, number][] }[],
): string {
  const W = 640;
  const H = 300;
  const pad = { l: 56, r: 170, t: 28, b: 36 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"></svg>`;
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (W - pad.l - pad.r);
  const sy = (y: number) => H - pad.b - ((y - y0) / (y1 - y0 || 1)) * (H - pad.t - pad.b);
  const lines = series.map((s, i) => {
    const colour = palette[i % palette.length];
    const d = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const legend = `<text x="${W - pad.r + 8}" y="${pad.t + 14 * i + 10}" fill="${colour}" font-size="11">` +
      `${escapeXml(s.label)}</text>`;
    return `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${d}"/>${legend}`;
  });
  const axis = `<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="#888"/>` +
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="#888"/>` +
    `<text x="${pad.l - 4}" y="${sy(y1) + 4}" text-anchor="end" font-size="10">${y1.toFixed(2)}</text>` +
    `<text x="${pad.l - 4}" y="${sy(y0) + 4}" text-anchor="end" font-size="10">${y0.toFixed(2)}</text>` +
    `<text x="${pad.l}" y="${H - pad.b + 14}" font-size="10">${x0}</text>` +
    `<text x="${W - pad.r}" y="${H - pad.b + 14}" text-anchor="end" font-size="10">step ${x1}</text>` +
    `<text x="12" y="${pad.t - 10}" font-size="12">${escapeXml(title)} (${escapeXml(yLabel)})</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    `<rect width="${W}" height="${H}" fill="white"/>${axis}${lines.join('')}</svg>`;
}

/** A heat map as an SVG string: rows x columns of values, 0 white to `max` blue. */
export function heatmapSvg(title: string, rows: string[], values: number[][], max: number): string {
  const cell = 16;
  const left = 90;
  const top = 24;
  const W = left + (values[0]?.length ?? 0) * cell + 10;
  const H = top + rows.length * cell + 10;
  const cells = values.flatMap((r, i) => r.map((v, j) => {
    const t = Math.min(1, v / max);
    const c = `rgb(${Math.round(255 - 246 * t)},${Math.round(255 - 150 * t)},${Math.round(255 - 37 * t)})`;
    return `<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell - 1}" height="${cell - 1}" fill="${c}"/>`;
  }));
  const labels = rows.map((r, i) => `<text x="${left - 6}" y="${top + i * cell + 12}" text-anchor="end" ` +
    `font-size="11">${escapeXml(r)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    `<rect width="${W}" height="${H}" fill="white"/><text x="4" y="14" font-size="12">${escapeXml(title)}</text>` +
    `${labels.join('')}${cells.join('')}</svg>`;
}

/** Text made safe inside SVG or HTML. */
export const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const meanCurve = (curves: [number, number][][]): [number, number][] =>
  (curves[0] ?? []).map(([step], i) => [step, curves.reduce((a, c) => a + (c[i]?.[1] ?? 0), 0) / curves.length]);

/** The charts of a claims result by file name suffix: validation curves, MaxVio_batch, specialisation maps. */
export function claimsCharts(result: ClaimsResult): Record<string, string> {
  const charts: Record<string, string> = {};
  for (const c of result.claims) {
    charts[`${c.name}-validation.svg`] = lineChartSvg(`${c.title}: validation loss`, 'nats/byte',
      c.variants.map((v) => ({ label: v.key, points: meanCurve(v.seeds.map((s) => s.curve)) })));
    if (c.name === 'lossFree') {
      charts[`${c.name}-maxvio-batch.svg`] = lineChartSvg(
        'MaxVio_batch over training (seed 0, mean over blocks)',
        'max/mean - 1',
        c.variants.map((v) => ({ label: v.key, points: smooth(v.seeds[0]?.maxVioBatch ?? []) })),
      );
    }
    if (c.name === 'globalBatch') {
      for (const v of c.variants) {
        const map = v.seeds[0]?.specialisation?.[0];
        if (!map) continue;
        const E = map[0]?.length ?? 1;
        const domains = Object.keys(v.seeds[0]!.domainLoss);
        charts[`${c.name}-${v.key}-specialisation.svg`] = heatmapSvg(
          `${v.key}: share of each domain per expert (first MoE block; ` + 'white 0, blue 3x uniform)',
          domains,
          map.map((r) => r.map((x) => x * E)),
          3,
        );
      }
    }
  }
  return charts;
}

/** A moving mean over 10 steps, as [step, value] points. */
function smooth(values: number[]): [number, number][] {
  return values.map((_, i) => {
    const w = values.slice(Math.max(0, i - 9), i + 1);
    return [i + 1, average(w)];
  });
}
