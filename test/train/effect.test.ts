// Training has a real effect: `lora-edge train` (rank 8, stories260K, the logbook text) lowers the held-out loss; llama.cpp loads the adapter, its perplexity on the held-out text is lower than the base's, and greedy text takes the logbook's style.
import path from "node:path";
import { readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Token } from "node-llama-cpp";
import { cli } from "../cli-capture.js";
import { cpuLlama } from "../llama.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture, scratchDir } from "../fixtures.js";

const dir = scratchDir("lora-edge-train-effect-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = fixture("models/stories260K.gguf");
const adapter = path.join(dir, "logbook.gguf");
let result: { initialEvalLoss: number; evalLoss: number; steps: number; pairs: number };
let stepLines: { step: number; loss: number }[];

beforeAll(async () => {
  const r = await cli("train", "-m", model, "--data", fixture("train/logbook-train.txt"), "--eval", fixture("train/logbook-eval.txt"),
    "-o", adapter, "--rank", "8", "--steps", "30", "--batch", "4", "--ctx", "64", "--lr", "5e-3", "--eval-every", "30", "--seed", "1", "--json");
  expect(r.code, r.err).toBe(0);
  const lines = r.out.trim().split("\n").map((l) => JSON.parse(l));
  result = lines[lines.length - 1];
  stepLines = lines.slice(0, -1);
});

/** llama.cpp's mean negative log-likelihood per token of `text` (after BOS), with or without the adapter. */
async function llamaNll(text: string, lora?: string): Promise<number> {
  const llama = await cpuLlama();
  const m = await llama.loadModel({ modelPath: model });
  try {
    const ctx = await m.createContext({ contextSize: 512, threads: availableParallelism(), lora: lora ? { adapters: [{ filePath: lora, scale: 1 }] } : undefined });
    try {
      const tokens = [m.tokens.bos!, ...m.tokenize(text)].slice(0, 512) as Token[];
      const out = await ctx.getSequence().controlledEvaluate(tokens.map((t, i) => (i + 1 < tokens.length ? [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }] : t)));
      let nll = 0;
      for (let i = 0; i + 1 < tokens.length; i++) nll -= Math.log(out[i]!.next.probabilities!.get(tokens[i + 1]) ?? 1e-30);
      return nll / (tokens.length - 1);
    } finally {
      await ctx.dispose();
    }
  } finally {
    await m.dispose();
  }
}

async function greedy(prompt: string, lora?: string): Promise<string> {
  const llama = await cpuLlama();
  const m = await llama.loadModel({ modelPath: model });
  try {
    const ctx = await m.createContext({ contextSize: 256, threads: 1, lora: lora ? { adapters: [{ filePath: lora, scale: 1 }] } : undefined });
    try {
      const seq = ctx.getSequence();
      const out: Token[] = [];
      for await (const t of seq.evaluate([m.tokens.bos!, ...m.tokenize(prompt)], { temperature: 0 })) {
        out.push(t);
        if (out.length >= 40) break;
      }
      return m.detokenize(out);
    } finally {
      await ctx.dispose();
    }
  } finally {
    await m.dispose();
  }
}

/** Words of the logbook's register (weather, watches, ship), none of them in TinyStories' usual openings. */
const STYLE = ["wind", "sea", "noon", "night", "morning", "crew", "sail", "deck", "light", "harbor", "calm", "north", "east", "west", "south"];
const styleWords = (s: string) => STYLE.filter((w) => new RegExp(`\\b${w}\\b`, "i").test(s)).length;

describe("a rank-8 adapter trained on the logbook text (30 steps of 4 x 64 tokens)", () => {
  // measured: 3.34 nats per token before, 1.23 after
  it("the held-out loss drops clearly (to under 60% of the base's)", () => {
    expect(result.steps).toBe(30);
    expect(result.pairs).toBe(5 * 7);
    expect(stepLines.length).toBe(30);
    expect(result.initialEvalLoss).toBeGreaterThan(2.5);
    expect(result.evalLoss).toBeLessThan(0.6 * result.initialEvalLoss);
  });

  // measured: llama.cpp's perplexity on the held-out entries 26.3 with the base, 3.3 with the adapter
  it("llama.cpp loads it, and its perplexity on the held-out text is lower than the base's", async () => {
    const text = readFileSync(fixture("train/logbook-eval.txt"), "utf8");
    const base = await llamaNll(text), tuned = await llamaNll(text, adapter);
    expect(Math.exp(tuned)).toBeLessThan(0.5 * Math.exp(base));
  });

  it("--type f16 writes the same adapter in F16 halves, and llama.cpp gives it the same perplexity (to 1%)", async () => {
    const f16 = path.join(dir, "logbook-f16.gguf");
    const r = await cli("train", "-m", model, "--data", fixture("train/logbook-train.txt"), "--eval", fixture("train/logbook-eval.txt"),
      "-o", f16, "--type", "f16", "--rank", "8", "--steps", "30", "--batch", "4", "--ctx", "64", "--lr", "5e-3", "--eval-every", "30", "--seed", "1", "--json");
    expect(r.code, r.err).toBe(0);
    const tensors = openGguf(f16).tensors;
    expect(tensors.length).toBe(2 * 5 * 7);
    for (const t of tensors) expect(t.type.name).toBe("F16");
    const text = readFileSync(fixture("train/logbook-eval.txt"), "utf8");
    const a = await llamaNll(text, adapter), b = await llamaNll(text, f16);
    expect(Math.abs(Math.exp(b) / Math.exp(a) - 1)).toBeLessThan(0.01);
  });

  it("greedy text takes the logbook's style", async () => {
    const base = await greedy("Day 12.", undefined), tuned = await greedy("Day 12.", adapter);
    // measured: base "Daddy liked to see a big box. He liked to play with his ball. ..."; tuned "Wind from the sea, light. Wind from the sea. ..."
    expect(styleWords(tuned)).toBeGreaterThanOrEqual(3);
    expect(styleWords(tuned)).toBeGreaterThan(styleWords(base));
  });

  it("convert --to peft exports it", async () => {
    const out = path.join(dir, "peft");
    const r = await cli("convert", adapter, "--to", "peft", "-o", out, "-m", model, "--json");
    expect(r.code, r.err).toBe(0);
    const config = JSON.parse(readFileSync(path.join(out, "adapter_config.json"), "utf8"));
    expect(config.r).toBe(8);
    expect(config.lora_alpha).toBe(16);
  });
});
