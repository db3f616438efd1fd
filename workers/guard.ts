import type * as Comlink from 'comlink';

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
