// The frozen base weights as f64, read through the one GGUF reader and dequantized through the core's type table (any type it decodes).
import { TrainInputError } from "../../errors.js";
import type { GgufFile } from "../../gguf/reader.js";
import { KERNELS } from "../../core/kernels.js";
import type { ReferenceConfig } from "./config.js";

/** A row-major matrix: `rows` rows of `cols` values (a GGUF tensor with ne [cols, rows]). */
export interface Mat {
  readonly rows: number;
  readonly cols: number;
  readonly w: Float64Array;
}

export interface LayerWeights {
  readonly attnNorm: Float64Array;
  readonly wq: Mat;
  readonly wk: Mat;
  readonly wv: Mat;
  readonly wo: Mat;
  readonly bq?: Float64Array;
  readonly bk?: Float64Array;
  readonly bv?: Float64Array;
  readonly bo?: Float64Array;
  readonly ffnNorm: Float64Array;
  readonly gate: Mat;
  readonly up: Mat;
  readonly down: Mat;
}

export interface BaseWeights {
  readonly tokenEmbd: Mat;
  readonly outputNorm: Float64Array;
  /** output.weight, or token_embd when the model ties them. */
  readonly output: Mat;
  readonly layers: readonly LayerWeights[];
}

/** A tensor's values as f64: its bytes decoded by the type table's scalar reference (ggml's to_float, bit for bit). */
export function tensorValues(file: GgufFile, name: string, ne: readonly number[]): Float64Array {
  const t = file.tensor(name);
  if (!t) throw new TrainInputError(file.path, name, "tensor missing");
  const want = [...ne];
  while (want.length > 1 && want[want.length - 1] === 1) want.pop();
  const got = [...t.ne];
  while (got.length > 1 && got[got.length - 1] === 1) got.pop();
  if (got.join() !== want.join()) throw new TrainInputError(file.path, name, `shape [${t.ne.join(", ")}], expected [${ne.join(", ")}]`, t.offset);
  const kernels = KERNELS.get(t.type.id);
  if (!kernels) throw new TrainInputError(file.path, name, `ggml type ${t.type.name} cannot be decoded`, t.offset);
  return Float64Array.from(kernels.ref.dequant(file.readTensor(t), t.nElements));
}

function mat(file: GgufFile, name: string, rows: number, cols: number): Mat {
  return { rows, cols, w: tensorValues(file, name, [cols, rows]) };
}

function optVec(file: GgufFile, name: string, n: number): Float64Array | undefined {
  return file.tensor(name) ? tensorValues(file, name, [n]) : undefined;
}

/** Reads and decodes every base tensor the forward pass uses. */
export function loadBaseWeights(file: GgufFile, c: ReferenceConfig): BaseWeights {
  const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
  const tokenEmbd = mat(file, "token_embd.weight", c.nVocab, c.nEmbd);
  const output = file.tensor("output.weight") ? mat(file, "output.weight", c.nVocab, c.nEmbd) : tokenEmbd;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: tensorValues(file, p + "attn_norm.weight", [c.nEmbd]),
      wq: mat(file, p + "attn_q.weight", qDim, c.nEmbd),
      wk: mat(file, p + "attn_k.weight", kvDim, c.nEmbd),
      wv: mat(file, p + "attn_v.weight", kvDim, c.nEmbd),
      wo: mat(file, p + "attn_output.weight", c.nEmbd, qDim),
      bq: optVec(file, p + "attn_q.bias", qDim),
      bk: optVec(file, p + "attn_k.bias", kvDim),
      bv: optVec(file, p + "attn_v.bias", kvDim),
      bo: optVec(file, p + "attn_output.bias", c.nEmbd),
      ffnNorm: tensorValues(file, p + "ffn_norm.weight", [c.nEmbd]),
      gate: mat(file, p + "ffn_gate.weight", c.nFf, c.nEmbd),
      up: mat(file, p + "ffn_up.weight", c.nFf, c.nEmbd),
      down: mat(file, p + "ffn_down.weight", c.nEmbd, c.nFf),
    });
  }
  return { tokenEmbd, outputNorm: tensorValues(file, "output_norm.weight", [c.nEmbd]), output, layers };
}
