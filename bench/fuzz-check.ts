// One fuzz case: the input must parse (and every read of it must succeed) or be refused with GgufError, nothing else.
import { GgufFile, parseGguf } from "../src/gguf/reader.js";
import { bufferSource } from "../src/gguf/byte-source.js";
import { GgufError } from "../src/gguf/errors.js";
import { describeGguf } from "../src/gguf/describe.js";
import { checkAdapter } from "../src/gguf/adapter.js";

export type FuzzOutcome = "parsed" | "refused";

/** Runs the reader and everything built on it over `bytes`; rethrows any error that is not a GgufError. */
export function fuzzOne(bytes: Uint8Array, base: GgufFile): FuzzOutcome {
  let g: GgufFile;
  try {
    g = parseGguf(bufferSource(bytes), "fuzz.gguf");
  } catch (e) {
    if (e instanceof GgufError) return "refused";
    throw e;
  }
  try {
    for (const t of g.tensors) {
      const data = g.readTensor(t);
      if (data.byteLength !== t.byteSize) throw new Error(`tensor ${t.name}: read ${data.byteLength} bytes, expected ${t.byteSize}`);
    }
    const d = describeGguf(g);
    if (d.kind === "adapter") checkAdapter(base, g);
    return "parsed";
  } catch (e) {
    if (e instanceof GgufError) return "refused";
    throw e;
  }
}
