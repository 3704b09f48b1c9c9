// Products over weights streamed in row chunks, for tensors larger than one wasm memory (or than a set budget).
import type { GgmlTypeTraits } from "../gguf/ggml-types.js";
import type { GgufTensorInfo } from "../gguf/reader.js";
import { Core, CoreError, type GemvOptions } from "./core.js";
import type { Matrix } from "./types.js";

/** Rows of a weight tensor that can be read piecewise. */
export interface RowSource {
  readonly type: GgmlTypeTraits;
  readonly rows: number;
  readonly cols: number;
  /** Bytes [byteStart, byteStart + byteLength) of the row-major tensor data. */
  read(byteStart: number, byteLength: number): Uint8Array;
}

/** A GGUF tensor as a row source (2-D view: ne[0] columns, all other dims as rows). */
export function tensorRows(file: { readTensorBytes(t: GgufTensorInfo, start: number, length: number): Uint8Array }, t: GgufTensorInfo): RowSource {
  const cols = t.ne[0];
  return { type: t.type, rows: t.nElements / cols, cols, read: (s, n) => file.readTensorBytes(t, s, n) };
}

/** Copies a whole GGUF tensor (2-D view) into the core's memory as a resident matrix. */
export function uploadTensor(core: Core, file: { readTensor(t: GgufTensorInfo): Uint8Array }, t: GgufTensorInfo): Matrix {
  return core.upload(t.type.id, file.readTensor(t), t.nElements / t.ne[0], t.ne[0]);
}

export interface StreamOptions extends GemvOptions {
  /** Most weight bytes resident at once (default 1 GiB); rounded down to whole rows, at least one row. */
  maxChunkBytes?: number;
}

/** y = W x with W read chunk by chunk into wasm memory; each chunk is freed before the next is read. */
export function gemvStreamed(core: Core, src: RowSource, x: Float32Array, opts: StreamOptions = {}): Float32Array {
  if (x.length !== src.cols) throw new CoreError(`gemv: x has ${x.length} values, tensor has ${src.cols} columns`);
  const rowBytes = (src.cols / src.type.blockSize) * src.type.typeSize;
  const chunkRows = Math.max(1, Math.floor((opts.maxChunkBytes ?? 1 << 30) / rowBytes));
  const y = opts.out ?? new Float32Array(src.rows);
  for (let r0 = 0; r0 < src.rows; r0 += chunkRows) {
    const n = Math.min(chunkRows, src.rows - r0);
    const m = core.upload(src.type.id, src.read(r0 * rowBytes, n * rowBytes), n, src.cols);
    try {
      core.gemv(m, x, { x8: opts.x8, out: y.subarray(r0, r0 + n) });
    } finally {
      core.free(m);
    }
  }
  return y;
}

/** Dequantizes rows chunk by chunk into one f32 array (rows x cols). */
export function dequantizeStreamed(core: Core, src: RowSource, maxChunkBytes = 1 << 30): Float32Array {
  const rowBytes = (src.cols / src.type.blockSize) * src.type.typeSize;
  const chunkRows = Math.max(1, Math.floor(maxChunkBytes / rowBytes));
  const y = new Float32Array(src.rows * src.cols);
  for (let r0 = 0; r0 < src.rows; r0 += chunkRows) {
    const n = Math.min(chunkRows, src.rows - r0);
    y.set(core.dequantize(src.type.id, src.read(r0 * rowBytes, n * rowBytes), n * src.cols), r0 * src.cols);
  }
  return y;
}

/**
 * y = W x for a GGUF tensor: uploaded whole when it fits `maxResidentBytes` (default 1 GiB), else streamed
 * in chunks of that size, so tensors larger than one wasm memory still work.
 */
export function gemvTensor(
  core: Core,
  file: { readTensor(t: GgufTensorInfo): Uint8Array; readTensorBytes(t: GgufTensorInfo, start: number, length: number): Uint8Array },
  t: GgufTensorInfo,
  x: Float32Array,
  opts: StreamOptions = {},
): Float32Array {
  const limit = opts.maxChunkBytes ?? 1 << 30;
  if (t.byteSize > limit) return gemvStreamed(core, tensorRows(file, t), x, opts);
  const m = uploadTensor(core, file, t);
  try {
    return core.gemv(m, x, opts);
  } finally {
    core.free(m);
  }
}
