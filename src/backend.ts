import * as tf from '@tensorflow/tfjs';

/** TF.js backends by their registered names ('tensorflow' is tfjs-node's native one). */
export type BackendName = 'tensorflow' | 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** Options of initBackend. */
export interface InitBackendOptions {
  /**
   * Where the browser finds the wasm binaries (a directory ending in '/', or a map from file name to URL), passed
   * to `setWasmPaths`. Bundlers do not serve them by themselves; Node needs nothing.
   */
  wasmPaths?: string | Record<string, string>;
}

/** Whether a backend can start here, and if not, why (in words a visitor can read). */
export interface BackendAvailability {
  name: BackendName;
  available: boolean;
  reason?: string;
  /** The GPU is emulated on the CPU (SwiftShader, a fallback adapter): usually slower than wasm. */
  software?: boolean;
  /** What the runtime calls the device, when it says. */
  device?: string;
}

interface GpuAdapterInfo { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean }
const runtime = globalThis as {
  process?: { versions?: { node?: string } };
  window?: unknown;
  navigator?: { gpu?: { requestAdapter(): Promise<unknown> } };
};
/** Node, not a browser (a worker thread counts as Node; a web worker does not). */
export const isNode = runtime.process?.versions?.node != null && runtime.window === undefined;
/**
 * The one list of backends: what each runtime may offer, in initBackend's order of preference. In Node, webgpu
 * (through Dawn, the optional `webgpu` package) starts only when asked for by name, so it comes last.
 */
export const backendOrder: Readonly<Record<'node' | 'browser', readonly BackendName[]>> = Object.freeze({
  node: Object.freeze(['tensorflow', 'wasm', 'cpu', 'webgpu'] as BackendName[]),
  browser: Object.freeze(['webgpu', 'webgl', 'wasm', 'cpu'] as BackendName[]),
});
const nodeExplicit = backendOrder.node;
const nodeOrder = nodeExplicit.filter((b) => b !== 'webgpu');
const browserOrder = backendOrder.browser;

/** The backends this runtime may offer, in initBackend's order of preference. */
export function backendNames(): BackendName[] {
  return [...(isNode ? nodeExplicit : browserOrder)];
}

/** Renderer names of GPUs emulated on the CPU. */
const softwareRenderer = /swiftshader|llvmpipe|software|microsoft basic render/i;

/**
 * Whether `name` can start here, cheaply: nothing is registered or initialised (starting one may still fail, and
 * initBackend says why). On the GPU backends it names the device and whether it is emulated.
 */
export async function backendAvailability(name: BackendName): Promise<BackendAvailability> {
  const no = (reason: string): BackendAvailability => ({ name, available: false, reason });
  try {
    if (name === 'cpu') return { name, available: true };
    if (name === 'wasm') return typeof WebAssembly === 'object' ? { name, available: true } : no('this runtime has no WebAssembly');
    if (name === 'tensorflow') {
      if (!isNode) return no('tfjs-node runs only in Node');
      await supplyUtilHelpers();
      const optional = '@tensorflow/tfjs-node'; // optional: a variable keeps bundlers from resolving it
      await import(/* @vite-ignore */ optional);
      return { name, available: true };
    }
    if (name === 'webgpu') {
      if (isNode) {
        const optional = 'webgpu'; // Dawn's bindings, an optional peer dependency
        const dawn = (await import(/* @vite-ignore */ optional).catch(() => null)) as
          | { create: (flags: string[]) => { requestAdapter(): Promise<{ info?: GpuAdapterInfo } | null> } }
          | null;
        if (!dawn) return no("WebGPU in Node needs the optional 'webgpu' package (Dawn): npm install webgpu");
        const adapter = await dawn.create([]).requestAdapter();
        if (!adapter) return no('Dawn found no GPU adapter (is a Vulkan loader and driver installed? see initBackend)');
        const device = [adapter.info?.vendor, adapter.info?.architecture, adapter.info?.description].filter(Boolean).join(' ');
        return { name, available: true, device, software: softwareRenderer.test(device) };
      }
      if (!runtime.navigator?.gpu) return no('this browser has no WebGPU (navigator.gpu is missing)');
      const adapter = (await runtime.navigator.gpu.requestAdapter()) as { info?: GpuAdapterInfo } | null;
      if (!adapter) return no('WebGPU is present, but the browser found no GPU adapter');
      const info = adapter.info ?? {};
      const device = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
      return { name, available: true, device, software: info.isFallbackAdapter === true || softwareRenderer.test(device) };
    }
    if (isNode) return no('webgl needs a browser');
    if (typeof OffscreenCanvas === 'undefined') return no('no OffscreenCanvas here, so no WebGL');
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2') ?? new OffscreenCanvas(1, 1).getContext('webgl');
    if (!gl) return no('the browser refused a WebGL context');
    const debug = gl.getExtension('WEBGL_debug_renderer_info'); // the unmasked name; plain RENDERER says "WebKit WebGL"
    const device = String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
    return { name, available: true, device, software: softwareRenderer.test(device) };
  } catch (e) {
    return no(reason(e));
  }
}

/** Why the last attempt at each backend failed, for the error message. */
const failures = new Map<BackendName, string>();
const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Loads the module that registers a backend; false when it cannot be loaded here. */
async function register(name: BackendName, options: InitBackendOptions): Promise<boolean> {
  try {
    if (name === 'tensorflow') {
      if (!isNode) return false;
      await supplyUtilHelpers();
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

/** The `util` helpers tfjs-node 4.22 calls (dist/: `isNullOrUndefined` five times, `isArray` once). */
const utilHelpers: Record<string, (v: unknown) => boolean> = {
  isArray: Array.isArray,
  isNullOrUndefined: (v) => v === null || v === undefined,
};

/**
 * tfjs-node 4.22 calls `util.isNullOrUndefined`, which Node 23 removed (its model.fit died with
 * "isNullOrUndefined is not a function" on Node 24; the upstream fix is unreleased). Supplies the missing ones on
 * Node's own `util` object before tfjs-node loads; on Node 22 and older nothing is missing and nothing changes.
 */
async function supplyUtilHelpers(): Promise<void> {
  const builtin = 'node:util'; // a variable keeps bundlers from resolving it
  const util = ((await import(/* @vite-ignore */ builtin)) as { default: Record<string, unknown> }).default;
  for (const [key, helper] of Object.entries(utilHelpers)) if (typeof util[key] !== 'function') util[key] = helper;
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
      `initBackend: backend '${preference}' is not available here${cause ? ` (${cause})` : ''}; available: ` +
        `${available.join(', ') || 'none'}.`,
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
