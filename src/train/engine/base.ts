// The frozen base in the wasm core: every weight uploaded in its own ggml type (no dequantized copy; an untied token embedding stays in the file, its rows read per batch), norms and biases as f32, the reference's configuration.
import { TrainInputError } from "../../errors.js";
import { closeSync, openSync, readSync } from "node:fs";
import type { GgufFile, GgufTensorInfo } from "../../gguf/reader.js";
import type { GgmlTypeTraits } from "../../gguf/ggml-types.js";
import { kernelsFor, type Core, type Matrix } from "../../core/index.js";
import { TRANSPOSED_KERNELS } from "../../core/transposed.js";
import { referenceConfig, type ReferenceConfig } from "../reference/config.js";
import { tensorValues } from "../reference/weights.js";
import type { Target } from "../reference/lora.js";

export interface BaseLayer {
  readonly attnNorm: Float32Array;
  readonly ffnNorm: Float32Array;
  /** The seven projections by target name. */
  readonly w: Readonly<Record<Target, Matrix>>;
  readonly bias: Partial<Record<"q" | "k" | "v" | "o", Float32Array>>;
}

/**
 * Token embedding rows left in the file (an untied embedding is only looked up, a row per token, so it need not
 * be resident): the open file, where the tensor starts, and its row layout.
 */
export interface FileRows {
  readonly path: string;
  readonly fd: number;
  readonly offset: number;
  readonly type: GgmlTypeTraits;
  readonly rows: number;
  readonly cols: number;
  readonly rowBytes: number;
}

export interface FrozenBase {
  readonly config: ReferenceConfig;
  /** Resident in the core when the output is tied to it (or the file is in memory); else read row by row from the file. */
  readonly tokenEmbd: Matrix | FileRows;
  readonly output: Matrix;
  readonly outputNorm: Float32Array;
  readonly layers: readonly BaseLayer[];
  /** Bytes of weights resident in the core. */
  readonly bytes: number;
}

/**
 * Reads a tensor's bytes from the file straight into the core's memory: no transient copy on the JS side, so the
 * peak memory of loading is the weights themselves.
 */
function readInto(core: Core, fd: number, file: GgufFile, t: GgufTensorInfo, rows: number, cols: number): Matrix {
  const rowBytes = (cols / t.type.blockSize) * t.type.typeSize;
  const n = rowBytes * rows;
  const ptr = core.arena.alloc(n);
  try {
    for (let done = 0; done < n;) {
      // a fresh view per read: views die when the memory grows, and nothing here allocates in between
      const got = readSync(fd, core.arena.u8(ptr + done, n - done), 0, Math.min(n - done, 1 << 26), t.offset + done);
      if (got <= 0) throw new TrainInputError(file.path, t.name, `short read at byte ${t.offset + done}`, t.offset);
      done += got;
    }
  } catch (e) {
    core.arena.release(ptr);
    throw e;
  }
  return { ptr, type: t.type, rows, cols, rowBytes };
}

/** Uploads one weight, checking its shape and that the backward pass can read its type. */
function weight(core: Core, file: GgufFile, name: string, rows: number, cols: number, transposed: boolean, fd?: number): Matrix {
  const t = file.tensor(name);
  if (!t) throw new TrainInputError(file.path, name, "tensor missing");
  if (t.ne[0] !== cols || t.nElements !== rows * cols) throw new TrainInputError(file.path, name, `shape [${t.ne.join(", ")}], expected [${cols}, ${rows}]`, t.offset);
  if (transposed && !TRANSPOSED_KERNELS.has(t.type.id)) {
    throw new TrainInputError(file.path, name, `ggml type ${t.type.name}: training reads F32, F16, Q4_0, Q8_0, Q4_K and Q6_K weights`, t.offset);
  }
  kernelsFor(t.type.id, "product");
  if (fd !== undefined && t.byteSize === ((cols / t.type.blockSize) * t.type.typeSize) * rows) return readInto(core, fd, file, t, rows, cols);
  return core.upload(t.type.id, file.readTensor(t), rows, cols);
}

/** The token embedding left in the file (checked as `weight` checks it): its rows are read per batch. */
function fileRows(file: GgufFile, fd: number, c: ReferenceConfig): FileRows {
  const name = "token_embd.weight", t = file.tensor(name);
  if (!t) throw new TrainInputError(file.path, name, "tensor missing");
  if (t.ne[0] !== c.nEmbd || t.nElements !== c.nVocab * c.nEmbd) throw new TrainInputError(file.path, name, `shape [${t.ne.join(", ")}], expected [${c.nEmbd}, ${c.nVocab}]`, t.offset);
  kernelsFor(t.type.id, "dequantize");
  const rowBytes = (c.nEmbd / t.type.blockSize) * t.type.typeSize;
  if (t.byteSize !== rowBytes * c.nVocab) throw new TrainInputError(file.path, name, `${t.byteSize} bytes, expected ${rowBytes * c.nVocab}`, t.offset);
  return { path: file.path, fd, offset: t.offset, type: t.type, rows: c.nVocab, cols: c.nEmbd, rowBytes };
}

const f32 = (file: GgufFile, name: string, n: number) => Float32Array.from(tensorValues(file, name, [n]));

/** Loads the base of a llama-family GGUF into the core (refuses other architectures with a TrainInputError). */
export function loadFrozenBase(core: Core, file: GgufFile): FrozenBase {
  const c = referenceConfig(file);
  let fd: number | undefined;
  try {
    fd = openSync(file.path, "r");
  } catch {
    fd = undefined; // an in-memory file: its bytes are copied
  }
  let keep = false;
  try {
    const base = loadWith(core, file, c, fd);
    // the file stays open while the embedding's rows are read from it
    keep = "fd" in base.tokenEmbd;
    return base;
  } finally {
    if (fd !== undefined && !keep) closeSync(fd);
  }
}

/** Reads token rows of an embedding left in the file into the core at dst (rowBytes apart). */
export function readTokenRows(core: Core, rows: FileRows, tokens: readonly number[], dst: number): void {
  tokens.forEach((tok, i) => {
    const at = rows.offset + tok * rows.rowBytes;
    const got = readSync(rows.fd, core.arena.u8(dst + i * rows.rowBytes, rows.rowBytes), 0, rows.rowBytes, at);
    if (got !== rows.rowBytes) throw new TrainInputError(rows.path, "token_embd.weight", `short read of token ${tok}'s row at byte ${at}`, at);
  });
}

function loadWith(core: Core, file: GgufFile, c: ReferenceConfig, fd: number | undefined): FrozenBase {
  const q = c.nHead * c.headDim, kv = c.nHeadKv * c.headDim;
  const tied = !file.tensor("output.weight");
  const tokenEmbd = !tied && fd !== undefined ? fileRows(file, fd, c) : weight(core, file, "token_embd.weight", c.nVocab, c.nEmbd, false, fd);
  const output = tied ? (tokenEmbd as Matrix) : weight(core, file, "output.weight", c.nVocab, c.nEmbd, true, fd);
  if (output === tokenEmbd && !TRANSPOSED_KERNELS.has(tokenEmbd.type.id)) {
    throw new TrainInputError(file.path, "token_embd.weight", `ggml type ${tokenEmbd.type.name} (the tied output): training reads F32, F16, Q4_0, Q8_0, Q4_K and Q6_K weights`);
  }
  const layers: BaseLayer[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `blk.${l}.`;
    const opt = (name: string, n: number) => (file.tensor(p + name) ? f32(file, p + name, n) : undefined);
    const bias: BaseLayer["bias"] = {};
    for (const [t, n, len] of [["q", "attn_q.bias", q], ["k", "attn_k.bias", kv], ["v", "attn_v.bias", kv], ["o", "attn_output.bias", c.nEmbd]] as const) {
      const b = opt(n, len);
      if (b) bias[t] = b;
    }
    layers.push({
      attnNorm: f32(file, p + "attn_norm.weight", c.nEmbd),
      ffnNorm: f32(file, p + "ffn_norm.weight", c.nEmbd),
      w: {
        q: weight(core, file, p + "attn_q.weight", q, c.nEmbd, true, fd),
        k: weight(core, file, p + "attn_k.weight", kv, c.nEmbd, true, fd),
        v: weight(core, file, p + "attn_v.weight", kv, c.nEmbd, true, fd),
        o: weight(core, file, p + "attn_output.weight", c.nEmbd, q, true, fd),
        gate: weight(core, file, p + "ffn_gate.weight", c.nFf, c.nEmbd, true, fd),
        up: weight(core, file, p + "ffn_up.weight", c.nFf, c.nEmbd, true, fd),
        down: weight(core, file, p + "ffn_down.weight", c.nEmbd, c.nFf, true, fd),
      },
      bias,
    });
  }
  const all = [...("fd" in tokenEmbd ? [] : [tokenEmbd]), ...(output === tokenEmbd ? [] : [output]), ...layers.flatMap((L) => Object.values(L.w))];
  return { config: c, tokenEmbd, output, outputNorm: f32(file, "output_norm.weight", c.nEmbd), layers, bytes: all.reduce((s, m) => s + m.rows * m.rowBytes, 0) };
}

/** Frees the base's weights in the core (and closes the file its embedding rows are read from). */
export function freeFrozenBase(core: Core, b: FrozenBase): void {
  if ("fd" in b.tokenEmbd) closeSync(b.tokenEmbd.fd);
  else core.free(b.tokenEmbd);
  if (b.output !== b.tokenEmbd) core.free(b.output);
  for (const L of b.layers) for (const m of Object.values(L.w)) core.free(m);
}
