// lora-edge train: fine-tune a LoRA adapter on a frozen (quantized) base in the wasm core and write it as a GGUF adapter llama.cpp loads.
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { checkOutput } from "../../output-file.js";
import { openGguf } from "../../gguf/reader.js";
import { TrainInputError } from "../../errors.js";
import { trainingData } from "../../runtime/training.js";
import { trainLora } from "../../train/run.js";
import { TARGETS, type Target } from "../../train/reference/lora.js";
import { progressBar } from "../../tools/progress.js";

const seconds = (ms: number) => (ms >= 60000 ? `${Math.floor(ms / 60000)}m${Math.round((ms % 60000) / 1000)}s` : `${(ms / 1000).toFixed(0)}s`);

export default defineCommand({
  name: "train",
  summary: "fine-tune a LoRA adapter on the device: lora-edge train -m BASE.gguf --data FILE -o adapter.gguf",
  usage: ["-m BASE.gguf --data FILE -o ADAPTER.gguf [--rank R] [--alpha A] [--targets q,k,v,o,gate,up,down] [--lr X] [--steps N | --epochs X] [--batch N] [--ctx N] [--eval-split X | --eval FILE] [--resume CKPT] [--init ADAPTER] [--json]"],
  options: {
    model: { kind: "string", short: "m", value: "FILE", help: "the base model GGUF (llama family; F32, F16, Q4_0, Q8_0, Q4_K or Q6_K weights) (required)" },
    data: { kind: "string", value: "FILE", help: "training data: plain text, or JSONL of {\"prompt\",\"completion\"} or {\"messages\":[...]} (required)" },
    output: { kind: "string", short: "o", value: "FILE", help: "the adapter to write (required)" },
    rank: { kind: "int", min: 1, max: 1024, default: 8, help: "adapter rank" },
    alpha: { kind: "number", above: 0, help: "adapter alpha (scale alpha / rank; default 2 x rank)" },
    targets: { kind: "string", value: "LIST", default: TARGETS.join(","), help: "projections to adapt, comma-separated" },
    lr: { kind: "number", above: 0, default: 1e-3, help: "peak learning rate (AdamW, warm-up then cosine)" },
    steps: { kind: "int", min: 1, help: "optimizer steps" },
    epochs: { kind: "number", above: 0, help: "passes over the data (default 1 when --steps is not given)" },
    batch: { kind: "int", min: 1, default: 4, help: "sequences per step" },
    ctx: { kind: "int", min: 2, max: 8192, default: 128, help: "tokens per sequence at most" },
    seed: { kind: "int", min: 0, default: 0, help: "seed of the adapter's start and the data order" },
    "eval-split": { kind: "number", min: 0, max: 0.9, default: 0.1, help: "fraction of the data held out for the eval loss" },
    eval: { kind: "string", value: "FILE", help: "held-out data file (instead of --eval-split)" },
    "eval-every": { kind: "int", min: 1, default: 10, help: "eval loss every N steps" },
    "weight-decay": { kind: "number", min: 0, default: 0, help: "AdamW weight decay" },
    warmup: { kind: "int", min: 0, help: "warm-up steps (default 10% of the steps, at most 100)" },
    checkpoint: { kind: "string", value: "FILE", help: "checkpoint file (default OUT.ckpt.gguf)" },
    "checkpoint-every": { kind: "int", min: 1, default: 50, help: "write the checkpoint every N steps and at the end" },
    resume: { kind: "string", value: "CKPT", help: "continue the run of this checkpoint (same options), bit for bit" },
    init: { kind: "string", value: "ADAPTER", help: "start from this adapter GGUF (its rank, alpha, targets)" },
    type: { kind: "string", value: "T", choices: ["f32", "f16"], default: "f32", help: "tensor type of the written adapter" },
    threads: { kind: "int", min: 1, max: 256, default: 1, help: "threads of the wasm core" },
    x8: { kind: "flag", help: "8-bit activations in the forward products of quantized weights, as llama.cpp runs them (faster; gradients within a few % of exact)" },
    recompute: { kind: "flag", help: "keep only each layer's input and recompute its activations in the backward pass (less memory)" },
    force: { kind: "flag", help: "replace an existing output (never an input)" },
    json: { kind: "flag", help: "print one JSON line per step, then one for the result" },
  },
  notes: "Only the adapter's A and B learn; the base stays in its own type in memory (no dequantized copy).\n" +
    "The adapter and checkpoints are written to a temp file beside them and renamed into place. A run whose loss\n" +
    "stops being finite ends with an error naming the step; its checkpoint holds the last good state.",
}, async (v) => {
  if (!v.model || !v.data || !v.output) throw usage("train needs -m BASE.gguf, --data FILE and -o ADAPTER.gguf");
  const targets = v.targets.split(",").map((t) => t.trim()).filter(Boolean);
  for (const t of targets) if (!TARGETS.includes(t as Target)) throw usage(`--targets: unknown projection '${t}' (choose among ${TARGETS.join(",")})`);
  if (v.steps !== undefined && v.epochs !== undefined) throw usage("give --steps or --epochs, not both");
  const inputs = [v.model, v.data, ...(v.eval ? [v.eval] : []), ...(v.init ? [v.init] : []), ...(v.resume ? [v.resume] : [])];
  checkOutput(v.output, { overwrite: v.force, inputs });
  const checkpoint = v.checkpoint ?? `${v.output}.ckpt.gguf`;
  if (checkpoint !== v.resume) checkOutput(checkpoint, { overwrite: true, inputs: inputs.filter((p) => p !== v.resume) });
  const model = openGguf(v.model);
  const data = trainingData(model, v.data, { ctx: v.ctx, evalSplit: v.eval ? undefined : v["eval-split"], evalFile: v.eval, seed: v.seed });
  if (data.train.length === 0) throw new TrainInputError(v.data, "data", "every sequence was held out; lower --eval-split");
  let bar: ReturnType<typeof progressBar> | undefined;
  let evalLoss: number | undefined;
  try {
  for await (const e of trainLora({
    model: v.model, train: data.train, eval: data.eval, rank: v.rank, alpha: v.alpha, targets: targets as Target[], lr: v.lr,
    steps: v.steps, epochs: v.epochs, batch: v.batch, ctx: v.ctx, seed: v.seed, warmupSteps: v.warmup, weightDecay: v["weight-decay"],
    threads: v.threads, x8: v.x8, recompute: v.recompute, evalEvery: v["eval-every"], checkpoint, checkpointEvery: v["checkpoint-every"],
    resume: v.resume, init: v.init,
  })) {
    if (e.kind === "step") {
      if (e.evalLoss !== undefined) evalLoss = e.evalLoss;
      if (v.json) {
        process.stdout.write(JSON.stringify({ step: e.step, steps: e.steps, loss: e.loss, evalLoss: e.evalLoss ?? null, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: Math.round(e.tokensPerSecond), etaMs: Math.round(e.etaMs) }) + "\n");
      } else {
        bar ??= progressBar("train", e.steps - e.step + 1);
        bar.tick(`step ${e.step}/${e.steps} loss ${e.loss.toFixed(3)}${evalLoss !== undefined ? ` eval ${evalLoss.toFixed(3)}` : ""} ${Math.round(e.tokensPerSecond)} tok/s ETA ${seconds(e.etaMs)}`);
      }
      continue;
    }
    bar?.stop();
    bar = undefined;
    e.adapter.write(v.output, v.type as "f32" | "f16");
    const result = { output: v.output, checkpoint, steps: e.steps, initialEvalLoss: e.initialEvalLoss ?? null, evalLoss: e.evalLoss ?? null, pairs: e.adapter.pairs.length, train: data.train.length, eval: data.eval.length };
    if (v.json) process.stdout.write(JSON.stringify(result) + "\n");
    else process.stdout.write(`wrote ${v.output} (${result.pairs} pairs, ${e.steps} steps${e.evalLoss !== undefined ? `, eval loss ${e.evalLoss.toFixed(3)}` : ""}); checkpoint ${checkpoint}\n`);
  }
  } finally {
    bar?.stop();
  }
  return EXIT.ok;
});
