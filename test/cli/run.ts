/** Runs the command-line tools as a user does, from any working directory, and fingerprints folders around them. */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

export const root = new URL('../../', import.meta.url).pathname;
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const env = { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.json') };

export type CliName = 'train' | 'eval' | 'export' | 'import' | 'route' | 'upcycle';

/** `npm run <name> -- ...args` run synchronously in `cwd` (the repository by default). */
export function cli(name: CliName, args: string[], cwd = root): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', tsx, join(root, 'cli', `${name}.ts`), ...args], {
    cwd, env, encoding: 'utf8', timeout: 120_000,
  });
}

/** `npm run -s <name> -- ...args` started in its own process group, as a terminal runs it (for signals). */
export function npmRun(name: CliName, args: string[]) {
  const child = spawn('npm', ['run', '-s', name, '--', ...args], { cwd: root, env, detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close': npm has exited and its output pipes are closed, so the tool (which holds them too) has ended as well.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('close', (code, signal) => done({ code, signal })));
  return {
    /** Sends `signal` to the whole process group: npm and the tool, as Ctrl-C in a terminal does. */
    signal: (signal: NodeJS.Signals) => process.kill(-child.pid!, signal),
    output: () => ({ stdout, stderr }),
    exited,
  };
}

/** Resolves once `test` holds on the output, polling. */
export async function waitFor(test: () => boolean, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every entry under `dir` (files by content hash, links by target, folders by name), minus `skip` paths. */
export function fingerprint(dir: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (skip.some((s) => path === s || path.startsWith(`${s}/`))) continue;
      const key = relative(dir, path);
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) out[key] = `-> ${readlinkSync(path)}`;
      else if (stat.isDirectory()) {
        out[key] = 'folder';
        walk(path);
      } else out[key] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** A failure as the tools report bad input: exit code 2, the usage, one error line, no stack trace. */
export function usageError(r: SpawnSyncReturns<string>): string {
  const tensorflowLog = /absl|cpu_feature_guard|AVX|rebuild TensorFlow|^WARNING: All log/; // libtensorflow's own
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !tensorflowLog.test(l));
  const error = lines.filter((l) => l.startsWith('error: '));
  if (r.status !== 2 || error.length !== 1 || lines.some((l) => /^\s+at .*:\d+:\d+\)?$/.test(l))) {
    throw new Error(`expected exit code 2 and one error line, but got ${r.status}:\n${r.stderr}`);
  }
  return error[0]!;
}
