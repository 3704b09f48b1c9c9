// GGUF v2/v3 reader: bounded, validating header parse and lazy, on-demand tensor data.
import { GgufError } from "./errors.js";
import type { ByteSource } from "./byte-source.js";
import { openFileSource } from "./file-source.js";
import { GgmlTypeTraits, ggmlTypeById, tensorByteSize } from "./ggml-types.js";

/** GGUF metadata value types, as stored on disk. */
export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** Fixed byte width of each scalar value type (strings and arrays are variable). */
const SCALAR_BYTES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};

/** An array value, keeping its item type so it can be written back unchanged. */
export class GgufArray {
  constructor(readonly itemType: GgufValueType, readonly items: readonly GgufValue[]) {}
}

export type GgufValue = number | bigint | boolean | string | GgufArray;

export interface GgufKV {
  readonly key: string;
  readonly type: GgufValueType;
  readonly value: GgufValue;
  /** Byte offset of the key in the file. */
  readonly offset: number;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** Dimensions in ggml order: ne[0] is the innermost (contiguous) one. */
  readonly ne: readonly number[];
  readonly type: GgmlTypeTraits;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteSize: number;
  readonly nElements: number;
  /** Bytes of one row (ne[0] values). */
  readonly rowBytes: number;
}

/** Sane upper bounds, applied before anything is allocated (all also bounded by the file size). */
export const GGUF_LIMITS = Object.freeze({
  maxStringBytes: 64 * 1024 * 1024,
  maxTensorNameBytes: 63, // ggml's GGML_MAX_NAME is 64 including the terminating zero
  maxDims: 4,
  maxArrayDepth: 8,
  defaultAlignment: 32,
});

const MAGIC = 0x46554747; // "GGUF" little-endian
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Smallest on-disk size of one value of a type, for bounding counts against the bytes left. */
function minValueBytes(type: GgufValueType): number {
  if (type === GgufValueType.STRING) return 8;
  if (type === GgufValueType.ARRAY) return 12;
  return SCALAR_BYTES[type] ?? 1;
}

/** Called for each fixed-size header field read (name, byte offset, width), e.g. to aim a fuzzer. */
export type FieldTrace = (field: string, offset: number, bytes: number) => void;

/**
 * The name of an array item's field, rendered only when needed (an error, a trace): one object serves every
 * item of an array, so a vocabulary of 50,000 strings does not make 100,000 name strings.
 */
class ItemField {
  index = 0;
  suffix = "";
  constructor(readonly array: string) {}
  toString(): string {
    return `${this.array}[${this.index}]${this.suffix}`;
  }
}

/** A field's name: a string, or an array item's name made on demand. */
type Field = string | ItemField;

/** Sequential little-endian reads over a ByteSource, buffered, every read bounds-checked. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;

  constructor(private readonly src: ByteSource, readonly file: string, private readonly trace?: FieldTrace) {}

  get remaining(): number {
    return this.src.size - this.pos;
  }

  fail(field: Field, reason: string, offset = this.pos): never {
    throw new GgufError(this.file, String(field), offset, reason);
  }

  /** Makes `n` bytes at pos available in the buffer; returns their index within it. */
  private ensure(n: number, field: Field): number {
    if (this.trace) this.trace(String(field), this.pos, n);
    if (n > this.remaining) this.fail(field, `needs ${n} bytes but the file ends ${this.remaining} bytes later (truncated file)`);
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.byteLength) return rel;
    const len = Math.min(Math.max(n, 1 << 20), this.remaining);
    this.buf = this.src.read(this.pos, len);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufStart = this.pos;
    return 0;
  }

  u8(field: Field): number { const i = this.ensure(1, field); this.pos += 1; return this.view.getUint8(i); }
  i8(field: Field): number { const i = this.ensure(1, field); this.pos += 1; return this.view.getInt8(i); }
  u16(field: Field): number { const i = this.ensure(2, field); this.pos += 2; return this.view.getUint16(i, true); }
  i16(field: Field): number { const i = this.ensure(2, field); this.pos += 2; return this.view.getInt16(i, true); }
  u32(field: Field): number { const i = this.ensure(4, field); this.pos += 4; return this.view.getUint32(i, true); }
  i32(field: Field): number { const i = this.ensure(4, field); this.pos += 4; return this.view.getInt32(i, true); }
  f32(field: Field): number { const i = this.ensure(4, field); this.pos += 4; return this.view.getFloat32(i, true); }
  f64(field: Field): number { const i = this.ensure(8, field); this.pos += 8; return this.view.getFloat64(i, true); }
  u64(field: Field): bigint { const i = this.ensure(8, field); this.pos += 8; return this.view.getBigUint64(i, true); }
  i64(field: Field): bigint { const i = this.ensure(8, field); this.pos += 8; return this.view.getBigInt64(i, true); }

  /** A u64 that must fit a safe JS number and be at most `max`. */
  count(field: Field, max: number, what: string): number {
    const at = this.pos;
    const v = this.u64(field);
    if (v > BigInt(max)) this.fail(field, `${what} ${v} is larger than the file allows (at most ${max})`, at);
    return Number(v);
  }

  bytes(n: number, field: Field): Uint8Array {
    const i = this.ensure(n, field);
    this.pos += n;
    return this.buf.subarray(i, i + n);
  }

  string(field: Field, maxBytes = GGUF_LIMITS.maxStringBytes): string {
    const at = this.pos;
    const max = Math.min(maxBytes, Math.max(0, this.remaining - 8));
    let len: number;
    if (field instanceof ItemField) {
      field.suffix = ".length";
      len = this.count(field, max, "string length");
      field.suffix = "";
    } else len = this.count(`${field}.length`, max, "string length");
    if (len > maxBytes) this.fail(field, `string of ${len} bytes exceeds ${maxBytes}`, at);
    return decoder.decode(this.bytes(len, field));
  }
}

function readScalar(c: Cursor, type: GgufValueType, field: Field): GgufValue {
  switch (type) {
    case GgufValueType.UINT8: return c.u8(field);
    case GgufValueType.INT8: return c.i8(field);
    case GgufValueType.UINT16: return c.u16(field);
    case GgufValueType.INT16: return c.i16(field);
    case GgufValueType.UINT32: return c.u32(field);
    case GgufValueType.INT32: return c.i32(field);
    case GgufValueType.FLOAT32: return c.f32(field);
    case GgufValueType.FLOAT64: return c.f64(field);
    case GgufValueType.UINT64: return c.u64(field);
    case GgufValueType.INT64: return c.i64(field);
    case GgufValueType.BOOL: {
      const at = c.pos;
      const b = c.u8(field);
      if (b > 1) c.fail(field, `boolean byte is ${b}, expected 0 or 1`, at);
      return b === 1;
    }
    case GgufValueType.STRING: return c.string(field);
    default: return c.fail(field, `unknown value type ${type}`);
  }
}

function readValueType(c: Cursor, field: Field): GgufValueType {
  const at = c.pos;
  const t = c.u32(field);
  if (t > GgufValueType.FLOAT64) c.fail(field, `unknown value type ${t}`, at);
  return t as GgufValueType;
}

function readValue(c: Cursor, type: GgufValueType, field: Field, depth: number): GgufValue {
  if (type !== GgufValueType.ARRAY) return readScalar(c, type, field);
  if (depth >= GGUF_LIMITS.maxArrayDepth) c.fail(field, `arrays nested deeper than ${GGUF_LIMITS.maxArrayDepth}`);
  const name = String(field);
  const itemType = readValueType(c, `${name}.item_type`);
  const n = c.count(`${name}.length`, Math.floor(Math.max(0, c.remaining - 8) / minValueBytes(itemType)), "array length");
  const items: GgufValue[] = new Array(n);
  if (itemType === GgufValueType.ARRAY) {
    for (let i = 0; i < n; i++) items[i] = readValue(c, itemType, `${name}[${i}]`, depth + 1);
  } else {
    const item = new ItemField(name);
    for (let i = 0; i < n; i++) {
      item.index = i;
      items[i] = readScalar(c, itemType, item);
    }
  }
  return new GgufArray(itemType, items);
}

/** Converts a stored value to plain JS: arrays become JS arrays (recursively). */
export function plainValue(v: GgufValue): unknown {
  return v instanceof GgufArray ? v.items.map(plainValue) : v;
}

/** A parsed GGUF file: header, metadata and tensor table in memory; tensor data read on demand. */
export class GgufFile {
  readonly tensors: readonly GgufTensorInfo[];
  private readonly byName: Map<string, GgufTensorInfo>;

  constructor(
    private readonly source: ByteSource,
    readonly path: string,
    readonly version: number,
    readonly kv: ReadonlyMap<string, GgufKV>,
    tensors: GgufTensorInfo[],
    readonly alignment: number,
    readonly dataOffset: number,
  ) {
    this.tensors = tensors;
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  get fileSize(): number {
    return this.source.size;
  }

  /** A metadata value as plain JS (numbers, bigint for 64-bit integers, strings, booleans, arrays). */
  get(key: string): unknown {
    const e = this.kv.get(key);
    return e === undefined ? undefined : plainValue(e.value);
  }

  tensor(name: string): GgufTensorInfo | undefined {
    return this.byName.get(name);
  }

  private info(t: GgufTensorInfo | string): GgufTensorInfo {
    const info = typeof t === "string" ? this.byName.get(t) : t;
    if (!info) throw new GgufError(this.path, `tensor ${String(t)}`, -1, "no tensor of that name in the file");
    return info;
  }

  /** A fresh copy of exactly the tensor's bytes. */
  readTensor(t: GgufTensorInfo | string): Uint8Array {
    const info = this.info(t);
    return this.readTensorBytes(info, 0, info.byteSize);
  }

  /** `byteLength` bytes of the tensor starting `byteStart` bytes into it (for streaming rows). */
  readTensorBytes(t: GgufTensorInfo | string, byteStart: number, byteLength: number): Uint8Array {
    const info = this.info(t);
    if (byteStart < 0 || byteLength < 0 || byteStart + byteLength > info.byteSize) {
      throw new GgufError(this.path, `tensor ${info.name}`, info.offset, `range ${byteStart}+${byteLength} lies outside its ${info.byteSize} bytes`);
    }
    const bytes = this.source.read(info.offset + byteStart, byteLength);
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
  }

  close(): void {
    this.source.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Parses a GGUF header from any byte source; throws GgufError for anything malformed. */
export function parseGguf(source: ByteSource, name: string, options: { trace?: FieldTrace } = {}): GgufFile {
  const c = new Cursor(source, name, options.trace);
  const magic = c.u32("header.magic");
  if (magic !== MAGIC) c.fail("header.magic", "not a GGUF file (magic bytes are not \"GGUF\")", 0);
  const version = c.u32("header.version");
  if (version === 1) c.fail("header.version", "GGUF version 1 is not supported (llama.cpp refuses it too); re-convert the file", 4);
  if (version !== 2 && version !== 3) {
    const bigEndian = version >>> 16 !== 0 && (version & 0xffff) === 0;
    c.fail("header.version", bigEndian ? `version bytes ${version} look big-endian, which is not supported` : `unknown GGUF version ${version}`, 4);
  }
  // Each tensor info needs at least 8 (name len) + 4 (n_dims) + 4 (type) + 8 (offset) bytes; each KV 8 + 4 + 1.
  const tensorCount = c.count("header.tensor_count", Math.floor(c.remaining / 24), "tensor count");
  const kvCount = c.count("header.kv_count", Math.floor(c.remaining / 13), "metadata count");

  const kv = new Map<string, GgufKV>();
  for (let i = 0; i < kvCount; i++) {
    const at = c.pos;
    const key = c.string(`kv[${i}].key`);
    if (key.length === 0) c.fail(`kv[${i}].key`, "empty metadata key", at);
    if (kv.has(key)) c.fail(`kv[${i}].key`, `duplicate metadata key "${key}"`, at);
    const type = readValueType(c, `${key}.type`);
    const value = readValue(c, type, key, 0);
    kv.set(key, { key, type, value, offset: at });
  }

  let alignment: number = GGUF_LIMITS.defaultAlignment;
  const alignKv = kv.get("general.alignment");
  if (alignKv) {
    const a = alignKv.value;
    if (alignKv.type !== GgufValueType.UINT32 || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      c.fail("general.alignment", `alignment must be a u32 power of two, got ${String(a)}`, alignKv.offset);
    }
    alignment = a as number;
  }

  interface RawInfo { name: string; ne: bigint[]; type: GgmlTypeTraits; rel: bigint; at: number }
  const raws: RawInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = c.pos;
    const field = `tensor[${i}]`;
    const tname = c.string(`${field}.name`, GGUF_LIMITS.maxTensorNameBytes);
    if (tname.length === 0) c.fail(`${field}.name`, "empty tensor name", at);
    if (names.has(tname)) c.fail(`${field}.name`, `duplicate tensor name "${tname}"`, at);
    names.add(tname);
    const dimsAt = c.pos;
    const nDims = c.u32(`${tname}.n_dims`);
    if (nDims === 0 || nDims > GGUF_LIMITS.maxDims) c.fail(`${tname}.n_dims`, `${nDims} dimensions (must be 1 to ${GGUF_LIMITS.maxDims})`, dimsAt);
    const ne: bigint[] = [];
    let product = 1n;
    for (let d = 0; d < nDims; d++) {
      const dAt = c.pos;
      const v = c.i64(`${tname}.ne[${d}]`);
      if (v < 0n) c.fail(`${tname}.ne[${d}]`, `negative dimension ${v}`, dAt);
      product *= v;
      if (product > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`${tname}.ne[${d}]`, "element count overflows", dAt);
      ne.push(v);
    }
    const typeAt = c.pos;
    const typeId = c.u32(`${tname}.type`);
    const traits = ggmlTypeById(typeId) ?? c.fail(`${tname}.type`, `unknown ggml type id ${typeId}`, typeAt);
    if (ne[0] % BigInt(traits.blockSize) !== 0n) {
      c.fail(`${tname}.ne[0]`, `${ne[0]} is not a multiple of ${traits.name}'s block size ${traits.blockSize}`, dimsAt + 4);
    }
    const relAt = c.pos;
    const rel = c.u64(`${tname}.offset`);
    if (rel % BigInt(alignment) !== 0n) c.fail(`${tname}.offset`, `data offset ${rel} is not aligned to ${alignment}`, relAt);
    raws.push({ name: tname, ne, type: traits, rel, at: relAt });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (tensorCount > 0 && dataOffset > source.size) c.fail("data", `tensor data would start at ${dataOffset}, past the end of the file (${source.size} bytes)`, c.pos);
  const dataBytes = BigInt(Math.max(0, source.size - dataOffset));

  const infos: GgufTensorInfo[] = raws.map((r) => {
    const size = tensorByteSize(r.type, r.ne) as bigint;
    if (r.rel + size > dataBytes) {
      c.fail(`${r.name}.offset`, `data [${r.rel}, ${r.rel + size}) lies past the end of the data section (${dataBytes} bytes)`, r.at);
    }
    const ne = r.ne.map(Number);
    const rowBytes = (ne[0] / r.type.blockSize) * r.type.typeSize;
    return { name: r.name, ne, type: r.type, offset: dataOffset + Number(r.rel), byteSize: Number(size), nElements: ne.reduce((a, b) => a * b, 1), rowBytes };
  });

  const sorted = infos.map((t, i) => ({ t, at: raws[i].at })).sort((a, b) => a.t.offset - b.t.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1].t;
    const cur = sorted[i];
    if (cur.t.byteSize > 0 && prev.byteSize > 0 && cur.t.offset < prev.offset + prev.byteSize) {
      c.fail(`${cur.t.name}.offset`, `data overlaps tensor "${prev.name}"`, cur.at);
    }
  }

  return new GgufFile(source, name, version, kv, infos, alignment, dataOffset);
}

/** Opens a GGUF file: parses the header now, reads tensor data only when asked. */
export function openGguf(path: string): GgufFile {
  const source = openFileSource(path);
  try {
    return parseGguf(source, path);
  } catch (e) {
    source.close();
    throw e;
  }
}
