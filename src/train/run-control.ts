/**
 * Pause, resume and stop for a training loop that awaits between steps. The loop calls begin(), then
 * boundary() before each step, then end(); commands may come at any time (a worker message, Ctrl-C).
 */

/**
 * Resolves on the next macrotask. A step's awaits are microtasks on cpu and wasm, so without this a run would
 * never let timers, signal handlers or worker messages in until it ended.
 */
export function nextTask(): Promise<void> {
  const { setImmediate } = globalThis as { setImmediate?: (f: () => void) => void };
  if (setImmediate) return new Promise((resolve) => setImmediate(() => resolve()));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** Stop, pause and resume for a step loop (the trainer and the playground job use it). */
export class RunControl {
  private gate: { promise: Promise<void>; release: () => void } | null = null;
  private waiters: (() => void)[] = [];
  private active = false;
  private held = false;
  private stopRequested = false;

  /** True between pause() and resume(). */
  get paused(): boolean {
    return this.gate !== null;
  }

  /** True when no step is in flight: the loop is not running, or it is held at a boundary. */
  get idle(): boolean {
    return !this.active || this.held;
  }

  /** Holds the loop at its next boundary; resolves once it is held (at once when no loop runs). */
  pause(): Promise<void> {
    if (!this.gate) {
      let release = () => {};
      const promise = new Promise<void>((resolve) => (release = resolve));
      this.gate = { promise, release };
    }
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  resume(): void {
    this.gate?.release();
    this.gate = null;
  }

  /** Ends the loop at its next boundary (a held loop ends at once). */
  stop(): void {
    this.stopRequested = true;
    this.resume();
  }

  begin(): void {
    this.active = true;
    this.stopRequested = false;
  }

  end(): void {
    this.active = false;
    this.held = false;
    this.release();
  }

  /** Between steps: yields a macrotask and waits out a pause. False once stop() was called. */
  async boundary(): Promise<boolean> {
    await nextTask();
    while (this.gate && !this.stopRequested) {
      this.held = true;
      this.release();
      await this.gate.promise;
    }
    this.held = false;
    return !this.stopRequested;
  }

  private release(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
