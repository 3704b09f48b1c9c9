// The training text for checking that training has an effect: a self-written ship's logbook, held-out entries apart, in a style stories260K does not know.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { openGguf } from "../../src/gguf/reader.js";
import { createTokenizer, vocabFromMetadata, type MetadataSource } from "../../src/backends/wasm/tokenizer/index.js";
import { loadReferenceModel, loss } from "../../src/train/reference/model.js";
import { fixture } from "../fixtures.js";

const entries = (name: string) => readFileSync(fixture(`train/${name}`), "utf8").split(/\n\s*\n/).map((e) => e.trim()).filter(Boolean);
const train = entries("logbook-train.txt");
const heldOut = entries("logbook-eval.txt");
const file = openGguf(fixture("models/stories260K.gguf"));
const tokenizer = createTokenizer(vocabFromMetadata(file as unknown as MetadataSource));

describe("logbook training text", () => {
  it("has training and held-out entries, none shared, in plain ASCII", () => {
    expect(train.length).toBeGreaterThanOrEqual(30);
    expect(heldOut.length).toBeGreaterThanOrEqual(5);
    for (const e of heldOut) expect(train).not.toContain(e);
    for (const e of [...train, ...heldOut]) expect(e).toMatch(/^Day \d+\. [\x20-\x7e\n]+$/);
  });

  it("is written in words stories260K's vocabulary has: under 3% of its tokens are byte fallbacks", () => {
    const ids = tokenizer.tokenize(train.join("\n\n"));
    const bytes = ids.filter((i) => tokenizer.vocab.tokens[i].startsWith("<0x")).length;
    expect(ids.length).toBeGreaterThan(4000);
    expect(bytes / ids.length).toBeLessThan(0.03);
  });

  // Measured with the f64 reference: 3.1 to 3.5 nats per token on the held-out entries, 0.35 and 1.2 on the two
  // TinyStories-like sentences. The text is as far from the base's style as that; training should close the gap.
  it("is not TinyStories: the base model's loss on it is well above its loss on TinyStories-like text", () => {
    const model = loadReferenceModel(file);
    const meanLoss = (texts: string[]) => texts.reduce((s, t) => s + loss(model, undefined, [{ tokens: tokenizer.tokenize(t, { addSpecial: true }) }]), 0) / texts.length;
    const logbook = meanLoss(heldOut.slice(0, 3));
    const stories = meanLoss([
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big dog.",
      "Tom and Sue went to the park. They played with a red ball. They were very happy.",
    ]);
    expect(logbook).toBeGreaterThan(2.5);
    expect(logbook).toBeGreaterThan(2 * stories);
  });
});
