/**
 * A small seeded random generator (mulberry32) whose whole state is one uint32, so a checkpoint can store it
 * and a resumed run draws the same batches and samples as an unbroken one.
 */
export class Rng {
  state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** A uint32 seed from two numbers (murmur3's finaliser): seeds for one draw per (run, step) or (step, block). */
export function mixSeeds(a: number, b: number): number {
  let h = Math.imul((a >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ (b >>> 0);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a 32 of `bytes`, continuing from `h` (the checkpoint's checksum, the weights' seeds by name). */
export function fnv1a(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * n draws of a normal of standard deviation `std` truncated at 2 std (redrawn beyond, as TF's truncatedNormal),
 * from a seeded Rng (Box-Muller): plain arrays, no TF.js.
 */
export function truncatedNormal(n: number, std: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z: number;
    do {
      z = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
    } while (Math.abs(z) > 2);
    out[i] = z * std;
  }
  return out;
}
