// The tool commands through the CLI dispatcher: --json summaries, exit codes, refusals with no output left behind.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { cli } from "../cli-capture.js";
import { parseFileScale } from "../../src/cli/adapter-args.js";
import { fixture, scratchDir } from "../fixtures.js";

afterEach(() => vi.restoreAllMocks());

const dir = scratchDir("lora-edge-toolcli-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const F32 = fixture("models/stories260K.gguf");
const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");

describe("tool commands", () => {
  it("convert --to peft and back, quantize-adapter, mix, merge and extract give JSON summaries", async () => {
    const peft = join(dir, "peft");
    let r = await cli("convert", S1, "--to", "peft", "-o", peft, "--json");
    expect(r.code).toBe(1); // a llama adapter on attn_q/attn_k needs the base's head counts
    expect(r.err).toMatch(/base model is needed \(-m BASE\.gguf\)/);
    r = await cli("convert", S1, "--to", "peft", "-m", F32, "-o", peft, "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ pairs: 35, r: 4, loraAlpha: 8, dtype: "F32" });
    r = await cli("convert", peft, "-m", F32, "-o", join(dir, "back.gguf"), "--json");
    expect(JSON.parse(r.out)).toMatchObject({ architecture: "llama", pairs: 35, alpha: 8, folded: [] });
    r = await cli("quantize-adapter", S1, "-o", join(dir, "q.gguf"), "--type", "q8_0", "--json");
    expect(JSON.parse(r.out)).toMatchObject({ type: "q8_0", types: { Q8_0: 30, F16: 40 } });
    r = await cli("mix", `${S1}:0.5`, S2, "-o", join(dir, "mix.gguf"), "--method", "svd", "--rank", "6", "--json");
    expect(JSON.parse(r.out)).toMatchObject({ method: "svd", rank: 6, inputs: [{ weight: 0.5 }, { weight: 1 }] });
    r = await cli("merge", "-m", F32, "-a", `${S1}:0.5`, "-o", join(dir, "merged.gguf"), "--type", "q8_0", "--json");
    expect(JSON.parse(r.out)).toMatchObject({ type: "q8_0", merged: 35 });
    r = await cli("extract", "--base", F32, "--tuned", join(dir, "merged.gguf"), "--rank", "4", "-o", join(dir, "ex.gguf"), "--json");
    const ex = JSON.parse(r.out);
    // The 35 merged projections, output.weight and token_embd (both re-encoded to Q8_0) differ.
    expect(ex.pairs).toBe(37);
    expect(ex.uncaptured).toEqual([]);
    expect(ex.relError).toBeGreaterThan(0);
  }, 60_000);

  it("refusals exit 1 with the reason and write nothing; usage mistakes exit 2", async () => {
    const out = join(dir, "gpt2.gguf");
    const r = await cli("convert", fixture("peft/gpt2-dialogpt-synthetic"), "-m", F32, "-o", out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/architecture not supported/);
    expect(existsSync(out)).toBe(false);
    expect((await cli("merge", "-m", fixture("models/llama-2-tiny-random.gguf"), "-a", S1, "-o", join(dir, "m.gguf"))).code).toBe(1);
    expect(existsSync(join(dir, "m.gguf"))).toBe(false);
    expect((await cli("mix", S1, "-o", join(dir, "x.gguf"), "--method", "nope")).code).toBe(2);
    expect((await cli("quantize-adapter", S1, "-o", join(dir, "x.gguf"), "--type", "q2_k")).code).toBe(2);
    expect((await cli("extract", "--base", F32)).code).toBe(2);
  });

  it("parses ADAPTER[:WEIGHT]", () => {
    expect(parseFileScale("a.gguf:0.25")).toEqual({ path: "a.gguf", scale: 0.25 });
    expect(parseFileScale("a.gguf")).toEqual({ path: "a.gguf", scale: 1 });
    expect(parseFileScale("C:/x/a.gguf")).toEqual({ path: "C:/x/a.gguf", scale: 1 });
    expect(parseFileScale("a.gguf:-1")).toEqual({ path: "a.gguf", scale: -1 });
  });
});
