/** 2-D toy classification tasks for the routing playground: points in [-1, 1]^2 with integer labels. */
import { Rng } from 'deepseek-moe-tfjs/train';

export type PlaneTaskName = 'spirals' | 'checkerboard' | 'rings';
export const planeTaskNames: readonly PlaneTaskName[] = ['spirals', 'checkerboard', 'rings'];

export interface PlaneData {
  /** Point coordinates, row-major: [N, 2]. */
  points: Float32Array;
  /** Class of each point: [N]. */
  labels: Int32Array;
  nClasses: number;
}

/** A standard normal draw (Box-Muller) from our seeded generator. */
function normal(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Class and position of one point of a task. */
function drawPoint(task: PlaneTaskName, rng: Rng, noise: number): [number, number, number] {
  if (task === 'spirals') {
    // Three interleaved arms, each turning 1.25 times.
    const label = rng.int(3);
    const r = 0.08 + 0.85 * rng.next();
    const angle = (2 * Math.PI * label) / 3 + 2.5 * Math.PI * r;
    return [r * Math.cos(angle) + noise * normal(rng), r * Math.sin(angle) + noise * normal(rng), label];
  }
  const x = 2 * rng.next() - 1;
  const y = 2 * rng.next() - 1;
  if (task === 'checkerboard') {
    // A 4 x 4 board of two colours.
    const label = (Math.floor((x + 1) * 2) + Math.floor((y + 1) * 2)) % 2;
    return [x + noise * normal(rng), y + noise * normal(rng), label];
  }
  // Three rings around the centre.
  const label = Math.min(2, Math.floor(Math.hypot(x, y) / 0.4));
  return [x + noise * normal(rng), y + noise * normal(rng), label];
}

/** N points of a task, the same for the same seed. */
export function planeTask(task: PlaneTaskName, nPoints: number, seed: number, noise = 0.03): PlaneData {
  if (!planeTaskNames.includes(task)) {
    throw new Error(`planeTask: expected task to be one of ${planeTaskNames.join(', ')}, but got '${task}'.`);
  }
  if (!Number.isInteger(nPoints) || nPoints < 1) {
    throw new Error(`planeTask: expected nPoints to be a positive integer, but got ${nPoints}.`);
  }
  const rng = new Rng(seed);
  const points = new Float32Array(2 * nPoints);
  const labels = new Int32Array(nPoints);
  for (let i = 0; i < nPoints; i++) {
    const [x, y, label] = drawPoint(task, rng, noise);
    points[2 * i] = x;
    points[2 * i + 1] = y;
    labels[i] = label;
  }
  return { points, labels, nClasses: task === 'checkerboard' ? 2 : 3 };
}

/** The centres of an R x R grid over [-1, 1]^2, row by row from the top (y = 1) down: [R * R, 2]. */
export function planeGrid(resolution: number): Float32Array {
  const R = resolution;
  const grid = new Float32Array(2 * R * R);
  for (let row = 0; row < R; row++) {
    for (let col = 0; col < R; col++) {
      const i = row * R + col;
      grid[2 * i] = -1 + (2 * col + 1) / R;
      grid[2 * i + 1] = 1 - (2 * row + 1) / R;
    }
  }
  return grid;
}
