import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { characterExpert, expertColour, expertLegend, type RoutingTrace } from 'deepseek-moe-tfjs/config';
import { traceRouting } from 'deepseek-moe-tfjs/model';
import { loadModel } from 'deepseek-moe-tfjs/train';
import { demoState, openPage, openSite, screenshotDir, waitForState, type Site } from './site.js';
import { validateBenchResult } from '../../tools/bench-suite/validate.js';
import type { BenchResult } from '../../tools/bench-suite/schema.js';
import type { ClaimsResult } from '../../tools/claims/schema.js';

interface PlaygroundState {
  state: string; losses: number[]; accuracy: number[]; violations: number[]; maps: number; expertsOnPlane: number;
  error: string;
}
interface LabState {
  state: string; losses: number[]; valLosses: number[]; sample: string; checkpoints: number; error: string; loadedStep: number;
  maxVioGlobal: number; acceptanceRate: number; routing: { trace: RoutingTrace | null; block: number } | null;
  grownAt: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Main-thread tasks long enough to be training on the main thread: a step takes 300 ms or more on SwiftShader.
 * Shorter long tasks (50-160 ms) come and go with this 2-core machine's load: on 2026-11-29 the commit that had
 * passed CI a week before showed them too, so the check's bound sits above them rather than at the Long Tasks
 * API's 50 ms.
 */
/** A few lab steps, then stop: a finished job with a model to save or export. */
async function trainBriefly(page: Parameters<typeof demoState>[0]): Promise<void> {
  await page.click('#train');
  await waitForState(page, `s.losses.length >= 3`);
  await page.click('#stop');
  await waitForState(page, `s.state === 'finished'`);
}

/** The routing figure's box on the page, for its screenshot. */
async function routingBox(page: Parameters<typeof demoState>[0]) {
  await page.locator('#routing').scrollIntoViewIfNeeded();
  const box = (await page.locator('#routing').boundingBox())!;
  return { x: box.x, y: box.y, width: box.width, height: box.height + 40 };
}

const blocking = (tasks: { start: number; duration: number }[]) => tasks.filter((t) => t.duration > 200);

describe('the demo site, built, in headless Chromium', () => {
  let site: Site;

  beforeAll(async () => {
    site = await openSite();
  });
  afterAll(async () => {
    await site?.close();
  });

  it.each([
    'index.html', 'playground.html', 'lab.html', 'bench.html', 'claims.html',
  ])('%s loads without console errors', async (path) => {
    const demo = await openPage(site, path);
    if (path !== 'index.html') expect(await demo.page.textContent('#backend-note')).toMatch(/^active: (webgpu|webgl|wasm|cpu)/);
    await demo.page.screenshot({ path: `${screenshotDir}${path.replace('.html', '')}-loaded.png`, fullPage: true });
    expect(demo.errors).toEqual([]);
    await demo.page.close();
  });

  const playgroundTitle = 'the playground trains on %s, the loss falls, and training never blocks the main thread';
  it.each(['webgl', 'webgpu'])(playgroundTitle, async (backend) => {
    const demo = await openPage(site, `playground.html?backend=${backend}`);
    const { page } = demo;
    expect(await page.textContent('#backend-note')).toMatch(new RegExp(`^active: ${backend}`));
    await page.fill('#steps', '60');
    const from = await demo.now();
    await page.click('#train');
    await waitForState(page, `s.state === 'finished'`);
    const to = await demo.now();
    const s = await demoState<PlaygroundState>(page);
    expect(s.error).toBe('');
    expect(s.losses).toHaveLength(60);
    expect(mean(s.losses.slice(-5))).toBeLessThan(0.6 * s.losses[0]!);
    expect(s.maps).toBeGreaterThanOrEqual(6);
    expect(blocking(await demo.longTasks(from, to))).toEqual([]);
    await page.screenshot({ path: `${screenshotDir}playground-${backend}.png`, fullPage: true });
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('the playground shows experts collapse without balancing and share the plane with the bias (wasm, 16 experts)', async () => {
    const demo = await openPage(site, 'playground.html?backend=wasm');
    const { page } = demo;
    await page.selectOption('#experts', '16');
    const run = async (balancing: string) => {
      await page.selectOption('#balancing', balancing);
      await page.click('#train');
      await waitForState(page, `s.state === 'finished'`);
      const s = await demoState<PlaygroundState>(page);
      await page.screenshot({ path: `${screenshotDir}playground-balancing-${balancing}.png`, fullPage: true });
      return { experts: s.expertsOnPlane, violation: mean(s.violations.slice(-50)), accuracy: mean(s.accuracy.slice(-20)) };
    };
    const none = await run('none');
    const bias = await run('bias');
    expect(none.experts).toBeLessThanOrEqual(8);
    expect(bias.experts).toBeGreaterThanOrEqual(14); // 15 or 16 across seeds, on either expert path
    expect(none.violation).toBeGreaterThan(2);
    expect(bias.violation).toBeLessThan(1);
    expect(Math.min(none.accuracy, bias.accuracy)).toBeGreaterThan(0.95);
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  const labTitle = 'the language model lab trains on %s, the loss falls, and training never blocks the main thread';
  it.each(['webgl', 'webgpu'])(labTitle, async (backend) => {
    const demo = await openPage(site, `lab.html?backend=${backend}`);
    const { page } = demo;
    expect(await page.textContent('#backend-note')).toMatch(new RegExp(`^active: ${backend}`));
    await page.fill('#steps', '40');
    await page.fill('#batch', '4');
    const from = await demo.now();
    await page.click('#train');
    await waitForState(page, `s.state === 'finished'`);
    const to = await demo.now();
    const s = await demoState<LabState>(page);
    expect(s.error).toBe('');
    expect(s.losses).toHaveLength(40);
    expect(mean(s.losses.slice(-5))).toBeLessThan(s.losses[0]! - 1);
    expect(s.valLosses).toHaveLength(2); // before training and at the end
    expect(s.valLosses[1]!).toBeLessThan(s.valLosses[0]! - 1);
    // The final evaluation also asks where each domain's tokens go, drawn under the MoE block.
    await page.waitForFunction(() => document.getElementById('domains-1')?.textContent === 'english, chinese, code, arithmetic');
    expect(blocking(await demo.longTasks(from, to))).toEqual([]);
    await page.screenshot({ path: `${screenshotDir}lab-${backend}.png`, fullPage: true });
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('pause holds the lab between steps and resume goes on', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    await page.click('#train');
    await waitForState(page, `s.losses.length >= 5`);
    await page.click('#pause');
    await waitForState(page, `s.state === 'paused'`);
    const held = (await demoState<LabState>(page)).losses.length;
    await page.waitForTimeout(1500);
    expect((await demoState<LabState>(page)).losses.length).toBe(held);
    expect(await page.textContent('#status')).toMatch(/paused at step/);
    await page.click('#pause'); // now labelled Resume
    await waitForState(page, `s.losses.length >= ${held + 5}`);
    await page.click('#stop');
    await waitForState(page, `s.state === 'finished'`);
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it("trains with the reference stacks' options (MTP, accumulation, global-batch balance, drops by affinity, a gated " +
    'shared expert) and decodes speculatively, showing MaxVio_global and the acceptance rate', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    await page.selectOption('#mtp', '1');
    await page.fill('#batch', '4');
    await page.fill('#accum', '2');
    await page.fill('#alpha1', '0.01');
    await page.selectOption('#balance-scope', 'globalBatch');
    await page.selectOption('#bias-update', 'signCentered');
    await page.selectOption('#dispatch', 'capacity');
    await page.selectOption('#drop-policy', 'probs');
    await page.check('#shared-gate');
    expect(await page.textContent('#params')).toMatch(/The 1 MTP module\(s\) add/);
    await trainBriefly(page);
    expect((await demoState<LabState>(page)).maxVioGlobal).toBeGreaterThanOrEqual(0); // the starting evaluation's
    expect(await page.textContent('#eval-numbers')).toMatch(/MaxVio_global .*block 1 \d\.\d\d, block 2 \d\.\d\d/);
    expect(await page.textContent('#numbers')).toMatch(/MTP loss \d\.\d{3}/);
    await page.check('#speculative');
    await page.fill('#sample-tokens', '30');
    await page.click('#generate');
    await waitForState(page, `s.acceptanceRate >= 0`);
    expect(await page.textContent('#speculation')).toMatch(
      /accepted \d+ of \d+ times \(\d+%; DeepSeek-V3 reports 85-90%\), \d\.\d\d tokens per main-model step/,
    );
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('the Claims page shows each table and reruns the small MTP table in the worker, with progress', async () => {
    const demo = await openPage(site, 'claims.html?backend=wasm');
    const { page } = demo;
    // Each table from the newest committed full run that holds it (a run committed in chunks holds some), with
    // its per-domain table and charts; the budget pilot from its own file.
    const results = new URL('../../bench/results/', import.meta.url);
    const runs = readdirSync(results).filter((f) => /^claims-\d{4}-\d{2}-\d{2}(-budget|-upcycling)?\.json$/.test(f))
      .sort().reverse().map((f) => JSON.parse(readFileSync(new URL(f, results), 'utf8')) as ClaimsResult);
    const runOf = (name: string) => runs.find((r) => r.claims.some((c) => c.name === name));
    const names = ['fineGrained', 'lossFree', 'globalBatch', 'mtp', 'upcycling', 'budget'];
    const first = names.map(runOf).find((r) => r !== undefined);
    expect(await page.textContent('#committed')).toMatch(first
      ? new RegExp(`^Committed runs shown: ${first.date}, wasm`)
      : /^No full run of npm run bench:claims is committed yet/);
    for (const name of names) {
      expect(await page.isVisible(`#run-${name}`)).toBe(name !== 'budget');
      const run = runOf(name);
      if (!run) continue;
      expect(await page.getAttribute(`#claim-${name} [data-run]`, 'data-run')).toBe(run.date);
      // The models and per domain; the loss-free table also MaxVio_batch early and late.
      expect(await page.locator(`#claim-${name} > table`).count()).toBe(name === 'lossFree' ? 3 : 2);
      expect(await page.locator(`#claim-${name} figure.chart svg`).count()).toBeGreaterThan(0);
      const paired = /minus the baseline: paired mean \[95% t-interval\], resolved or not \(seed by seed\)/;
      expect(await page.textContent(`#claim-${name}`)).toMatch(paired);
    }
    await page.click('#run-mtp');
    await page.waitForFunction(
      () => (document.getElementById('progress') as HTMLProgressElement).value > 0, undefined, { timeout: 60_000 },
    );
    await waitForState(page, `s.reruns.includes('mtp')`);
    const rerun = await page.textContent('#rerun-mtp');
    expect(rerun).toMatch(/one MTP module, lambda 0.3/);
    expect(rerun).toMatch(/\d+\.\d%/); // the acceptance rate of the module's drafts
    expect(rerun).toMatch(/Largest seed spread in this table/);
    await page.screenshot({ path: `${screenshotDir}claims-rerun.png`, fullPage: true });
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('a checkpoint saved to IndexedDB and loaded back, even after a reload, restores the same sample', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    // Sampled at temperature 1 from the lab's fixed seed: the same weights give the same text, and other weights
    // another (greedy text this early is often all spaces at both steps, which made the second check flaky).
    await page.fill('#temperature', '1');
    await page.fill('#sample-tokens', '40');
    await page.click('#train');
    await waitForState(page, `s.losses.length >= 30`);
    await page.click('#pause');
    await waitForState(page, `s.state === 'paused'`);
    const savedStep = (await demoState<LabState>(page)).losses.length;
    await page.click('#save');
    await waitForState(page, `s.checkpoints === 1`);
    await page.click('#generate');
    await waitForState(page, `s.sample.length > 0`);
    const before = (await demoState<LabState>(page)).sample;
    await page.click('#pause'); // resume, train on, pause again
    await waitForState(page, `s.losses.length >= ${savedStep + 40}`);
    await page.click('#pause');
    await waitForState(page, `s.state === 'paused'`);
    await page.evaluate(() => ((window as unknown as { demoState: LabState }).demoState.sample = ''));
    await page.click('#generate');
    await waitForState(page, `s.sample.length > 0`);
    expect((await demoState<LabState>(page)).sample).not.toBe(before); // the model moved on

    await page.reload();
    await waitForState(page, `s.checkpoints === 1`);
    await page.waitForFunction(() => document.getElementById('backend-note')!.textContent!.startsWith('active:'));
    await page.click('#checkpoints [data-load]');
    await waitForState(page, `s.loadedStep === ${savedStep} && s.state === 'paused'`);
    await page.fill('#temperature', '1');
    await page.fill('#sample-tokens', '40');
    await page.click('#generate');
    await waitForState(page, `s.sample.length > 0`);
    expect((await demoState<LabState>(page)).sample).toBe(before);
    await page.screenshot({ path: `${screenshotDir}lab-checkpoint.png`, fullPage: true });
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('a worker that throws is reported with its message, saved checkpoints survive, restart recovers, and files ' +
    'download and upload', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    await trainBriefly(page);
    await page.click('#save');
    const saved = (await demoState<LabState>(page)).checkpoints + 1;
    await waitForState(page, `s.checkpoints === ${saved}`);
    // The next worker to start runs a script that throws at once.
    await page.route('**/train.worker-*.js', (route) =>
      route.fulfill({ contentType: 'text/javascript', body: `throw new Error('simulated worker crash');` }));
    await page.reload();
    await page.waitForSelector('#failure:not([hidden])', { timeout: 60_000 });
    expect(await page.textContent('#failure-text')).toMatch(/The training worker stopped: .*simulated worker crash/);
    await waitForState(page, `s.checkpoints === ${saved}`); // nothing the user saved is lost
    await page.unroute('**/train.worker-*.js');
    await page.click('#restart');
    await page.waitForFunction(
      () => document.getElementById('backend-note')!.textContent!.startsWith('active:'), undefined, { timeout: 60_000 },
    );
    expect(await page.isHidden('#failure')).toBe(true);
    expect(demo.errors).toEqual([]); // reported on the page, not as uncaught errors
    await page.click('#checkpoints [data-load]');
    await waitForState(page, `s.loadedStep > 0 && s.state === 'paused'`);
    const step = (await demoState<LabState>(page)).loadedStep;

    // Download the checkpoint and upload it back; a damaged upload is refused and changes nothing.
    const [file] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(file.suggestedFilename()).toBe(`deepseek-moe-step${step}.ckpt`);
    const bytes = readFileSync(await file.path());
    await page.evaluate(() => ((window as unknown as { demoState: LabState }).demoState.loadedStep = -1));
    await page.setInputFiles('#upload', { name: 'mine.ckpt', mimeType: 'application/octet-stream', buffer: bytes });
    await waitForState(page, `s.loadedStep === ${step} && s.state === 'paused'`);
    const damaged = Buffer.from(bytes);
    damaged[damaged.length - 10] = damaged[damaged.length - 10]! ^ 0xff;
    await page.setInputFiles('#upload', { name: 'damaged.ckpt', mimeType: 'application/octet-stream', buffer: damaged });
    await page.waitForFunction(() => document.getElementById('checkpoint-note')!.classList.contains('error'));
    expect(await page.textContent('#checkpoint-note')).toMatch(/Could not load damaged.ckpt: .*checksum mismatch/);
    expect((await demoState<LabState>(page)).state).toBe('paused'); // the loaded job is still there
    await waitForState(page, `s.checkpoints === ${saved}`);
    await page.close();
  });

  it('routes a mixed text: spans, tooltips and legend follow the library\'s trace, by keyboard and on a phone', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    await trainBriefly(page);
    const text = 'The cat sat. 猫坐着。\ndef f(x): return x  # 12+34=46';
    await page.fill('#route-text', text);
    await page.click('#route');
    await waitForState(page, `s.routing && s.routing.trace !== null`);
    const { trace, block: shown } = (await demoState<LabState>(page)).routing!;
    const block = trace!.blocks.find((b) => b.block === shown)!;
    expect(trace!.text).toBe(text);
    const spans = await page.$$eval('#route-view span', (els) => els.map((e) => ({
      text: e.textContent, expert: Number((e as HTMLElement).dataset.expert), background: (e as HTMLElement).style.background,
      label: e.getAttribute('aria-label'),
    })));
    expect(spans.map((x) => x.text).join('')).toBe(text);
    trace!.characters.forEach((c, i) => {
      const expert = characterExpert(block, c);
      expect(spans[i]!.expert, `character ${i} '${c.text}'`).toBe(expert);
      expect(spans[i]!.background).toBe(`rgb(${expertColour(expert).join(', ')})`);
      expect(spans[i]!.label).toContain(`expert ${expert}`);
    });
    const legend = await page.$$eval('#route-legend li', (els) => els.map((e) => e.textContent));
    expect(legend).toEqual(expertLegend(trace!, block).map((e) => e.description));
    // The trace is the library's: the same checkpoint through traceRouting in Node routes every byte alike (a gate
    // within 1e-3 of the next may swap places across backends).
    const [file] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    await initBackend('cpu');
    const model = loadModel(new Uint8Array(readFileSync(await file.path())));
    const here = await traceRouting(model, text);
    model.dispose();
    const mine = here.blocks.find((b) => b.block === shown)!;
    block.experts.forEach((row, b) => row.forEach((e, k) => {
      const j = mine.experts[b]!.indexOf(e);
      if (j >= 0) expect(mine.gates[b]![j]!, `byte ${b}`).toBeCloseTo(block.gates[b]![k]!, 3);
      else expect(Math.abs(block.gates[b]![k]! - Math.min(...mine.gates[b]!)), `byte ${b}: expert ${e}`).toBeLessThan(1e-3);
    }));
    // A tooltip for the Chinese character: its three bytes, each with its experts and gates; arrow keys move on.
    const cat = trace!.characters.findIndex((c) => c.text === '猫');
    await page.focus(`#route-view [data-index="${cat}"]`);
    const tip = await page.textContent('#route-tip');
    expect(tip).toMatch(/^猫 \(3 bytes\)\nbyte e7: .*\nbyte 8c: .*\nbyte ab: /);
    const first = trace!.characters[cat]!.start;
    expect(tip).toContain(`expert ${block.experts[first]![0]} ${block.gates[first]![0]!.toFixed(2)}`);
    expect(await page.getAttribute(`#route-view [data-index="${cat}"]`, 'aria-describedby')).toBe('route-tip');
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.index)).toBe(String(cat + 1));
    expect(await page.textContent('#route-tip')).toMatch(/^坐 \(3 bytes\)/);
    await page.screenshot({ path: `${screenshotDir}lab-routing.png`, fullPage: false, clip: await routingBox(page) });
    // A phone screen: the view wraps inside the page, nothing scrolls sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.locator('#routing').screenshot({ path: `${screenshotDir}lab-routing-phone.png` });
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('grows a paused dense run into a MoE that trains on in the worker, its loss curve unbroken', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    await page.selectOption('#ffn', 'dense');
    expect(await page.isDisabled('#grow')).toBe(true);
    await page.click('#train');
    await waitForState(page, `s.losses.length >= 3`);
    await page.click('#pause');
    await waitForState(page, `s.state === 'paused'`);
    expect(await page.isDisabled('#grow')).toBe(false);
    const held = (await demoState<LabState>(page)).losses.length;
    await page.click('#grow');
    await waitForState(page, `s.grownAt >= 0`);
    expect((await demoState<LabState>(page)).grownAt).toBe(held);
    expect(await page.textContent('#status')).toMatch(new RegExp(`grown into a DeepSeekMoE at step ${held} \\(first forward unchanged\\)`));
    expect(await page.isDisabled('#grow')).toBe(true); // a MoE does not grow again
    await page.click('#pause'); // Resume
    await waitForState(page, `s.losses.length >= ${held + 3}`);
    await page.waitForSelector('#load-1'); // the MoE block's load heatmap
    await page.click('#stop');
    await waitForState(page, `s.state === 'finished'`);
    expect((await demoState<LabState>(page)).error).toBe('');
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('downloads the model for PyTorch as a zipped Hugging Face folder and opens such a folder back', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    await trainBriefly(page);
    const [file] = await Promise.all([page.waitForEvent('download'), page.click('#download-hf')]);
    expect(file.suggestedFilename()).toMatch(/^deepseek-moe-step\d+-hf\.zip$/);
    const zipped = unzipSync(new Uint8Array(readFileSync(await file.path())));
    const folder = file.suggestedFilename().replace(/-hf\.zip$/, '');
    expect(Object.keys(zipped).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json',
      'tokenizer_config.json'].map((f) => `${folder}/${f}`));
    expect(JSON.parse(new TextDecoder().decode(zipped[`${folder}/config.json`]))).toMatchObject({
      model_type: 'deepseek_v3', vocab_size: 256,
    });
    expect(await page.textContent('#checkpoint-note')).toMatch(/Downloaded .*-hf\.zip \(deepseek_v3\)/);
    await page.evaluate(() => ((window as unknown as { demoState: LabState }).demoState.loadedStep = -1));
    const unzipped = mkdtempSync(join(tmpdir(), 'lab-hf-'));
    mkdirSync(join(unzipped, folder));
    for (const [name, bytes] of Object.entries(zipped)) writeFileSync(join(unzipped, name), bytes);
    await page.setInputFiles('#open-hf', join(unzipped, folder)); // a folder, as a visitor picks one
    await waitForState(page, `s.loadedStep === 0 && s.state === 'paused'`);
    expect(await page.textContent('#checkpoint-note')).toMatch(/Loaded .*\(deepseek_v3\)/);
    await page.click('#generate');
    await waitForState(page, `s.sample.length > 0`);
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('a worker that ends itself mid-run, with no error event, is reported within seconds and restart recovers', async () => {
    const demo = await openPage(site, 'lab.html?backend=wasm');
    const { page } = demo;
    // The real worker, plus a line that ends it from inside two seconds into its training job (mid-step, or between
    // two): close() fires no error event, as when a tab's worker runs out of memory.
    await page.route('**/train.worker-*.js', async (route) => {
      const original = await (await route.fetch()).text();
      const ending = `self.addEventListener('message', (e) => { if (e.data?.path?.[0] === 'start') setTimeout(() => ` +
        `self.close(), 2000); });`;
      await route.fulfill({ contentType: 'text/javascript', body: `${original}\n${ending}` });
    });
    await page.reload();
    await page.waitForFunction(
      () => document.getElementById('backend-note')!.textContent!.startsWith('active:'), undefined, { timeout: 60_000 },
    );
    await page.click('#train');
    const clicked = Date.now();
    await page.waitForSelector('#failure:not([hidden])', { timeout: 30_000 });
    expect(Date.now() - clicked).toBeLessThan(15_000); // the 2 s the worker lives, then a few seconds at most
    expect(await page.textContent('#failure-text')).toMatch(/The training worker ended without an error/);
    await page.unroute('**/train.worker-*.js');
    await page.click('#restart');
    await page.waitForFunction(
      () => document.getElementById('backend-note')!.textContent!.startsWith('active:'), undefined, { timeout: 60_000 },
    );
    expect(await page.isHidden('#failure')).toBe(true);
    expect(demo.errors).toEqual([]);
    await page.close();
  });

  it('the bench page runs the quick suite on wasm, draws the charts, offers the result in the schema, and compares a file', async () => {
    const demo = await openPage(site, 'bench.html?backend=wasm');
    const { page } = demo;
    await page.click('#run');
    await waitForState(page, `s.results.length === 1 && s.state === 'idle'`);
    const s = await demoState<{ results: BenchResult[]; error: string }>(page);
    expect(s.error).toBe('');
    expect(validateBenchResult(s.results[0]).backend).toBe('wasm');
    expect(s.results[0]!.environment.runtime).toBe('browser');
    // The built site runs the grouped path: a bundler that drops the kernel modules would fall back to the stock-op
    // path, about ten times the kernels.
    expect(s.results[0]!.layer.programs.moe).toBeLessThan(s.results[0]!.layer.programs.moeReference! / 4);
    expect(await page.locator('#runs tr').count()).toBe(1);
    // The report's charts: five shared, four for the backend.
    expect(await page.locator('#charts figure.chart svg').count()).toBe(9);
    const [file] = await Promise.all([page.waitForEvent('download'), page.click('#download-0')]);
    const path = await file.path();
    expect(file.suggestedFilename()).toMatch(/^\d{4}-\d\d-\d\d-browser-wasm-quick\.json$/);
    expect(validateBenchResult(JSON.parse(readFileSync(path, 'utf8'))).mode).toBe('quick');
    // The downloaded file against the run it came from: every figure in common, each 1x.
    await page.setInputFiles('#compare-file', path);
    await waitForState(page, 's.compared > 0');
    expect(await page.locator('#comparison tr').count()).toBe((await demoState<{ compared: number }>(page)).compared);
    expect(await page.locator('#comparison tr td:last-child').allTextContents())
      .toSatisfy((cells: string[]) => cells.every((c) => c === '1.00×'));
    await page.screenshot({ path: `${screenshotDir}bench-wasm.png`, fullPage: true });
    expect(demo.errors).toEqual([]);
    await page.close();
  });
});
