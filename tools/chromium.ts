/**
 * Headless Chromium for the browser tests and benchmarks: Debian's (never a downloaded browser), with WebGL2 and
 * WebGPU on SwiftShader. Set CHROMIUM_PATH to use another build.
 */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking', // the machine's network is closed: no background connections
  '--disable-component-update',
];
