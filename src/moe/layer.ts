import * as tf from '@tensorflow/tfjs';
import { updateExpertBias, type RoutingStats } from './balance.js';
import { moeConfigDefaults, resolveMoEConfig, type DeepSeekMoEConfig, type MoEConfigInput } from './config.js';
import { moeForward, type MoEWeights } from './moe.js';
import { initializerFor, moeWeightSpecs } from './weights.js';
import { checkWeightSizes } from '../validate.js';

/** The arguments every Keras layer takes (name, trainable, input shape, ...). */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type LayerVariable = ReturnType<tf.layers.Layer['addWeight']>;

/** Arguments of the DeepSeekMoE layer: the MoE config plus the usual Keras layer arguments (name, ...). */
export type DeepSeekMoELayerArgs = MoEConfigInput & LayerArgs;

// Keras layer arguments, and the customObjects that tf.loadLayersModel passes to fromConfig.
const layerArgKeys = ['inputShape', 'batchInputShape', 'batchSize', 'dtype', 'name', 'trainable', 'weights', 'inputDType', 'customObjects'];
const moeKeys = ['dModel', 'nRoutedExperts', 'topK', 'expertHiddenDim', ...Object.keys(moeConfigDefaults)];
/** Fields of layers saved by earlier versions, passed on for resolveMoEConfig to retire (with a note). */
const retiredKeys = ['expertCompute'];

/**
 * The DeepSeekMoE layer for tf.layers models: shared experts plus top-K routed fine-grained experts.
 * Under `model.fit` its balance losses join the training loss through the layer's losses; add
 * `expertBiasUpdate(model)` to the callbacks when `auxFreeBias` is on, so the bias moves after each step.
 */
export class DeepSeekMoE extends tf.layers.Layer {
  static className = 'DeepSeekMoE';
  readonly moeConfig: DeepSeekMoEConfig;
  private vars = new Map<keyof MoEWeights, LayerVariable>();
  private auxLoss: tf.Scalar | null = null;
  private stats: RoutingStats | null = null;
  private pendingCounts: tf.Tensor1D | null = null;

  constructor(args: DeepSeekMoELayerArgs) {
    const moeInput: Record<string, unknown> = {};
    const layerArgs: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(args ?? {})) {
      if (moeKeys.includes(key) || retiredKeys.includes(key)) moeInput[key] = value;
      else if (layerArgKeys.includes(key)) layerArgs[key] = value;
      else throw new Error(`DeepSeekMoE config: unknown field '${key}'; known fields are ${moeKeys.join(', ')}.`);
    }
    const config = resolveMoEConfig(moeInput as MoEConfigInput);
    super(layerArgs as LayerArgs);
    this.moeConfig = config;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const last = shape[shape.length - 1];
    if (last !== this.moeConfig.dModel) {
      throw new Error(`DeepSeekMoE input: expected last dimension dModel = ${this.moeConfig.dModel}, but got shape [${shape}].`);
    }
    const specs = moeWeightSpecs(this.moeConfig);
    checkWeightSizes('DeepSeekMoE config', specs);
    specs.forEach((spec, i) => {
      const init = initializerFor(spec, i, this.moeConfig.seed);
      this.vars.set(spec.name, this.addWeight(spec.name, spec.shape, 'float32', init, undefined, spec.trainable));
    });
    const c = this.moeConfig;
    if (c.alpha1 > 0 || c.alpha2 > 0 || c.seqAlpha > 0 || c.zLossCoef > 0) {
      this.addLoss(() => this.auxLoss ?? tf.scalar(0));
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const training = kwargs?.training ?? false;
      const result = moeForward(x, this.currentWeights(), this.moeConfig, { training });
      // Kept past the tidies (this one and the model's) so the loss closure, model.fit's or a custom loop's, can
      // still read them, and replaced by the next call: a few tensors per layer, whatever the number of steps.
      this.auxLoss?.dispose();
      this.auxLoss = tf.keep(result.losses.total);
      if (this.stats) tf.dispose(this.stats as unknown as tf.TensorContainer);
      for (const t of Object.values(result.stats)) tf.keep(t as tf.Tensor);
      this.stats = result.stats;
      if (training && this.moeConfig.auxFreeBias) {
        const counts = this.pendingCounts ? tf.add(this.pendingCounts, result.expertCounts) : result.expertCounts.clone();
        this.pendingCounts?.dispose();
        this.pendingCounts = tf.keep(counts as tf.Tensor1D);
      }
      return result.output;
    });
  }

  /** Routing statistics of the latest call (tensors; reading them is the only sync). */
  get routingStats(): RoutingStats | null {
    return this.stats;
  }

  /** The balance losses of the latest call, summed. */
  get balanceLoss(): tf.Scalar | null {
    return this.auxLoss;
  }

  /**
   * Applies the bias update (config.biasUpdate) b_i += gamma * sign(meanLoad - load_i) for the load of the training
   * calls since the last update.
   */
  updateBias(): void {
    const bias = this.vars.get('expertBias');
    if (!bias || !this.pendingCounts) return;
    const { biasUpdateSpeed, biasUpdate } = this.moeConfig;
    updateExpertBias(bias.read() as tf.Variable, this.pendingCounts, biasUpdateSpeed, biasUpdate);
    this.pendingCounts.dispose();
    this.pendingCounts = null;
  }

  /** The selection bias values, read asynchronously (empty when auxFreeBias is off). */
  async biasValues(): Promise<Float32Array> {
    const bias = this.vars.get('expertBias');
    return bias ? ((await bias.read().data()) as Float32Array) : new Float32Array(0);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...(this.moeConfig as unknown as tf.serialization.ConfigDict) };
  }

  override dispose(): ReturnType<tf.layers.Layer['dispose']> {
    for (const t of [this.auxLoss, this.pendingCounts]) t?.dispose();
    if (this.stats) tf.dispose(this.stats as unknown as tf.TensorContainer);
    this.auxLoss = this.pendingCounts = this.stats = null;
    return super.dispose();
  }

  private currentWeights(): MoEWeights {
    const read = <T extends tf.Tensor>(name: keyof MoEWeights): T | null => (this.vars.get(name)?.read() as T) ?? null;
    return {
      routerKernel: read<tf.Tensor2D>('routerKernel')!,
      expertW1: read<tf.Tensor3D>('expertW1')!,
      expertW3: read<tf.Tensor3D>('expertW3')!,
      expertW2: read<tf.Tensor3D>('expertW2')!,
      sharedW1: read('sharedW1'),
      sharedW3: read('sharedW3'),
      sharedW2: read('sharedW2'),
      sharedGate: read<tf.Tensor2D>('sharedGate'),
      expertBias: read('expertBias'),
    };
  }
}
tf.serialization.registerClass(DeepSeekMoE);

/** Factory in the tf.layers style: `deepSeekMoE({dModel: 64, nRoutedExperts: 16, topK: 4, expertHiddenDim: 32})`. */
export function deepSeekMoE(args: DeepSeekMoELayerArgs): DeepSeekMoE {
  return new DeepSeekMoE(args);
}

/** Every DeepSeekMoE layer in a model, nested models included. */
export function moeLayersOf(model: tf.LayersModel): DeepSeekMoE[] {
  return model.layers.flatMap((layer) =>
    layer instanceof DeepSeekMoE ? [layer] : layer instanceof tf.LayersModel ? moeLayersOf(layer) : [],
  );
}

/** A model.fit callback that applies the auxiliary-loss-free bias update after every batch. */
export function expertBiasUpdate(model: tf.LayersModel): tf.CustomCallback {
  const layers = moeLayersOf(model);
  return new tf.CustomCallback({
    onBatchEnd: async () => {
      for (const layer of layers) layer.updateBias();
    },
  });
}
