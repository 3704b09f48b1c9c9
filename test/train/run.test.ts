// Training runs on stories260K: resume from a checkpoint continues bit for bit, a diverging run stops with its last good checkpoint, and bad input is refused with a typed error.
import path from "node:path";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { TrainDivergedError, TrainInputError } from "../../src/errors.js";
import { openGguf } from "../../src/gguf/reader.js";
import { kvInputsFrom, tensorInputsFrom, writeGguf } from "../../src/gguf/writer.js";
import { trainingData } from "../../src/runtime/training.js";
import { readCheckpoint } from "../../src/train/adapter-file.js";
import { trainLora, type TrainDoneEvent, type TrainEvent, type TrainRunOptions } from "../../src/train/run.js";
import { fixture, scratchDir } from "../fixtures.js";

const dir = scratchDir("lora-edge-train-run-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = fixture("models/stories260K.gguf");
const data = trainingData(openGguf(model), fixture("train/logbook-train.txt"), { ctx: 32, evalSplit: 0.1, seed: 1 });

async function collect(o: TrainRunOptions): Promise<TrainEvent[]> {
  const out: TrainEvent[] = [];
  for await (const e of trainLora(o)) out.push(e);
  return out;
}
const doneOf = (ev: TrainEvent[]) => ev.find((e): e is TrainDoneEvent => e.kind === "done")!;
const bits = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("base64");

const base: TrainRunOptions = { model, train: data.train, eval: data.eval, rank: 4, lr: 2e-3, steps: 6, batch: 2, ctx: 32, seed: 3, evalEvery: 3 };

describe("training runs", () => {
  it("cuts the text into context windows and holds some out", () => {
    expect(data.train.length).toBeGreaterThan(50);
    expect(data.eval.length).toBe(Math.floor((data.train.length + data.eval.length) * 0.1));
    for (const s of data.train) expect(s.tokens.length).toBeLessThanOrEqual(32);
  });

  it("6 steps straight equal 3 steps, then a resume from the checkpoint for 3 more, bit for bit", async () => {
    const straight = await collect(base);
    const ck = path.join(dir, "half.ckpt.gguf");
    const first = await collect({ ...base, checkpoint: ck, checkpointEvery: 3, steps: 6, stopAfter: 3 });
    expect(first.filter((e) => e.kind === "step").length).toBe(3);
    expect(readCheckpoint(ck, doneOf(straight).adapter.pairs.map((p) => p.pair)).step).toBe(3);
    const resumed = await collect({ ...base, resume: ck });
    const steps = (ev: TrainEvent[]) => ev.filter((e) => e.kind === "step").map((e) => (e.kind === "step" ? [e.step, e.loss, e.gradNorm, e.lr] : []));
    expect(steps(resumed)).toEqual(steps(straight).slice(3));
    const a = doneOf(straight).adapter.pairs, b = doneOf(resumed).adapter.pairs;
    expect(b.map((p) => bits(p.a) + bits(p.b))).toEqual(a.map((p) => bits(p.a) + bits(p.b)));
  });

  it("--epochs sets the step count: 2 epochs over 3 sequences at batch 2 are 3 steps", async () => {
    const ev = await collect({ ...base, train: data.train.slice(0, 3), steps: undefined, epochs: 2, evalEvery: 100 });
    expect(ev.filter((e) => e.kind === "step").map((e) => (e.kind === "step" ? e.step : -1))).toEqual([1, 2, 3]);
  });

  it("--init starts from a written adapter: its held-out loss at the start is the first run's at the end", async () => {
    const first = doneOf(await collect({ ...base, steps: 3 }));
    const file = path.join(dir, "first.gguf");
    first.adapter.write(file);
    const second = doneOf(await collect({ ...base, steps: 1, init: file }));
    expect(second.initialEvalLoss).toBe(first.evalLoss);
    expect(second.adapter.pairs.length).toBe(first.adapter.pairs.length);
  });

  it("a checkpoint of another run is refused", async () => {
    const ck = path.join(dir, "other.ckpt.gguf");
    await collect({ ...base, steps: 1, checkpoint: ck });
    await expect(collect({ ...base, seed: 4, resume: ck })).rejects.toThrow(TrainInputError);
  });

  it("a diverging run stops with the step and keeps the last good checkpoint", async () => {
    const ck = path.join(dir, "diverge.ckpt.gguf");
    const err = await collect({ ...base, lr: 1e30, steps: 20, warmupSteps: 0, checkpoint: ck }).catch((e) => e);
    expect(err).toBeInstanceOf(TrainDivergedError);
    expect(err.step).toBeGreaterThan(0);
    expect(err.message).toContain(ck);
    expect(existsSync(ck)).toBe(true);
    const c = readCheckpoint(ck, doneOf(await collect({ ...base, steps: 1 })).adapter.pairs.map((p) => p.pair));
    expect(c.step).toBe(err.step);
    for (const p of c.params) for (const v of p) expect(Number.isFinite(v)).toBe(true);
  });

  it("non-finite gradients with a finite loss stop the run (A zero, B huge: the loss is the base's, dA overflows)", async () => {
    const start = doneOf(await collect({ ...base, steps: 1 })).adapter;
    for (const p of start.pairs) {
      p.a.fill(0);
      p.b.fill(3e38);
    }
    const file = path.join(dir, "huge-b.gguf");
    start.write(file);
    const err = await collect({ ...base, steps: 2, init: file, eval: undefined }).catch((e) => e);
    expect(err).toBeInstanceOf(TrainDivergedError);
    expect(err.message).toContain("the gradients are not finite");
    expect(err.step).toBe(0);
  });

  it("bad options and an unsupported architecture are refused with typed errors", async () => {
    await expect(collect({ ...base, rank: 0 })).rejects.toThrow(/rank: must be a positive integer/);
    await expect(collect({ ...base, lr: Number.NaN })).rejects.toThrow(/lr: the learning rate must be a finite positive number/);
    await expect(collect({ ...base, lr: Infinity })).rejects.toThrow(TrainInputError);
    const f = openGguf(model);
    const other = path.join(dir, "phi.gguf");
    writeGguf(other, { kv: kvInputsFrom(f).map((k) => (k.key === "general.architecture" ? { ...k, value: "phi2" } : k)), tensors: tensorInputsFrom(f) });
    await expect(collect({ ...base, model: other })).rejects.toThrow(/general.architecture.*unsupported architecture 'phi2'/);
  });

  it("bad data: an empty file, a JSONL line without the fields, a record longer than the context", () => {
    const m = openGguf(model);
    const file = (name: string, text: string) => {
      const p = path.join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    expect(() => trainingData(m, file("empty.txt", " \n\n"), { ctx: 32 })).toThrow(/empty.txt: data: the file holds no training text/);
    const jsonl = file("bad.jsonl", `{"prompt":"a","completion":"b"}\n{"prompt":"a"}\n`);
    expect(() => trainingData(m, jsonl, { ctx: 32 })).toThrow(/bad.jsonl: line 2: needs string fields "prompt" and "completion"/);
    const long = file("long.jsonl", `{"prompt":"Day one.","completion":"${"The wind was from the north. ".repeat(20)}"}\n`);
    expect(() => trainingData(m, long, { ctx: 32 })).toThrow(/long.jsonl: line 1: \d+ tokens, longer than the context of 32/);
    try {
      trainingData(m, jsonl, { ctx: 32 });
    } catch (e) {
      expect(e).toBeInstanceOf(TrainInputError);
    }
  });

  it("JSONL prompt/completion: the loss counts the completion (and its end token) only", () => {
    const p = path.join(dir, "pairs.jsonl");
    writeFileSync(p, `{"prompt":"Day 9. Morning.","completion":" Wind from the west."}\n`);
    const { train } = trainingData(openGguf(model), p, { ctx: 64 });
    const s = train[0];
    const learnt = s.lossMask!.filter(Boolean).length;
    expect(learnt).toBeGreaterThan(1);
    expect(learnt).toBeLessThan(s.tokens.length - 1);
    // the masked-in predictions are the last ones
    expect(s.lossMask!.slice(-learnt).every(Boolean)).toBe(true);
  });
});
