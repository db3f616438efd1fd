import * as tf from '@tensorflow/tfjs';

export type BackendName = 'tensorflow' | 'webgpu' | 'webgl' | 'wasm' | 'cpu';

export interface InitBackendOptions {
  /**
   * Where the browser finds the wasm binaries (a directory ending in '/', or a map from file name to URL), passed
   * to `setWasmPaths`. Bundlers do not serve them by themselves; Node needs nothing.
   */
  wasmPaths?: string | Record<string, string>;
}

const runtime = globalThis as { process?: { versions?: { node?: string } }; window?: unknown };
const isNode = runtime.process?.versions?.node != null && runtime.window === undefined;
const nodeOrder: BackendName[] = ['tensorflow', 'wasm', 'cpu'];
const browserOrder: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/** Why the last attempt at each backend failed, for the error message. */
const failures = new Map<BackendName, string>();
const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Loads the module that registers a backend; false when it cannot be loaded here. */
async function register(name: BackendName, options: InitBackendOptions): Promise<boolean> {
  try {
    if (name === 'tensorflow') {
      if (!isNode) return false;
      const optional = '@tensorflow/tfjs-node'; // optional dependency: a variable keeps bundlers from resolving it
      await import(/* @vite-ignore */ optional);
    } else if (name === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths as string);
    } else if (name === 'webgpu') {
      if (isNode || typeof navigator === 'undefined' || !('gpu' in navigator)) return false;
      await import('@tensorflow/tfjs-backend-webgpu');
    }
    return tf.findBackendFactory(name) != null;
  } catch (e) {
    failures.set(name, reason(e));
    return false;
  }
}

/** Settings that keep each backend on its device. */
function tune(name: BackendName): void {
  if (name === 'webgl') {
    // TopK otherwise reads small last dims and large k back to the CPU: a hidden sync in every routing step.
    tf.env().set('TOPK_LAST_DIM_CPU_HANDOFF_SIZE_THRESHOLD', 0);
    tf.env().set('TOPK_K_CPU_HANDOFF_THRESHOLD', 1 << 20);
  }
}

async function trySet(name: BackendName, options: InitBackendOptions): Promise<boolean> {
  if (!(await register(name, options))) return false;
  try {
    return await tf.setBackend(name);
  } catch (e) {
    failures.set(name, reason(e));
    return false;
  }
}

/**
 * Picks, initialises and returns the backend. Without a preference: in Node 'tensorflow' (when the optional
 * @tensorflow/tfjs-node loads), else 'wasm', else 'cpu'; in a browser 'webgpu', 'webgl', 'wasm', 'cpu'.
 * An explicit preference that cannot start throws, naming what can.
 */
export async function initBackend(preference?: BackendName, options: InitBackendOptions = {}): Promise<BackendName> {
  const order = isNode ? nodeOrder : browserOrder;
  if (preference !== undefined) {
    if (![...nodeOrder, ...browserOrder].includes(preference)) {
      throw new Error(`initBackend: expected one of ${[...new Set([...browserOrder, ...nodeOrder])].join(', ')}, but got '${preference}'.`);
    }
    if (await trySet(preference, options)) {
      tune(preference);
      await tf.ready();
      return preference;
    }
    const available: BackendName[] = [];
    for (const name of order) if (name !== preference && (await register(name, options))) available.push(name);
    const cause = failures.get(preference);
    throw new Error(
      `initBackend: backend '${preference}' is not available here${cause ? ` (${cause})` : ''}; available: ${available.join(', ') || 'none'}.`,
    );
  }
  for (const name of order) {
    if (await trySet(name, options)) {
      tune(name);
      await tf.ready();
      return name;
    }
  }
  throw new Error(`initBackend: none of ${order.join(', ')} could start.`);
}
