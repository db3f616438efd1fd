/** Hugging Face folders on disk: read one as an HfSource, write one atomically (a temporary folder, then rename). */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { HfSource } from 'deepseek-moe-tfjs/hf';

/** The files of a folder (not its subfolders), read on demand. */
export function readFolder(dir: string): HfSource {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`expected a folder at '${dir}', but there is none.`);
  }
  const names = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile());
  return { names, read: async (name) => new Uint8Array(readFileSync(join(dir, name))) };
}

/**
 * Writes `files` as folder `dir`: into a temporary sibling first, then renamed into place, so a failure leaves no
 * half-written folder. An existing non-empty `dir` is refused unless `replace`, and then swapped out only once the
 * new folder is complete.
 */
export function writeFolder(dir: string, files: Record<string, Uint8Array>, replace = false): void {
  const target = resolve(dir);
  const exists = existsSync(target);
  if (exists && !statSync(target).isDirectory()) {
    throw new Error(`expected '${dir}' to be a folder or not to exist, but it is a file.`);
  }
  if (exists && readdirSync(target).length > 0 && !replace) {
    throw new Error(`'${dir}' exists and is not empty; choose another folder or pass --force to replace it.`);
  }
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
