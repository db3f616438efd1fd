/**
 * The per-token reductions of the scores on webgl: the router's entropy and the balance losses' weighted
 * affinities, one fragment per token; their gradient takes two programs (each token's score sum and weighted
 * sum, then one fragment per (t, j)), so that no fragment sums a row of E more than twice.
 */
import { glFloat, type GLKernel, type GLProgram } from './program.js';

/** GLSL helpers over scores [T, E] and, when given, weights [B, E]: a token's score sum and weighted sum. */
function helpers(T: number, E: number, normalise: boolean, B = 0): string {
  const sum = normalise ? `
    float s = 0.0;
    for (int j = 0; j < ${E}; j++) s += getScores(t, j);
    return s;` : 'return 1.0;';
  const weighted = B === 0 ? '' : `
    int blockOf(int t) { return t * ${B} / ${T}; }
    float weighted(int t) {
      int b = blockOf(t);
      float acc = 0.0;
      for (int j = 0; j < ${E}; j++) acc += getWeights(b, j) * getScores(t, j);
      return acc;
    }`;
  return `float scoreSum(int t) {${sum}
    }${weighted}`;
}

export const routerEntropy: GLKernel<'routerEntropy'> = ({ scores }, { normalise }, backend) => {
  const [T, E] = scores!.shape as [number, number];
  const program: GLProgram = {
    variableNames: ['scores'],
    outputShape: [T],
    userCode: `
      ${helpers(T, E, normalise)}
      void main() {
        int t = getOutputCoords();
        float sum = scoreSum(t);
        float h = 0.0;
        for (int j = 0; j < ${E}; j++) {
          float p = getScores(t, j) / sum;
          h -= p * log(max(p, 1e-12));
        }
        setOutput(h);
      }`,
  };
  return backend.runWebGLProgram(program, [scores!], 'float32');
};

export const affinityBalance: GLKernel<'affinityBalance'> = ({ scores, weights }, { normalise, scale }, backend) => {
  const [T, E] = scores!.shape as [number, number];
  const program: GLProgram = {
    variableNames: ['scores', 'weights'],
    outputShape: [T],
    userCode: `
      ${helpers(T, E, normalise, weights!.shape[0]!)}
      void main() {
        int t = getOutputCoords();
        setOutput(${glFloat(scale)} * weighted(t) / scoreSum(t));
      }`,
  };
  return backend.runWebGLProgram(program, [scores!, weights!], 'float32');
};

export const affinityBalanceGrad: GLKernel<'affinityBalanceGrad'> = ({ dy, scores, weights }, attrs, backend) => {
  const { normalise } = attrs;
  const scale = glFloat(attrs.scale);
  const [T, E] = scores!.shape as [number, number];
  const B = weights!.shape[0]!;
  // sums[t] = (R_t, L_t): the score sum and the token's value (0 when not normalising, where it drops out).
  const sums = backend.runWebGLProgram({
    variableNames: ['scores', 'weights'],
    outputShape: [T, 2],
    userCode: `
      ${helpers(T, E, normalise, B)}
      void main() {
        ivec2 tc = getOutputCoords();
        float sum = scoreSum(tc.x);
        setOutput(tc.y == 0 ? sum : ${normalise ? `${scale} * weighted(tc.x) / sum` : '0.0'});
      }`,
  }, [scores!, weights!], 'float32');
  const grad = backend.runWebGLProgram({
    variableNames: ['dy', 'weights', 'sums'],
    outputShape: [T, E],
    userCode: `
      void main() {
        ivec2 tj = getOutputCoords();
        int t = tj.x;
        float w = ${scale} * getWeights(t * ${B} / ${T}, tj.y);
        setOutput(getDy() * (w - getSums(t, 1)) / getSums(t, 0));
      }`,
  }, [dy!, weights!, sums], 'float32');
  backend.disposeIntermediateTensorInfo(sums);
  return grad;
};
