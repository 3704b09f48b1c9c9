// Writes the two demo adapters shipped in gguf/ and the aLoRA test adapter: deterministic seeded rank-4 LoRA deltas for stories260K.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { GgmlType } from "../gguf/ggml-types.js";
import { modelHparams } from "../gguf/metadata.js";
import { GgufValueType, openGguf } from "../gguf/reader.js";
import { writeGguf, type GgufKVInput, type GgufTensorInput } from "../gguf/writer.js";
import { aloraInvocationKv } from "../gguf/alora.js";
import { xorshift32 } from "../random.js";

/** The projections each demo adapter touches, in every layer. */
const TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

export interface DemoAdapterSpec {
  file: string;
  seed: number;
  taskName: string;
  /** Makes it an aLoRA adapter: adapter.alora.invocation_tokens, ids of the base's vocabulary. */
  invocationTokens?: readonly number[];
}

export const DEMO_ADAPTERS: readonly DemoAdapterSpec[] = [
  { file: "stories260K-demo-a.gguf", seed: 1001, taskName: "demo-a" },
  { file: "stories260K-demo-b.gguf", seed: 2002, taskName: "demo-b" },
];

/**
 * The aLoRA adapter of the tests (test/fixtures/adapters/): like the demo adapters, plus an invocation sequence,
 * "One day," in stories260K's vocabulary (ids 385 "One", 328 "day", 432 ",", as llama.cpp tokenizes it).
 */
export const ALORA_TEST_ADAPTER: DemoAdapterSpec = {
  file: "stories260K-alora-synthetic-r4.gguf", seed: 3003, taskName: "alora-test", invocationTokens: [385, 328, 432],
};

/** Seeded normal samples (xorshift32 + Box-Muller): the same seed gives the same bytes everywhere. */
function normals(seed: number, n: number, std: number): Float32Array {
  const next = xorshift32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next()));
    const t = 2 * Math.PI * next();
    out[i] = r * Math.cos(t) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) * std;
  }
  return out;
}

/**
 * Write one demo adapter for `basePath` into `outPath`: rank 4, alpha 8 (effective scale 2 at user scale 1),
 * F32, A ~ N(0, 1/n_in), B ~ N(0, 0.06^2/r) (small enough to keep the text English, large enough to change it), on all seven projections of every layer.
 */
export function writeDemoAdapter(basePath: string, outPath: string, spec: DemoAdapterSpec, rank = 4): void {
  const base = openGguf(basePath);
  try {
    const hp = modelHparams(base);
    const tensors: GgufTensorInput[] = [];
    let k = 0;
    for (let layer = 0; layer < hp.nLayer; layer++) {
      for (const target of TARGETS) {
        const name = `blk.${layer}.${target}.weight`;
        const w = base.tensor(name);
        if (!w) throw new Error(`${basePath} has no tensor ${name}`);
        const [nIn, nOut] = w.ne;
        const a = normals(spec.seed * 1000 + k++, nIn * rank, 1 / Math.sqrt(nIn));
        const b = normals(spec.seed * 1000 + k++, rank * nOut, 0.06 / Math.sqrt(rank));
        tensors.push({ name: `${name}.lora_a`, type: GgmlType.F32, ne: [nIn, rank], data: new Uint8Array(a.buffer) });
        tensors.push({ name: `${name}.lora_b`, type: GgmlType.F32, ne: [rank, nOut], data: new Uint8Array(b.buffer) });
      }
    }
    const kind = spec.invocationTokens ? "aLoRA" : "";
    const kv: GgufKVInput[] = [
      { key: "general.architecture", type: GgufValueType.STRING, value: hp.architecture },
      { key: "general.type", type: GgufValueType.STRING, value: "adapter" },
      { key: "general.name", type: GgufValueType.STRING, value: `lora-edge ${spec.taskName}: seeded random rank-${rank} ${kind ? `${kind} ` : ""}deltas for stories260K` },
      { key: "adapter.type", type: GgufValueType.STRING, value: "lora" },
      { key: "adapter.lora.alpha", type: GgufValueType.FLOAT32, value: 2 * rank },
      { key: "adapter.lora.task_name", type: GgufValueType.STRING, value: spec.taskName },
    ];
    if (spec.invocationTokens) kv.push(aloraInvocationKv(spec.invocationTokens));
    writeGguf(outPath, { kv, tensors });
  } finally {
    base.close();
  }
}

/** Write both demo adapters beside the base model in `dir`. */
export function writeDemoAdapters(dir: string, basePath = path.join(dir, "stories260K.gguf")): string[] {
  return DEMO_ADAPTERS.map((spec) => {
    const out = path.join(dir, spec.file);
    writeDemoAdapter(basePath, out, spec);
    return out;
  });
}

/** Write the aLoRA test adapter into `dir` (test/fixtures/adapters), for the base at `basePath`. */
export function writeAloraTestAdapter(dir: string, basePath: string): string {
  const out = path.join(dir, ALORA_TEST_ADAPTER.file);
  writeDemoAdapter(basePath, out, ALORA_TEST_ADAPTER);
  return out;
}

// node build/src/tools/demo-adapters.js [gguf-dir]: the demo adapters, beside the base in gguf-dir (default gguf)
// node build/src/tools/demo-adapters.js --alora DIR [BASE.gguf]: the aLoRA test adapter (base: gguf/stories260K.gguf)
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [first, second, third] = process.argv.slice(2);
  const written = first === "--alora"
    ? [writeAloraTestAdapter(path.resolve(second ?? "test/fixtures/adapters"), path.resolve(third ?? "gguf/stories260K.gguf"))]
    : writeDemoAdapters(path.resolve(first ?? "gguf"));
  for (const f of written) process.stdout.write(`wrote ${f}\n`);
}
