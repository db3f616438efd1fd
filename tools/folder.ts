/**
 * Hugging Face folders on disk: read one as an HfSource; write one atomically (a temporary sibling, then a rename)
 * with a marker file naming what it wrote, so that --force replaces only a folder this tool wrote earlier.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync }
  from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { HfSource } from 'deepseek-moe-tfjs/hf';
import { checkCreatable, isWithin, realOrResolved } from './cli-files.js';

/** The marker file an export folder carries: the files the export wrote, and by what. */
export const exportMarker = 'deepseek-moe-export.json';
const markerFormat = 'deepseek-moe-tfjs/export';

/** The marker's bytes for a folder of `names`. */
export function exportMarkerOf(names: string[], source: string): Uint8Array {
  const marker = { format: markerFormat, files: [...names].sort(), source };
  return new TextEncoder().encode(`${JSON.stringify(marker, null, 2)}\n`);
}

/** The regular files of a folder (not its subfolders; links that lead nowhere are left out), read on demand. */
export function readFolder(dir: string): HfSource {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`expected a folder at '${dir}', but there is none.`);
  }
  const isFile = (name: string) => {
    try {
      return statSync(join(dir, name)).isFile();
    } catch {
      return false; // a dangling link: not a file of the folder
    }
  };
  const names = readdirSync(dir).filter(isFile);
  return { names, read: async (name) => new Uint8Array(readFileSync(join(dir, name))) };
}

/** Why a non-empty folder is not an earlier export (null when it is one): what --force may replace. */
function notAnExport(dir: string): string | null {
  const entries = readdirSync(dir);
  if (!entries.includes(exportMarker)) return `it has no ${exportMarker}, so this tool did not write it`;
  let listed: unknown;
  try {
    listed = JSON.parse(readFileSync(join(dir, exportMarker), 'utf8'));
  } catch {
    return `its ${exportMarker} is not readable JSON`;
  }
  const files = (listed as { format?: unknown; files?: unknown }).files;
  if ((listed as { format?: unknown }).format !== markerFormat || !Array.isArray(files)) {
    return `its ${exportMarker} was not written by this tool`;
  }
  const other = entries.find((n) => n !== exportMarker && (!files.includes(n) || !lstatSync(join(dir, n)).isFile()));
  return other === undefined ? null : `it holds '${other}', which the export did not write`;
}

/**
 * Checks the folder an export will write, before any work: creatable; when it exists, a folder; when it holds
 * anything, replaced only with `force` and only if it is an earlier export (its marker lists every file in it);
 * never the folder the input lives in, nor one holding the current directory.
 */
export function checkExportFolder(dir: string, force: boolean, inputs: string[]): void {
  const target = resolve(dir);
  if (existsSync(target) && !statSync(target).isDirectory()) {
    throw new Error(`--out: expected a folder or a new path, but '${dir}' is a file.`);
  }
  if (!existsSync(target)) checkCreatable(join(target, exportMarker), '--out');
  const real = realOrResolved(target);
  for (const input of inputs) {
    if (isWithin(realOrResolved(input), real)) {
      throw new Error(`--out: '${dir}' holds the input '${input}'; write the export to another folder.`);
    }
  }
  if (isWithin(realOrResolved(process.cwd()), real)) {
    throw new Error(`--out: '${dir}' holds the current directory; write the export to another folder.`);
  }
  if (!existsSync(target) || readdirSync(target).length === 0) return;
  if (!force) throw new Error(`--out: '${dir}' exists and is not empty; choose another folder, or pass --force to ` +
    'replace an earlier export.');
  const why = notAnExport(target);
  if (why !== null) throw new Error(`--out: --force replaces only an earlier export, and '${dir}' is not one: ${why}.`);
}

/**
 * Writes `files` as folder `dir`: into a temporary sibling first, then renamed into place, so a failure leaves no
 * half-written folder and the old one whole. Call checkExportFolder first: this replaces an existing folder.
 */
export function writeFolder(dir: string, files: Record<string, Uint8Array>): void {
  const target = resolve(dir);
  const exists = existsSync(target);
  mkdirSync(dirname(target), { recursive: true });
  const temp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  rmSync(temp, { recursive: true, force: true });
  try {
    mkdirSync(temp);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(temp, name), bytes);
    if (exists) {
      const old = `${temp}.old`;
      renameSync(target, old);
      renameSync(temp, target);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(temp, target);
    }
  } catch (e) {
    rmSync(temp, { recursive: true, force: true });
    throw e;
  }
}
