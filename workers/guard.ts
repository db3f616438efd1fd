import * as Comlink from 'comlink';
import { awaitWorkerEnd, hasLifeline, lifelineName } from './lifeline.js';

/**
 * Wraps a comlink remote so that every call races `failed` (which rejects when the worker dies or cannot load):
 * a dead worker then rejects pending and later calls with its error instead of leaving them hanging.
 */
export function guardRemote<T>(remote: Comlink.Remote<T>, failed: Promise<never>): Comlink.Remote<T> {
  return new Proxy(remote, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function' || typeof key === 'symbol') return value;
      return (...args: unknown[]) => Promise.race([(value as (...a: unknown[]) => Promise<unknown>)(...args), failed]);
    },
  });
}

export interface WatchedWorker<T> {
  api: Comlink.Remote<T>;
  /** Rejects with the readable message once the worker has died; never resolves. */
  failed: Promise<never>;
  /** Ends the worker on purpose: no failure is reported. */
  terminate(): void;
}

/**
 * A page's comlink handle on a web worker whose calls all reject, with a readable message passed to onFailure
 * too, once the worker dies: an `error` event (a throw while loading), an unreadable message, or an end that sends
 * no event at all (out of memory, a crashed process, `close()` from inside), which the worker's lifeline reveals.
 */
export function watchWorker<T extends { lifeline(name: string): Promise<void> }>(
  worker: Worker, onFailure: (message: string) => void,
): WatchedWorker<T> {
  let ended = false;
  let endOnPurpose = (_: Error) => {};
  const failed = new Promise<never>((_, reject) => {
    const fail = (message: string) => {
      if (ended) return;
      ended = true;
      onFailure(message);
      reject(new Error(message));
    };
    endOnPurpose = reject;
    worker.addEventListener('error', (e) => {
      e.preventDefault();
      fail(`The training worker stopped: ${e.message || 'it could not load or crashed'}.`);
    });
    worker.addEventListener('messageerror', () => fail('The training worker sent a message that could not be read.'));
    if (hasLifeline()) {
      const name = lifelineName();
      const remote = Comlink.wrap<T>(worker);
      // Only once the worker holds the lock may the page queue for it: it is granted when the worker has ended.
      void (remote.lifeline(name) as Promise<void>).then(
        () => awaitWorkerEnd(name).then(() => fail('The training worker ended without an error (out of memory, or its process crashed).')),
        () => {}, // a worker that cannot load reports through its error event
      );
    }
  });
  failed.catch(() => {}); // calls race it; unobserved it is not an error
  return {
    api: guardRemote(Comlink.wrap<T>(worker), failed),
    failed,
    terminate() {
      if (!ended) {
        ended = true;
        endOnPurpose(new Error('The training worker was ended by the page.')); // pending calls end too, quietly
      }
      worker.terminate();
    },
  };
}
