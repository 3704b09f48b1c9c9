// lora-edge synth: writes a generated model of a real shape (random weights, valid tokenizer) or a random LoRA adapter.
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { SHAPES, PROJECTIONS, synthAdapterAsync, synthModelAsync, type ProjectionName, type Quantizer, type SynthWeightType } from "../../tools/synth.js";
import { coreQuantizer } from "../../tools/synth/core-quantizer.js";

export default defineCommand({
  name: "synth",
  summary: "generated models of real shapes and random LoRA adapters: lora-edge synth model llama-3.2-1b -o m.gguf",
  usage: [
    "model SHAPE -o OUT.gguf [--type Q4_0|Q8_0|F16|F32] [--vocab N] [--layers N] [--seed N] [--quantizer core|random] [--force]",
    "adapter SHAPE -o OUT.gguf [--rank R] [--modules q,k,v,o,gate,up,down] [--alpha A] [--type F32|F16] [--layers N] [--seed N] [--force]",
    "shapes",
  ],
  options: {
    out: { kind: "string", short: "o", value: "FILE", help: "the file to write (required for model and adapter)" },
    type: { kind: "string", value: "T", help: "tensor type: model Q4_0 (default), Q8_0, F16 or F32; adapter F32 (default) or F16" },
    vocab: { kind: "int", min: 261, help: "vocabulary size (default: the shape's)" },
    layers: { kind: "int", min: 1, help: "layers (default: the shape's)" },
    seed: { kind: "int", min: 0, help: "random seed" },
    rank: { kind: "int", short: "r", min: 1, default: 16, help: "adapter rank" },
    modules: { kind: "string", value: "LIST", help: `adapter projections, comma-separated (default all: ${Object.keys(PROJECTIONS).join(",")})` },
    alpha: { kind: "number", help: "adapter.lora.alpha (default: the rank)" },
    quantizer: { kind: "string", value: "Q", choices: ["core", "random"], default: "core", help: "model Q4_0/Q8_0 blocks: the wasm core's quantizer of random weights, or random blocks" },
    force: { kind: "flag", help: "replace an existing output" },
    json: { kind: "flag", help: "print one JSON object" },
  },
  positionals: { min: 1, max: 2 },
  notes: `shapes: ${SHAPES.map((s) => s.id).join(", ")}
The output is written to a temp file beside it and renamed into place; a missing parent directory is refused.`,
}, async (values, positionals) => {
  const [what, shape] = positionals;
  if (what === "shapes") {
    for (const s of SHAPES) {
      process.stdout.write(`${s.id.padEnd(14)} ${s.architecture.padEnd(6)} n_embd ${s.nEmbd}, ${s.nLayer} layers, ${s.nHead}/${s.nHeadKv} heads, ` +
        `n_ff ${s.nFf}, vocab ${s.nVocab}  (${s.title})\n`);
    }
    return EXIT.ok;
  }
  if (what !== "model" && what !== "adapter") throw usage(`synth makes a model or an adapter, or lists shapes; got "${what}"`);
  if (!shape || !values.out) throw usage(`synth ${what} needs a SHAPE and -o OUT.gguf`);
  const { layers, seed } = values;
  const t0 = performance.now();
  let result;
  if (what === "model") {
    const type = (values.type ?? "Q4_0").toUpperCase();
    if (!["F32", "F16", "Q8_0", "Q4_0"].includes(type)) throw usage(`--type of a model wants F32, F16, Q8_0 or Q4_0; got "${values.type}"`);
    const mode = values.quantizer;
    let quantize: Quantizer | undefined;
    if (mode === "core" && (type === "Q4_0" || type === "Q8_0")) {
      const q = await coreQuantizer();
      if (q.quantize) quantize = q.quantize;
      else process.stderr.write(`lora-edge synth: wasm core unavailable (${q.reason}); writing random blocks\n`);
    }
    result = await synthModelAsync(values.out, { shape, type: type as SynthWeightType, vocab: values.vocab, layers, seed, quantize }, { force: values.force });
  } else {
    const type = (values.type ?? "F32").toUpperCase();
    if (type !== "F32" && type !== "F16") throw usage(`--type of an adapter wants F32 or F16; got "${values.type}"`);
    const modules = values.modules ? values.modules.split(",").map((m) => m.trim()) : undefined;
    for (const m of modules ?? []) if (!(m in PROJECTIONS)) throw usage(`unknown module "${m}"; known: ${Object.keys(PROJECTIONS).join(",")}`);
    result = await synthAdapterAsync(values.out, { shape, rank: values.rank, modules: modules as ProjectionName[] | undefined,
      alpha: values.alpha, type, layers, seed }, { force: values.force });
  }
  const ms = performance.now() - t0;
  if (values.json) process.stdout.write(JSON.stringify({ path: result.path, tensors: result.tensors, dataBytes: result.dataBytes,
    parameters: result.parameters, shape: result.shape, ms: Math.round(ms) }) + "\n");
  else process.stdout.write(`wrote ${result.path}: ${result.shape.title} shape, ${result.tensors} tensors, ` +
    `${(result.parameters / 1e6).toFixed(1)}M parameters, ${(result.dataBytes / 2 ** 20).toFixed(1)} MiB of tensor data (${(ms / 1000).toFixed(1)} s)\n`);
  return EXIT.ok;
});
