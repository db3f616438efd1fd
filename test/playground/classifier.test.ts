import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { PlaneClassifier, type PlaneStepReport } from '../../workers/playground/classifier.js';
import { planeGrid, planeTask } from '../../workers/playground/plane.js';

describe('planeTask', () => {
  it.each(['spirals', 'checkerboard', 'rings'] as const)('%s: the same points for the same seed, every class present', (task) => {
    const a = planeTask(task, 300, 3);
    expect(planeTask(task, 300, 3)).toEqual(a);
    expect(planeTask(task, 300, 4).points).not.toEqual(a.points);
    expect(new Set(a.labels).size).toBe(a.nClasses);
    expect(Math.max(...Array.from(a.points, Math.abs))).toBeLessThan(1.3);
  });

  it('labels the checkerboard by its 4 x 4 squares', () => {
    const { points, labels } = planeTask('checkerboard', 200, 1, 0);
    for (let i = 0; i < 200; i++) {
      const [x, y] = [points[2 * i]!, points[2 * i + 1]!];
      expect(labels[i]).toBe((Math.floor((x + 1) * 2) + Math.floor((y + 1) * 2)) % 2);
    }
  });

  it('lays the grid out row by row from the top left', () => {
    expect(Array.from(planeGrid(2))).toEqual([-0.5, 0.5, 0.5, 0.5, -0.5, -0.5, 0.5, -0.5]);
  });

  it.each([
    [{ task: 'moons' }, /expected task to be one of 'spirals', 'checkerboard', 'rings', but got 'moons'/],
    [{ balancing: 'z' }, /expected balancing to be one of 'auxLoss', 'bias', 'none', but got 'z'/],
    [{ batchSize: 0 }, /expected batchSize to be a positive integer, but got 0/],
    [{ learningRate: -1 }, /expected learningRate to be a finite number >= 0, but got -1/],
    [{ topK: 9 }, /topK/],
    [{ colour: 1 }, /unknown field 'colour'/],
  ])('rejects %j', (input, message) => {
    expect(() => new PlaneClassifier(input as never)).toThrow(message);
  });
});

describe.each(['cpu', 'wasm'] as const)('PlaneClassifier on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  async function train(m: PlaneClassifier, steps: number): Promise<{ reports: PlaneStepReport[]; counts: number[] }> {
    const reports: PlaneStepReport[] = [];
    const counts: number[] = [];
    for (let i = 0; i < steps; i++) {
      reports.push(await m.trainStep());
      counts.push(tf.memory().numTensors);
    }
    return { reports, counts };
  }

  it('learns the spirals within 150 steps with a stable tensor count', async () => {
    const m = new PlaneClassifier({ task: 'spirals' });
    const { reports, counts } = await train(m, 150);
    expect(reports[0]!.accuracy).toBeLessThan(0.6);
    const last = reports.slice(-10);
    expect(last.reduce((a, r) => a + r.accuracy, 0) / 10).toBeGreaterThan(0.95);
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(reports[149]!.expertLoad.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const map = await m.routingMap(16);
    expect(map.expert).toHaveLength(256);
    expect(Math.max(...map.expert)).toBeLessThan(8);
    expect(Math.max(...map.predicted)).toBeLessThan(3);
    expect(Math.min(...map.confidence)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...map.confidence)).toBeLessThanOrEqual(1);
    m.dispose();
  });

  it('the selection bias spreads the load that no balancing lets collapse', async () => {
    const spread = async (balancing: 'none' | 'bias') => {
      const m = new PlaneClassifier({ task: 'spirals', balancing, nRoutedExperts: 8 });
      const { reports } = await train(m, 200);
      const map = await m.routingMap(32);
      m.dispose();
      const violation = reports.slice(-20).reduce((a, r) => a + r.maxViolation, 0) / 20;
      return { violation, experts: new Set(map.expert).size, bias: reports[199]!.bias };
    };
    const none = await spread('none');
    const bias = await spread('bias');
    expect(none.bias).toEqual([]);
    expect(bias.bias).toHaveLength(8);
    expect(bias.violation).toBeLessThan(none.violation / 2);
    expect(bias.experts).toBe(8);
    expect(none.experts).toBeLessThan(8);
  });
});
