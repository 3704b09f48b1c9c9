// GGUF v3 writer: metadata and raw tensor bytes of any ggml type, aligned, written atomically (temp file, rename).
import { AtomicFile, type OutputOptions } from "../output-file.js";
import { GgmlTypeTraits, ggmlTypeById, tensorByteSize } from "./ggml-types.js";
import { GgufArray, GgufFile, GgufValue, GgufValueType } from "./reader.js";

export interface GgufKVInput {
  key: string;
  type: GgufValueType;
  /** Scalar, GgufArray, or (with `itemType`) a JS array / typed array of items. */
  value: GgufValue | readonly unknown[] | ArrayLike<number>;
  /** Item type when `value` is a plain array. */
  itemType?: GgufValueType;
}

export interface GgufTensorInput {
  name: string;
  type: number | GgmlTypeTraits;
  /** Dimensions in ggml order (ne[0] innermost). */
  ne: readonly number[];
  /** The tensor's bytes, or a function called once while writing so memory stays bounded. */
  data: Uint8Array | (() => Uint8Array);
}

export interface GgufWriteInput {
  kv: readonly GgufKVInput[];
  tensors: readonly GgufTensorInput[];
  /** Defaults to general.alignment when present in `kv`, else 32. */
  alignment?: number;
}

const encoder = new TextEncoder();

/** Grows a byte buffer for the header. */
class HeaderBuilder {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private room(n: number): number {
    if (this.length + n > this.buf.byteLength) {
      const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number) { const at = this.room(1); this.view.setUint8(at, v); }
  i8(v: number) { const at = this.room(1); this.view.setInt8(at, v); }
  u16(v: number) { const at = this.room(2); this.view.setUint16(at, v, true); }
  i16(v: number) { const at = this.room(2); this.view.setInt16(at, v, true); }
  u32(v: number) { const at = this.room(4); this.view.setUint32(at, v, true); }
  i32(v: number) { const at = this.room(4); this.view.setInt32(at, v, true); }
  f32(v: number) { const at = this.room(4); this.view.setFloat32(at, v, true); }
  f64(v: number) { const at = this.room(8); this.view.setFloat64(at, v, true); }
  u64(v: bigint | number) { const at = this.room(8); this.view.setBigUint64(at, BigInt(v), true); }
  i64(v: bigint | number) { const at = this.room(8); this.view.setBigInt64(at, BigInt(v), true); }
  bytes(b: Uint8Array) { const at = this.room(b.byteLength); this.buf.set(b, at); }
  string(s: string) { const b = encoder.encode(s); this.u64(b.byteLength); this.bytes(b); }

  result(): Uint8Array { return this.buf.subarray(0, this.length); }
}

function writeValue(h: HeaderBuilder, type: GgufValueType, value: unknown, itemType: GgufValueType | undefined, key: string): void {
  const bad = () => new TypeError(`gguf writer: ${key}: value ${String(value)} does not fit type ${GgufValueType[type] ?? type}`);
  switch (type) {
    case GgufValueType.UINT8: case GgufValueType.INT8: case GgufValueType.UINT16: case GgufValueType.INT16:
    case GgufValueType.UINT32: case GgufValueType.INT32: case GgufValueType.FLOAT32: case GgufValueType.FLOAT64: {
      if (typeof value !== "number") throw bad();
      const put = { [GgufValueType.UINT8]: h.u8, [GgufValueType.INT8]: h.i8, [GgufValueType.UINT16]: h.u16, [GgufValueType.INT16]: h.i16,
        [GgufValueType.UINT32]: h.u32, [GgufValueType.INT32]: h.i32, [GgufValueType.FLOAT32]: h.f32, [GgufValueType.FLOAT64]: h.f64 }[type];
      put.call(h, value);
      return;
    }
    case GgufValueType.UINT64: if (typeof value !== "bigint" && typeof value !== "number") throw bad(); h.u64(value); return;
    case GgufValueType.INT64: if (typeof value !== "bigint" && typeof value !== "number") throw bad(); h.i64(value); return;
    case GgufValueType.BOOL: if (typeof value !== "boolean") throw bad(); h.u8(value ? 1 : 0); return;
    case GgufValueType.STRING: if (typeof value !== "string") throw bad(); h.string(value); return;
    case GgufValueType.ARRAY: {
      const arr = value instanceof GgufArray ? value : undefined;
      const it = arr ? arr.itemType : itemType;
      const items = (arr ? arr.items : value) as ArrayLike<unknown>;
      if (it === undefined || items === null || typeof items !== "object" || typeof items.length !== "number") throw bad();
      h.u32(it);
      h.u64(items.length);
      for (let i = 0; i < items.length; i++) writeValue(h, it, items[i], undefined, `${key}[${i}]`);
      return;
    }
    default: throw bad();
  }
}

function traitsOf(t: GgufTensorInput): GgmlTypeTraits {
  const traits = typeof t.type === "number" ? ggmlTypeById(t.type) : t.type;
  if (!traits) throw new TypeError(`gguf writer: tensor ${t.name}: unknown ggml type ${String(t.type)}`);
  return traits;
}

/** Serialises the header (magic to the end of the tensor infos, unpadded) and each tensor's size. */
export function buildHeader(input: GgufWriteInput): { header: Uint8Array; sizes: number[]; alignment: number } {
  const keys = new Set<string>();
  let alignment = input.alignment ?? 32;
  for (const kv of input.kv) {
    if (keys.has(kv.key)) throw new TypeError(`gguf writer: duplicate metadata key ${kv.key}`);
    keys.add(kv.key);
    if (kv.key === "general.alignment" && input.alignment === undefined) alignment = kv.value as number;
  }
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new TypeError(`gguf writer: alignment ${alignment} is not a power of two`);
  }
  const h = new HeaderBuilder();
  h.u32(0x46554747);
  h.u32(3);
  h.u64(input.tensors.length);
  h.u64(input.kv.length);
  for (const kv of input.kv) {
    h.string(kv.key);
    h.u32(kv.type);
    writeValue(h, kv.type, kv.value, kv.itemType, kv.key);
  }
  const names = new Set<string>();
  const sizes: number[] = [];
  let offset = 0;
  for (const t of input.tensors) {
    if (names.has(t.name)) throw new TypeError(`gguf writer: duplicate tensor name ${t.name}`);
    names.add(t.name);
    const traits = traitsOf(t);
    const size = tensorByteSize(traits, t.ne.map(BigInt));
    if (size === undefined) throw new TypeError(`gguf writer: tensor ${t.name}: ne[0]=${t.ne[0]} is not a multiple of ${traits.name}'s block size`);
    h.string(t.name);
    h.u32(t.ne.length);
    for (const d of t.ne) h.i64(d);
    h.u32(traits.id);
    h.u64(offset);
    sizes.push(Number(size));
    offset += Math.ceil(Number(size) / alignment) * alignment;
  }
  return { header: h.result(), sizes, alignment };
}

/**
 * The file's bytes as a list of pieces, each made only when called: the header, then one piece per tensor
 * (its data, checked against its shape and type, and the padding after it).
 */
function pieces(input: GgufWriteInput): (() => Uint8Array[])[] {
  const { header, sizes, alignment } = buildHeader(input);
  const zeros = new Uint8Array(alignment);
  const pad = (n: number) => (n % alignment ? [zeros.subarray(0, alignment - (n % alignment))] : []);
  return [
    () => [header, ...(input.tensors.length > 0 ? pad(header.byteLength) : [])],
    ...input.tensors.map((t, i) => () => {
      const data = typeof t.data === "function" ? t.data() : t.data;
      if (data.byteLength !== sizes[i]) {
        throw new TypeError(`gguf writer: tensor ${t.name}: got ${data.byteLength} bytes, its shape and type need ${sizes[i]}`);
      }
      return [data, ...pad(data.byteLength)];
    }),
  ];
}

/**
 * Writes a GGUF v3 file atomically: a temp file beside `path`, fsync, then rename. The temp file is removed
 * when anything fails (errors name `path`, never the temp file) and on SIGINT/SIGTERM/SIGHUP. By default an
 * existing file is replaced, as fs.writeFileSync does; `overwrite: false` refuses it, and `inputs` refuses
 * an output that is one of the job's inputs.
 */
export function writeGguf(path: string, input: GgufWriteInput, opts: OutputOptions = {}): void {
  const parts = pieces(input);
  const f = new AtomicFile(path, { overwrite: true, ...opts });
  try {
    for (const part of parts) for (const b of part()) f.write(b);
  } catch (e) {
    f.discard();
    throw e;
  }
  f.commit();
}

/**
 * writeGguf for long writes: it returns to the event loop after each tensor, so SIGINT and SIGTERM are
 * handled (the temp file removed) within one tensor instead of after the whole file.
 */
export async function writeGgufAsync(path: string, input: GgufWriteInput, opts: OutputOptions = {}): Promise<void> {
  const parts = pieces(input);
  const f = new AtomicFile(path, { overwrite: true, ...opts });
  try {
    for (const part of parts) {
      for (const b of part()) f.write(b);
      await new Promise<void>((r) => setImmediate(r));
    }
  } catch (e) {
    f.discard();
    throw e;
  }
  f.commit();
}

/** The metadata of a parsed file as writer input, in file order, values unchanged. */
export function kvInputsFrom(file: GgufFile): GgufKVInput[] {
  return [...file.kv.values()].map((e) => ({ key: e.key, type: e.type, value: e.value }));
}

/** The tensors of a parsed file as writer input, each read from the file only when written. */
export function tensorInputsFrom(file: GgufFile): GgufTensorInput[] {
  return file.tensors.map((t) => ({ name: t.name, type: t.type, ne: t.ne, data: () => file.readTensor(t) }));
}

/** The whole file's bytes in memory (for GGUFs made to be read back at once, e.g. an adapter applied without a file). */
export function ggufBytes(input: GgufWriteInput): Uint8Array {
  const chunks = pieces(input).flatMap((p) => p());
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}
