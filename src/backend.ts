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
/** Asked for by name, Node also runs webgpu, through Dawn (the optional `webgpu` package). */
const nodeExplicit: BackendName[] = [...nodeOrder, 'webgpu'];
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
      if (isNode) await installDawn();
      else if (typeof navigator === 'undefined' || !('gpu' in navigator)) return false;
      await import('@tensorflow/tfjs-backend-webgpu');
    }
    return tf.findBackendFactory(name) != null;
  } catch (e) {
    failures.set(name, reason(e));
    return false;
  }
}

/**
 * WebGPU in Node: Dawn's bindings from the optional `webgpu` package, installed as `navigator.gpu` before TF.js's
 * webgpu backend loads. Dawn needs a Vulkan loader and driver (Linux: libvulkan1 and the GPU's driver; with no GPU,
 * Chromium's SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json).
 */
async function installDawn(): Promise<void> {
  const runtimeGlobals = globalThis as { navigator?: { gpu?: unknown } };
  if (runtimeGlobals.navigator?.gpu !== undefined) return;
  const optional = 'webgpu'; // optional peer dependency: a variable keeps bundlers from resolving it
  let dawn: { create: (flags: string[]) => { requestAdapter(): Promise<unknown> }; globals: object };
  try {
    dawn = (await import(/* @vite-ignore */ optional)) as typeof dawn;
  } catch {
    throw new Error("WebGPU in Node needs the optional 'webgpu' package (Dawn): npm install webgpu");
  }
  const gpu = dawn.create([]);
  if ((await gpu.requestAdapter()) === null) {
    throw new Error('Dawn found no GPU adapter (is a Vulkan loader and driver installed? see initBackend)');
  }
  Object.assign(globalThis, dawn.globals);
  if (runtimeGlobals.navigator === undefined) runtimeGlobals.navigator = { gpu };
  else Object.defineProperty(runtimeGlobals.navigator, 'gpu', { value: gpu, configurable: true });
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
 * @tensorflow/tfjs-node loads), else 'wasm', else 'cpu'; in a browser 'webgpu', 'webgl', 'wasm', 'cpu'. In Node,
 * 'webgpu' asked for by name runs through Dawn when the optional `webgpu` package is installed.
 * An explicit preference that cannot start throws, naming what can.
 */
export async function initBackend(preference?: BackendName, options: InitBackendOptions = {}): Promise<BackendName> {
  const order = isNode ? nodeOrder : browserOrder;
  if (preference !== undefined) {
    if (![...nodeExplicit, ...browserOrder].includes(preference)) {
      throw new Error(`initBackend: expected one of ${[...new Set([...browserOrder, ...nodeOrder])].join(', ')}, but got '${preference}'.`);
    }
    if (await trySet(preference, options)) {
      tune(preference);
      await tf.ready();
      return preference;
    }
    const available: BackendName[] = [];
    for (const name of isNode ? nodeExplicit : order) {
      if (name !== preference && (await register(name, options))) available.push(name);
    }
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
