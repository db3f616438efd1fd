/** The backend selector every page has: what this browser offers, what is active, and why one is unavailable. */
import type { BackendAvailability } from 'deepseek-moe-tfjs';
import type { BackendName } from 'deepseek-moe-tfjs';
import { $, hideFailure } from './page.js';
import { wasmPaths, type WorkerClient } from './worker-client.js';

export class BackendPicker {
  active: BackendName | null = null;
  private list: BackendAvailability[] = [];

  constructor(
    private readonly client: WorkerClient,
    private readonly select: HTMLSelectElement,
    private readonly note: HTMLElement,
    /** Called after a switch: the worker has ended any paused or finished job. */
    private readonly onSwitch: () => void = () => {},
  ) {
    select.addEventListener('change', () => void this.apply());
  }

  /** Probes the worker's backends, fills the selector (the URL's ?backend= first) and starts one. */
  async init(): Promise<void> {
    try {
      this.list = await this.client.api.backends();
    } catch (e) {
      this.note.textContent = `could not reach the training worker: ${(e as Error).message}`;
      this.note.classList.add('error');
      return;
    }
    this.select.replaceChildren(...this.list.map((b) => {
      const option = new Option(!b.available ? `${b.name} (unavailable)` : b.software ? `${b.name} (software)` : b.name, b.name);
      option.disabled = !b.available;
      option.title = b.reason ?? '';
      return option;
    }));
    const wanted = new URLSearchParams(location.search).get('backend');
    // An emulated GPU (SwiftShader) is slower than wasm: prefer a real GPU, then wasm.
    const first = this.list.find((b) => b.available && !b.software)?.name ?? 'cpu';
    this.select.value = this.list.some((b) => b.name === wanted) ? wanted! : first;
    await this.apply();
  }

  /** Starts the selected backend in the worker; on failure says why and keeps the last one. */
  async apply(): Promise<BackendName | null> {
    const name = this.select.value as BackendName;
    this.note.textContent = `starting ${name}…`;
    try {
      this.active = await this.client.api.setBackend(name, { wasmPaths });
      this.onSwitch();
      this.note.textContent = this.describe();
      this.note.classList.remove('error');
    } catch (e) {
      this.note.textContent = `${name} could not start: ${(e as Error).message}${this.active ? ` Still on ${this.active}.` : ''}`;
      this.note.classList.add('error');
      if (this.active) this.select.value = this.active;
    }
    document.body.dataset.backend = this.active ?? '';
    return this.active;
  }

  private describe(): string {
    const active = this.list.find((b) => b.name === this.active);
    const missing = this.list.filter((b) => !b.available).map((b) => `${b.name}: ${b.reason}`);
    const software = this.list.filter((b) => b.software).map((b) => b.name);
    return `active: ${this.active}` + (active?.device ? ` (${active.device})` : '') +
      (software.length ? ` · ${software.join(' and ')} run on a software GPU here, usually slower than wasm` : '') +
      (missing.length ? ` · not here: ${missing.join('; ')}` : '');
  }

  set disabled(value: boolean) {
    this.select.disabled = value;
  }
}

/** Wires the failure banner's Restart button: a fresh worker, the banner hidden, the page reset, a backend again. */
export function wireRestart(client: WorkerClient, picker: BackendPicker, reset: () => void): void {
  $('restart').addEventListener('click', async () => {
    client.restart();
    hideFailure();
    reset();
    await picker.init();
  });
}

