/** What the result records about where it ran, in a browser page or worker (Node's is in bench/run.ts). */
import * as tf from '@tensorflow/tfjs';
import type { BenchResult } from './schema.js';

type GpuAdapterInfo = { vendor?: string; architecture?: string; description?: string; device?: string };
type Gpu = { requestAdapter(): Promise<{ info?: GpuAdapterInfo } | null> };

/** The GPU behind the backend as the browser names it (WebGPU adapter info or WebGL's unmasked renderer), or null. */
async function deviceName(backend: string): Promise<string | null> {
  try {
    if (backend === 'webgpu') {
      const adapter = await (navigator as unknown as { gpu?: Gpu }).gpu?.requestAdapter();
      const info = adapter?.info;
      const name = [info?.vendor, info?.architecture, info?.description || info?.device].filter(Boolean).join(' ');
      return name || null;
    }
    if (backend === 'webgl') {
      const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
      const ext = gl?.getExtension('WEBGL_debug_renderer_info');
      return gl && ext ? String(gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : null;
    }
  } catch {
    // A browser that will not say: the result records null.
  }
  return null;
}

export async function browserEnvironment(): Promise<BenchResult['environment']> {
  return {
    runtime: 'browser',
    description: navigator.userAgent,
    cores: navigator.hardwareConcurrency ?? null,
    device: await deviceName(tf.getBackend()),
    tfjsVersion: tf.version_core,
  };
}
