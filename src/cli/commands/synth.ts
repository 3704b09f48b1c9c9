// lora-edge synth: writes a generated model of a real shape (random weights, valid tokenizer) or a random LoRA adapter.
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { SHAPES, PROJECTIONS, synthAdapter, synthModel, type ProjectionName, type Quantizer, type SynthWeightType } from "../../tools/synth.js";
import { coreQuantizer } from "../../tools/synth/core-quantizer.js";

const USAGE = `usage: lora-edge synth model SHAPE -o OUT.gguf [--type F16|Q8_0|Q4_0|F32] [--vocab N] [--layers N] [--seed N] [--quantizer core|random]
       lora-edge synth adapter SHAPE -o OUT.gguf [--rank R] [--modules q,k,v,o,gate,up,down] [--alpha A] [--type F32|F16] [--layers N] [--seed N]
       lora-edge synth shapes
shapes: ${SHAPES.map((s) => s.id).join(", ")}`;

const command: Command = {
  name: "synth",
  summary: "generated models of real shapes and random LoRA adapters: lora-edge synth model llama-3.2-1b -o m.gguf",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        out: { type: "string", short: "o" }, type: { type: "string" }, vocab: { type: "string" }, layers: { type: "string" },
        seed: { type: "string" }, rank: { type: "string", short: "r" }, modules: { type: "string" }, alpha: { type: "string" },
        quantizer: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) { process.stdout.write(USAGE + "\n"); return EXIT.ok; }
    const [what, shape] = positionals;
    if (what === "shapes") {
      for (const s of SHAPES) {
        process.stdout.write(`${s.id.padEnd(14)} ${s.architecture.padEnd(6)} n_embd ${s.nEmbd}, ${s.nLayer} layers, ${s.nHead}/${s.nHeadKv} heads, ` +
          `n_ff ${s.nFf}, vocab ${s.nVocab}  (${s.title})\n`);
      }
      return EXIT.ok;
    }
    if ((what !== "model" && what !== "adapter") || !shape || !values.out || positionals.length > 2) throw new UsageError(USAGE);
    const int = (v: string | undefined, name: string, min = 1) => {
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
      return Number(v);
    };
    const layers = int(values.layers, "layers");
    const seed = int(values.seed, "seed", 0);
    const t0 = performance.now();
    let result;
    if (what === "model") {
      const type = (values.type ?? "Q4_0").toUpperCase();
      if (!["F32", "F16", "Q8_0", "Q4_0"].includes(type)) throw new UsageError(`--type must be F32, F16, Q8_0 or Q4_0, got "${values.type}"`);
      const mode = values.quantizer ?? "core";
      if (mode !== "core" && mode !== "random") throw new UsageError(`--quantizer must be core or random, got "${mode}"`);
      let quantize: Quantizer | undefined;
      if (mode === "core" && (type === "Q4_0" || type === "Q8_0")) {
        const q = await coreQuantizer();
        if (q.quantize) quantize = q.quantize;
        else process.stderr.write(`lora-edge synth: wasm core unavailable (${q.reason}); writing random blocks\n`);
      }
      result = synthModel(values.out, { shape, type: type as SynthWeightType, vocab: int(values.vocab, "vocab", 261), layers, seed, quantize });
    } else {
      const type = (values.type ?? "F32").toUpperCase();
      if (type !== "F32" && type !== "F16") throw new UsageError(`adapter --type must be F32 or F16, got "${values.type}"`);
      const modules = values.modules ? values.modules.split(",").map((m) => m.trim()) : undefined;
      for (const m of modules ?? []) if (!(m in PROJECTIONS)) throw new UsageError(`unknown module "${m}"; known: ${Object.keys(PROJECTIONS).join(",")}`);
      const alpha = values.alpha === undefined ? undefined : Number(values.alpha);
      if (alpha !== undefined && !Number.isFinite(alpha)) throw new UsageError(`--alpha must be a number, got "${values.alpha}"`);
      result = synthAdapter(values.out, { shape, rank: int(values.rank, "rank") ?? 16, modules: modules as ProjectionName[] | undefined,
        alpha, type, layers, seed });
    }
    const ms = performance.now() - t0;
    if (values.json) process.stdout.write(JSON.stringify({ path: result.path, tensors: result.tensors, dataBytes: result.dataBytes,
      parameters: result.parameters, shape: result.shape, ms: Math.round(ms) }) + "\n");
    else process.stdout.write(`wrote ${result.path}: ${result.shape.title} shape, ${result.tensors} tensors, ` +
      `${(result.parameters / 1e6).toFixed(1)}M parameters, ${(result.dataBytes / 2 ** 20).toFixed(1)} MiB of tensor data (${(ms / 1000).toFixed(1)} s)\n`);
    return EXIT.ok;
  },
};
export default command;
