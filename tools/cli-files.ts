/**
 * The command lines' files: every path is checked before any work, nothing is replaced that the tool did not
 * write (a checkpoint file, an export folder carrying its marker) unless told to, and every write is atomic (a
 * temporary sibling, then a rename), so a failure or a kill leaves the previous file whole. Errors name the flag.
 */
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readSync, realpathSync,
  renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { checkpointMagic } from 'deepseek-moe-tfjs/train';

const errorCode = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

/** The bytes of an existing file; a missing path, a folder or an unreadable file is refused naming the flag. */
export function readInputFile(path: string, flag: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`${flag}: expected a file at '${path}', but there is none.`);
  if (statSync(path).isDirectory()) throw new Error(`${flag}: expected a file at '${path}', but it is a folder.`);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`${flag}: cannot read '${path}' (${errorCode(e)}).`);
  }
}

/** Whether the file at `path` starts with a checkpoint's magic bytes. */
export function isCheckpointFile(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(checkpointMagic.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && head.toString('latin1') === checkpointMagic;
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that `path` can be created: its nearest existing ancestor is a writable folder, and `path` itself is not
 * a folder. Creates nothing.
 */
export function checkCreatable(path: string, flag: string): void {
  const target = resolve(path);
  if (existsSync(target) && statSync(target).isDirectory()) {
    throw new Error(`${flag}: expected a file path, but '${path}' is a folder.`);
  }
  let ancestor = dirname(target);
  while (!existsSync(ancestor)) ancestor = dirname(ancestor);
  if (!statSync(ancestor).isDirectory()) {
    throw new Error(`${flag}: cannot create '${path}': '${ancestor}' is a file.`);
  }
  try {
    accessSync(ancestor, constants.W_OK);
  } catch {
    throw new Error(`${flag}: cannot create '${path}': the folder '${ancestor}' is not writable.`);
  }
}

/**
 * Checks a checkpoint file to be written: creatable, and when it exists, replaced only with `force` and only if it
 * is a checkpoint (any other file is never replaced). `hint` says how to keep the existing one.
 */
export function checkCheckpointOutput(path: string, flag: string, force: boolean, hint: string): void {
  checkCreatable(path, flag);
  if (!existsSync(path)) return;
  if (!isCheckpointFile(path)) {
    throw new Error(`${flag}: '${path}' exists and is not a checkpoint; it is never replaced (choose another path).`);
  }
  if (!force) throw new Error(`${flag}: '${path}' exists; ${hint}, or --force to replace it.`);
}

/** Temporary files of writes in flight, removed if the process exits meanwhile (a second Ctrl-C). */
const inFlight = new Set<string>();
process.once('exit', () => {
  for (const temp of inFlight) rmSync(temp, { force: true });
});

/** Writes `bytes` to `path` through a temporary sibling and a rename: the old file stays whole until then. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  inFlight.add(temp);
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, path);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  } finally {
    inFlight.delete(temp);
  }
}

/**
 * Whether two paths name the same file: the same real path, or (both existing) the same device and inode, which
 * also catches another spelling on a case-insensitive file system and hard links.
 */
export function isSameFile(a: string, b: string): boolean {
  if (realOrResolved(a) === realOrResolved(b)) return true;
  if (!existsSync(a) || !existsSync(b)) return false;
  const [x, y] = [statSync(a), statSync(b)];
  return x.dev === y.dev && x.ino === y.ino;
}

/** The real path of an existing path, or its resolved path when it does not exist. */
export const realOrResolved = (path: string) => (existsSync(path) ? realpathSync(path) : resolve(path));

/** Whether `inner` is `outer` or lies inside it (both real or resolved). */
export function isWithin(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}
