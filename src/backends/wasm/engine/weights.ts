// Loads a llama-family model's tensors from a model source into core memory: matrices for products, f32 vectors for norms and biases.
import type { Core } from "../../../core/core.js";
import type { Matrix } from "../../../core/types.js";
import { EngineConfig, EngineConfigError, ModelSource, TensorEntry } from "./config.js";

/** An f32 vector in core memory. */
export interface Vec {
  readonly ptr: number;
  readonly n: number;
}

export interface LayerWeights {
  attnNorm: Vec;
  wq: Matrix;
  wk: Matrix;
  wv: Matrix;
  wo: Matrix;
  bq?: Vec;
  bk?: Vec;
  bv?: Vec;
  bo?: Vec;
  ffnNorm: Vec;
  gate: Matrix;
  up: Matrix;
  down: Matrix;
}

export interface ModelWeights {
  tokenEmbd: Matrix;
  outputNorm: Vec;
  /** The output projection, or token_embd when the model ties them. */
  output: Matrix;
  tiedOutput: boolean;
  layers: LayerWeights[];
  /** Every product matrix by its GGUF tensor name (for attaching adapters). */
  byName: Map<string, Matrix>;
  bytes: number;
}

function entry(src: ModelSource, name: string): TensorEntry {
  const t = src.tensor(name);
  if (!t) throw new EngineConfigError(src.path, name, "tensor missing");
  return t;
}

function matrix(core: Core, src: ModelSource, name: string, rows: number, cols: number): Matrix {
  const t = entry(src, name);
  if (t.ne[0] !== cols || (t.ne[1] ?? 1) !== rows) {
    throw new EngineConfigError(src.path, name, `shape [${t.ne.join(", ")}], expected [${cols}, ${rows}]`);
  }
  return core.upload(t.type.id, src.readTensor(t), rows, cols);
}

function vector(core: Core, src: ModelSource, name: string, n: number): Vec {
  const t = entry(src, name);
  if (t.ne[0] !== n || t.ne.slice(1).some((d) => d !== 1)) throw new EngineConfigError(src.path, name, `shape [${t.ne.join(", ")}], expected [${n}]`);
  return { ptr: core.arena.put(core.dequantize(t.type.id, src.readTensor(t), n)), n };
}

function optVector(core: Core, src: ModelSource, name: string, n: number): Vec | undefined {
  return src.tensor(name) ? vector(core, src, name, n) : undefined;
}

export interface WeightOptions {
  /**
   * Repack product matrices whose type has a repacked layout in the type table (Q4_0: groups of four rows for
   * the four-rows-per-pass kernel) at load; default true. Products give the same bits either way.
   */
  repackQ4_0?: boolean;
}

export function loadWeights(core: Core, src: ModelSource, c: EngineConfig, onProgress?: (p: number) => void, opts: WeightOptions = {}): ModelWeights {
  const byName = new Map<string, Matrix>();
  let bytes = 0;
  const mat = (name: string, rows: number, cols: number): Matrix => {
    let m = matrix(core, src, name, rows, cols);
    // token_embd rows are also read one at a time for the embedding: it keeps the plain layout
    if ((opts.repackQ4_0 ?? true) && name !== "token_embd.weight") m = core.repack(m);
    byName.set(name, m);
    bytes += m.rows * m.rowBytes;
    return m;
  };
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  const tokenEmbd = mat("token_embd.weight", c.nVocab, c.nEmbd);
  const tiedOutput = !src.tensor("output.weight");
  const output = tiedOutput ? tokenEmbd : mat("output.weight", c.nVocab, c.nEmbd);
  const outputNorm = vector(core, src, "output_norm.weight", c.nEmbd);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: vector(core, src, p + "attn_norm.weight", c.nEmbd),
      wq: mat(p + "attn_q.weight", qDim, c.nEmbd),
      wk: mat(p + "attn_k.weight", kvDim, c.nEmbd),
      wv: mat(p + "attn_v.weight", kvDim, c.nEmbd),
      wo: mat(p + "attn_output.weight", c.nEmbd, qDim),
      bq: optVector(core, src, p + "attn_q.bias", qDim),
      bk: optVector(core, src, p + "attn_k.bias", kvDim),
      bv: optVector(core, src, p + "attn_v.bias", kvDim),
      bo: optVector(core, src, p + "attn_output.bias", c.nEmbd),
      ffnNorm: vector(core, src, p + "ffn_norm.weight", c.nEmbd),
      gate: mat(p + "ffn_gate.weight", c.nFf, c.nEmbd),
      up: mat(p + "ffn_up.weight", c.nFf, c.nEmbd),
      down: mat(p + "ffn_down.weight", c.nEmbd, c.nFf),
    });
    onProgress?.((l + 1) / c.nLayer);
  }
  return { tokenEmbd, outputNorm, output, tiedOutput, layers, byName, bytes };
}
