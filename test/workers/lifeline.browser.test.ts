import * as Comlink from 'comlink';
import { describe, expect, it } from 'vitest';
import { watchWorker } from '../../workers/guard.js';
import type { EndingWorkerApi } from './fixtures/ending.worker.js';

const spawn = () => new Worker(new URL('./fixtures/ending.worker.ts', import.meta.url), { type: 'module' });
const settledWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('a worker that dies without an error event', () => {
  it('leaves a plain comlink call waiting: the failure the lifeline exists for', async () => {
    const worker = spawn();
    const api = Comlink.wrap<EndingWorkerApi>(worker);
    expect(await api.ping()).toBe('pong');
    expect(await settledWithin(api.step(100), 2000)).toBe(false);
    worker.terminate();
  });

  it('rejects the pending call and later ones within a few seconds, and says so once', async () => {
    const failures: string[] = [];
    const watched = watchWorker<EndingWorkerApi>(spawn(), (m) => failures.push(m));
    expect(await watched.api.ping()).toBe('pong');
    const started = performance.now();
    await expect(watched.api.step(200)).rejects.toThrow(/The training worker ended without an error/);
    expect(performance.now() - started).toBeLessThan(5000);
    await expect(watched.api.ping()).rejects.toThrow(/ended without an error/);
    expect(failures).toEqual(['The training worker ended without an error (out of memory, or its process crashed).']);
  });

  it('reports nothing when the page ends the worker itself', async () => {
    const failures: string[] = [];
    const watched = watchWorker<EndingWorkerApi>(spawn(), (m) => failures.push(m));
    expect(await watched.api.ping()).toBe('pong');
    const pending = watched.api.step(1000);
    watched.terminate();
    await expect(pending).rejects.toThrow(/ended by the page/); // a pending call does not wait forever either
    await new Promise((r) => setTimeout(r, 500));
    expect(failures).toEqual([]);
  });
});
