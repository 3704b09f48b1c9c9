// A trainable LoRA adapter in the core's memory: f32 A (rank x in) and B (out x rank) per adapted projection, with gradient buffers of the same shapes.
import { GgmlType, ggmlTypeById } from "../../gguf/ggml-types.js";
import type { Core, Matrix } from "../../core/index.js";
import { baseTensorName, TARGETS, targetDims, type LoraAdapter, type LoraPair, type Target } from "../reference/lora.js";
import type { ReferenceConfig } from "../reference/config.js";

const F32 = ggmlTypeById(GgmlType.F32)!;

export interface TrainPair {
  /** The base tensor it adapts, e.g. blk.0.attn_q.weight. */
  readonly key: string;
  readonly layer: number;
  readonly target: Target;
  readonly rank: number;
  readonly nIn: number;
  readonly nOut: number;
  readonly scale: number;
  readonly a: Matrix;
  readonly b: Matrix;
  /** Gradient buffers (pointers to f32 arrays shaped as a and b). */
  readonly ga: number;
  readonly gb: number;
}

/** An f32 matrix descriptor over memory already in the core. */
export function f32Matrix(ptr: number, rows: number, cols: number): Matrix {
  return { ptr, type: F32, rows, cols, rowBytes: cols * 4 };
}

/** A seeded start drawn straight into f32 (the same numbers as the reference's seededLora, rounded to f32). */
export interface SeededStart {
  readonly seeded: true;
  readonly rank: number;
  readonly alpha: number;
  readonly targets: readonly Target[];
  readonly seed: number;
}

export class TrainableAdapter {
  readonly pairs: readonly TrainPair[];
  private readonly byKey = new Map<string, TrainPair>();

  /**
   * Copies the values of an adapter (rounded to f32) into the core, or draws a seeded start straight into it
   * (no f64 copy: A uniform in +-1/sqrt(nIn), B = 0, drawn in the reference's order).
   */
  constructor(private readonly core: Core, readonly config: ReferenceConfig, init: LoraAdapter | SeededStart) {
    const pairs: TrainPair[] = [];
    // the seeded draws run in the core (train_uniform: mulberry32, the reference's sequence), its state in a word there
    const state = "seeded" in init ? core.arena.alloc(4) : 0;
    if (state) new Uint32Array(core.arena.memory.buffer, state, 1)[0] = (init as SeededStart).seed >>> 0;
    const draw = core.fn("train_uniform");
    const wanted = "seeded" in init ? new Set(init.targets) : undefined;
    for (let l = 0; l < config.nLayer; l++) {
      for (const target of TARGETS) {
        const key = baseTensorName(l, target);
        const [nIn, nOut] = targetDims(config, target);
        let rank: number, scale: number, a: Matrix, b: Matrix;
        if ("seeded" in init) {
          if (!wanted!.has(target)) continue;
          rank = init.rank;
          scale = init.alpha / rank;
          const range = 1 / Math.sqrt(nIn);
          a = f32Matrix(core.arena.alloc(rank * nIn * 4), rank, nIn);
          b = f32Matrix(core.arena.alloc(nOut * rank * 4), nOut, rank);
          draw(a.ptr, rank * nIn, state, range);
          // B = 0 (as +-0, the reference's (2u - 1) * 0), its draws made to keep the reference's sequence
          draw(b.ptr, nOut * rank, state, 0);
        } else {
          const p = init.pairs.get(key);
          if (!p) continue;
          if (p.nIn !== nIn || p.nOut !== nOut) throw new RangeError(`${key}: adapter pair ${p.nOut}x${p.nIn}, the base needs ${nOut}x${nIn}`);
          rank = p.rank;
          scale = p.scale;
          a = core.uploadF32(Float32Array.from(p.a), p.rank, nIn);
          b = core.uploadF32(Float32Array.from(p.b), nOut, p.rank);
        }
        const ga = core.arena.alloc(rank * nIn * 4), gb = core.arena.alloc(nOut * rank * 4);
        const tp: TrainPair = { key, layer: l, target, rank, nIn, nOut, scale, a, b, ga, gb };
        pairs.push(tp);
        this.byKey.set(key, tp);
      }
    }
    if (state) core.arena.release(state);
    if (pairs.length === 0) throw new RangeError("the adapter adapts none of the model's projections");
    if (!("seeded" in init) && pairs.length !== init.pairs.size) throw new RangeError(`${init.pairs.size - pairs.length} adapter pairs name no projection of this model`);
    this.pairs = pairs;
    this.zeroGradients();
  }

  pair(layer: number, target: Target): TrainPair | undefined {
    return this.byKey.get(baseTensorName(layer, target));
  }

  /** Live views of the parameters, A then B of each pair (loraParameters' order). Views die when the core allocates. */
  parameters(): Float32Array[] {
    const f = (m: Matrix) => this.core.arena.f32(m.ptr, m.rows * m.cols);
    return this.pairs.flatMap((p) => [f(p.a), f(p.b)]);
  }

  /** Live views of the gradients in the same order. */
  gradients(): Float32Array[] {
    const f = (ptr: number, n: number) => this.core.arena.f32(ptr, n);
    return this.pairs.flatMap((p) => [f(p.ga, p.rank * p.nIn), f(p.gb, p.nOut * p.rank)]);
  }

  zeroGradients(): void {
    for (const g of this.gradients()) g.fill(0);
  }

  /** The values as a reference adapter (f64 copies). */
  toLora(): LoraAdapter {
    const params = this.parameters();
    const pairs = new Map<string, LoraPair>();
    this.pairs.forEach((p, i) => pairs.set(p.key, { rank: p.rank, nIn: p.nIn, nOut: p.nOut, scale: p.scale, a: Float64Array.from(params[2 * i]), b: Float64Array.from(params[2 * i + 1]) }));
    return { pairs };
  }

  /** Overwrites the values (f32) from arrays in parameters() order. */
  setParameters(values: readonly Float32Array[]): void {
    const params = this.parameters();
    if (values.length !== params.length) throw new RangeError(`${values.length} arrays for ${params.length} parameters`);
    params.forEach((p, i) => {
      if (values[i].length !== p.length) throw new RangeError(`parameter ${i}: ${values[i].length} values for ${p.length}`);
      p.set(values[i]);
    });
  }

  dispose(): void {
    for (const p of this.pairs) {
      this.core.free(p.a);
      this.core.free(p.b);
      this.core.arena.release(p.ga);
      this.core.arena.release(p.gb);
    }
  }
}
