// Bounded safetensors reader (F32, F16, BF16; every header field checked against the file size) and atomic writer.
import { AtomicFile, ioReason, type OutputOptions } from "../output-file.js";
import type { ByteSource } from "../gguf/byte-source.js";
import { fileSource } from "../gguf/file-source.js";
import { GgmlType } from "../gguf/ggml-types.js";
import { SafetensorsError } from "../errors.js";
import { decodeToF32 } from "./tensor-codec.js";

export type SafetensorsDtype = "F32" | "F16" | "BF16";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const DTYPE_GGML: Record<SafetensorsDtype, number> = { F32: GgmlType.F32, F16: GgmlType.F16, BF16: GgmlType.BF16 };
/** dtypes of the format this reader knows but does not load (named in the error). */
const KNOWN_OTHER = new Set(["F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL", "F8_E4M3", "F8_E5M2"]);

/** Largest JSON header accepted (the format's own readers use 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  /** Row-major shape, outermost first (as PyTorch). */
  readonly shape: readonly number[];
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
  readonly byteLength: number;
  readonly nElements: number;
}

/** A parsed safetensors file: header in memory, tensor data read on demand. */
export class SafetensorsFile {
  private readonly byName: Map<string, SafetensorInfo>;
  constructor(
    private readonly source: ByteSource,
    readonly path: string,
    readonly tensors: readonly SafetensorInfo[],
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  tensor(name: string): SafetensorInfo | undefined {
    return this.byName.get(name);
  }

  readBytes(t: SafetensorInfo | string): Uint8Array {
    const info = typeof t === "string" ? this.byName.get(t) : t;
    if (!info) throw new SafetensorsError(this.path, `tensor ${String(t)}`, -1, "no tensor of that name in the file");
    return this.source.read(info.offset, info.byteLength).slice();
  }

  /** The tensor's values as f32 (F16 and BF16 widened exactly). */
  readF32(t: SafetensorInfo | string): Float32Array {
    const info = typeof t === "string" ? this.byName.get(t) : t;
    if (!info) throw new SafetensorsError(this.path, `tensor ${String(t)}`, -1, "no tensor of that name in the file");
    return decodeToF32(this.readBytes(info), DTYPE_GGML[info.dtype], info.nElements);
  }

  close(): void {
    this.source.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses and checks a safetensors header from any byte source; throws SafetensorsError naming the field. */
export function parseSafetensors(source: ByteSource, name: string): SafetensorsFile {
  const fail = (field: string, offset: number, reason: string): never => {
    throw new SafetensorsError(name, field, offset, reason);
  };
  if (source.size < 8) fail("header.length", 0, `file is ${source.size} bytes, too short for the 8-byte header length`);
  const lenBytes = source.read(0, 8);
  const n = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(source.size - 8)) fail("header.length", 0, `header length ${n} runs past the end of the file (${source.size} bytes)`);
  if (n > BigInt(MAX_HEADER_BYTES)) fail("header.length", 0, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) fail("header.length", 0, `header length ${n} is too short for a JSON object`);
  const headerLen = Number(n);
  const dataStart = 8 + headerLen;
  const dataSize = source.size - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(source.read(8, headerLen)));
  } catch (e) {
    fail("header", 8, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) fail("header", 8, "header is not a JSON object");
  const h = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const meta = h.__metadata__;
  if (meta !== undefined) {
    if (!isObject(meta)) fail("__metadata__", 8, "must be an object of strings");
    for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
      if (typeof v !== "string") fail(`__metadata__.${k}`, 8, "metadata values must be strings");
      metadata[k] = v as string;
    }
  }

  const tensors: SafetensorInfo[] = [];
  for (const [tname, raw] of Object.entries(h)) {
    if (tname === "__metadata__") continue;
    if (!isObject(raw)) fail(tname, 8, "tensor entry is not an object");
    const e = raw as Record<string, unknown>;
    const dtype = e.dtype;
    if (typeof dtype !== "string") fail(`${tname}.dtype`, 8, "missing or not a string");
    if (!(dtype as string in DTYPE_BYTES)) {
      fail(`${tname}.dtype`, 8, KNOWN_OTHER.has(dtype as string)
        ? `dtype ${dtype as string} is not supported (adapters must be F32, F16 or BF16)`
        : `unknown dtype ${JSON.stringify(dtype)}`);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.length > 8) fail(`${tname}.shape`, 8, "must be an array of at most 8 dimensions");
    let count = 1;
    for (const [i, d] of (shape as unknown[]).entries()) {
      if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) fail(`${tname}.shape[${i}]`, 8, `dimension ${JSON.stringify(d)} is not a non-negative integer`);
      count *= d as number;
      if (!Number.isSafeInteger(count)) fail(`${tname}.shape`, 8, "element count overflows");
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)) {
      fail(`${tname}.data_offsets`, 8, "must be two non-negative integers [begin, end]");
    }
    const [begin, end] = offs as number[];
    if (end < begin) fail(`${tname}.data_offsets`, dataStart + begin, `end ${end} is before begin ${begin}`);
    if (end > dataSize) fail(`${tname}.data_offsets`, dataStart + begin, `data [${begin}, ${end}) runs past the end of the data section (${dataSize} bytes)`);
    const want = count * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== want) fail(`${tname}.data_offsets`, dataStart + begin, `holds ${end - begin} bytes but shape [${(shape as number[]).join(", ")}] of ${dtype as string} needs ${want}`);
    tensors.push({ name: tname, dtype: dtype as SafetensorsDtype, shape: shape as number[], offset: dataStart + begin, byteLength: want, nElements: count });
  }

  // As the format requires: the tensors tile the data section, no gap and no overlap, and it ends exactly at
  // the last tensor's end. (A header length lowered by 1 over a space-padded header still parses as JSON;
  // only this check sees that every tensor would then be read one byte off.)
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let end = dataStart;
  for (const t of sorted) {
    if (t.offset > end) fail(`${t.name}.data_offsets`, t.offset, `a gap of ${t.offset - end} bytes before this tensor's data (the tensors must tile the data section)`);
    if (t.offset < end) {
      const prev = sorted.find((p) => p !== t && p.offset <= t.offset && p.offset + p.byteLength > t.offset);
      fail(`${t.name}.data_offsets`, t.offset, `data overlaps tensor "${prev?.name ?? "?"}"`);
    }
    end = t.offset + t.byteLength;
  }
  if (end !== source.size) {
    fail("header.length", 0, `the data section is ${dataSize} bytes but the tensors end at ${end - dataStart}: ` +
      `${source.size - end} byte(s) left over (is the stored header length ${headerLen} right?)`);
  }
  return new SafetensorsFile(source, name, tensors, metadata);
}

/** Opens and checks a safetensors file; tensor data is read only when asked. */
export function openSafetensors(path: string): SafetensorsFile {
  let source: ByteSource;
  try {
    source = fileSource(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SafetensorsError(path, "file", -1, code === "ENOENT" ? "no such file" : `cannot open: ${ioReason(e)}`);
  }
  try {
    return parseSafetensors(source, path);
  } catch (e) {
    source.close();
    throw e;
  }
}

export interface SafetensorInput {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: Uint8Array;
}

/**
 * Writes a safetensors file atomically (temp file beside it, fsync, rename; see writeGguf for `opts`);
 * the header is padded with spaces to a multiple of 8 bytes.
 */
export function writeSafetensors(path: string, tensors: readonly SafetensorInput[], metadata?: Record<string, string>, opts: OutputOptions = {}): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.byteLength !== count * DTYPE_BYTES[t.dtype]) {
      throw new TypeError(`safetensors writer: ${t.name}: ${t.data.byteLength} bytes for shape [${t.shape.join(", ")}] ${t.dtype}`);
    }
    if (t.name in header) throw new TypeError(`safetensors writer: duplicate tensor ${t.name}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += " ";
  const hb = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.byteLength));
  const f = new AtomicFile(path, { overwrite: true, ...opts });
  f.write(len);
  f.write(hb);
  for (const t of tensors) f.write(t.data);
  f.commit();
}
