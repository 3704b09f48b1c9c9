// Long fuzz run of the GGUF reader: npm run fuzz -- --count 100000 [--seed N] [--max-ms 1000].
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { openGguf } from "../src/gguf/reader.js";
import { defaultModelPath } from "../src/paths.js";
import { FUZZ_SEEDS } from "./fuzz-seeds.js";
import { headerFields, mutate } from "./fuzz-inputs.js";
import { fuzzOne } from "./fuzz-check.js";
import { mulberry32 } from "../src/random.js";

const { values } = parseArgs({ options: { count: { type: "string", default: "10000" }, seed: { type: "string", default: "1" }, "max-ms": { type: "string", default: "1000" } } });
const count = Number(values.count);
const maxMs = Number(values["max-ms"]);
const next = mulberry32(Number(values.seed));
const seeds = FUZZ_SEEDS().map((p) => { const bytes = new Uint8Array(readFileSync(p)); return { p, bytes, fields: headerFields(bytes) }; });
const base = openGguf(defaultModelPath());
const tally = { parsed: 0, refused: 0, failures: 0, slow: 0 };
let slowest = 0;
const t0 = performance.now();
for (let i = 0; i < count; i++) {
  const s = seeds[i % seeds.length];
  const { bytes, kind } = mutate(s.bytes, s.fields, next);
  const t = performance.now();
  try {
    tally[fuzzOne(bytes, base)]++;
  } catch (e) {
    tally.failures++;
    const out = `fuzz-failure-${i}.gguf`;
    writeFileSync(out, bytes);
    console.error(`input ${i} (${kind} of ${s.p}): ${e instanceof Error ? e.stack : String(e)} -> saved ${out}`);
  }
  const ms = performance.now() - t;
  slowest = Math.max(slowest, ms);
  if (ms > maxMs) tally.slow++;
}
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ inputs: count, seconds: Number(seconds.toFixed(1)), ...tally, slowestMs: Number(slowest.toFixed(1)) }));
process.exitCode = tally.failures + tally.slow > 0 ? 1 : 0;
