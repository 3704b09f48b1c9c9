// Seeded GGUF mutations for fuzzing the reader: bit flips, truncations, and header fields set to extreme values.
import { parseGguf } from "../src/gguf/reader.js";
import { bufferSource } from "../src/gguf/byte-source.js";
import { mulberry32 } from "../src/random.js";


interface Field { name: string; offset: number; bytes: number }

/** The header fields of a valid file (counts, lengths, types, dims, offsets), found by tracing one parse. */
export function headerFields(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  parseGguf(bufferSource(bytes), "seed", { trace: (name, offset, n) => { if (n === 4 || n === 8) fields.push({ name, offset, bytes: n }); } });
  return fields;
}

const EXTREMES_64 = [0n, 1n, 0x7fffffffn, 0xffffffffn, 0x100000000n, 1n << 53n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
const EXTREMES_32 = [0, 1, 2, 3, 13, 31, 255, 0x7fffffff, 0x80000000, 0xffffffff];

export type MutationKind = "bitflip" | "truncate" | "field" | "splice";

/** One mutated copy of `seed`; `fields` come from headerFields(seed). */
export function mutate(seed: Uint8Array, fields: Field[], next: () => number): { bytes: Uint8Array; kind: MutationKind } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const r = next();
  if (r < 0.3) {
    const out = seed.slice();
    const flips = 1 + Math.floor(next() * 8);
    // Most flips land in the header, where the parser makes decisions.
    const headerEnd = Math.min(out.length, (fields.at(-1)?.offset ?? 64) + 16);
    for (let i = 0; i < flips; i++) out[Math.floor(next() * (next() < 0.8 ? headerEnd : out.length))] ^= 1 << Math.floor(next() * 8);
    return { bytes: out, kind: "bitflip" };
  }
  if (r < 0.45) return { bytes: seed.slice(0, Math.floor(next() * seed.length)), kind: "truncate" };
  if (r < 0.9 && fields.length > 0) {
    const out = seed.slice();
    const dv = new DataView(out.buffer);
    const count = 1 + Math.floor(next() * 3);
    for (let i = 0; i < count; i++) {
      const f = pick(fields);
      if (f.bytes === 8) dv.setBigUint64(f.offset, pick(EXTREMES_64) + (next() < 0.3 ? BigInt(Math.floor(next() * 64)) : 0n) & ((1n << 64n) - 1n), true);
      else dv.setUint32(f.offset, (pick(EXTREMES_32) + (next() < 0.3 ? Math.floor(next() * 64) : 0)) >>> 0, true);
    }
    return { bytes: out, kind: "field" };
  }
  // Splice: a header slice duplicated or removed, shifting everything after it.
  const at = Math.floor(next() * Math.min(seed.length, 4096));
  const len = 1 + Math.floor(next() * 64);
  const grow = next() < 0.5;
  const out = new Uint8Array(grow ? seed.length + len : Math.max(0, seed.length - len));
  out.set(seed.subarray(0, at));
  if (grow) {
    out.set(seed.subarray(at, at + len), at);
    out.set(seed.subarray(at), at + Math.min(len, seed.length - at));
  } else {
    out.set(seed.subarray(Math.min(seed.length, at + len)), at);
  }
  return { bytes: out, kind: "splice" };
}
