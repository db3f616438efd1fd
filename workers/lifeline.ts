/**
 * A worker's lifeline: how a page learns that its worker has ended when no `error` event says so (out of memory,
 * a crashed process, `close()` from inside). The worker holds a Web Lock for the rest of its life; the page asks
 * for the same lock, which it gets the moment the worker is gone. Unlike a heartbeat, a long synchronous step
 * does not look like a death, and the end is seen at once.
 */

interface LockManagerLike {
  request(name: string, callback: () => Promise<unknown> | unknown): Promise<unknown>;
}

const locks = (): LockManagerLike | null =>
  (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks ?? null;

/** Whether this runtime has Web Locks (browsers since 2022; not Node). */
export const hasLifeline = (): boolean => locks() !== null;

/** Worker side: takes the lock `name` and keeps it until the worker ends; resolves once it is held. */
export function holdLifeline(name: string): Promise<void> {
  const manager = locks();
  if (!manager) return Promise.reject(new Error('lifeline: this runtime has no Web Locks (navigator.locks).'));
  if (typeof name !== 'string' || name === '') {
    return Promise.reject(new Error(`lifeline: expected a lock name, but got ${JSON.stringify(name)}.`));
  }
  return new Promise<void>((held, failed) => {
    manager.request(name, () => {
      held();
      return new Promise(() => {}); // never released: the lock goes with the worker
    }).catch(failed);
  });
}

/**
 * Page side: resolves when the lock `name`, held by a worker through holdLifeline, comes free, which is when that
 * worker has ended. Call it only after holdLifeline resolved in the worker.
 */
export function awaitWorkerEnd(name: string): Promise<void> {
  const manager = locks();
  if (!manager) return new Promise(() => {});
  return manager.request(name, () => undefined).then(() => undefined);
}

/** A lock name no other worker of this origin uses. */
export function lifelineName(): string {
  const random = globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  return `deepseek-moe-tfjs-worker-${random}`;
}
