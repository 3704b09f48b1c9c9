// aLoRA in the tools and the CLI: convert carries the invocation both ways, quantize-adapter keeps it, mix and merge refuse.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { fixture, scratchDir } from "../fixtures.js";
import { cli } from "../cli-capture.js";
import { openGguf } from "../../src/gguf/reader.js";
import { adapterMeta } from "../../src/gguf/metadata.js";
import { ALORA_INVOCATION_KEY, aloraInvocationKv } from "../../src/gguf/alora.js";
import { kvInputsFrom, tensorInputsFrom, writeGguf } from "../../src/gguf/writer.js";
import { peftToGguf } from "../../src/tools/peft/to-gguf.js";
import { ggufToPeft } from "../../src/tools/peft/from-gguf.js";
import { parsePeftConfig } from "../../src/tools/peft/config.js";
import { quantizeAdapter } from "../../src/tools/quantize-adapter.js";
import { mixAdapters } from "../../src/tools/mix.js";
import { mergeAdapters } from "../../src/tools/merge.js";
import { readAdapter } from "../../src/tools/lora.js";
import { UnsupportedAdapterError } from "../../src/errors.js";
import { ALORA_TEST_ADAPTER } from "../../src/tools/demo-adapters.js";
import { projections, randomArray, rng, writePeftDir } from "./helpers.js";

afterEach(() => vi.restoreAllMocks());

const dir = scratchDir("lora-edge-alora-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const BASE = fixture("models/stories260K.gguf");
const ALORA = fixture(`adapters/${ALORA_TEST_ADAPTER.file}`);
const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const INVOCATION = [385, 328, 432];

const invocationOf = (file: string) => { using g = openGguf(file); return adapterMeta(g).aloraInvocationTokens; };
const peftConfig = (peftDir: string) => JSON.parse(readFileSync(join(peftDir, "adapter_config.json"), "utf8")) as Record<string, unknown>;

/** The aLoRA test adapter with other invocation ids, written to `out`. */
function withInvocation(out: string, tokens: number[]): string {
  using g = openGguf(ALORA);
  writeGguf(out, { kv: [...kvInputsFrom(g).filter((e) => e.key !== ALORA_INVOCATION_KEY), aloraInvocationKv(tokens)], tensors: tensorInputsFrom(g) });
  return out;
}

/** A PEFT directory for stories260K (rank 4 on q/v of every layer) with `extra` config fields. */
function peftDir(name: string, extra: Record<string, unknown>): string {
  const path = join(dir, name);
  const r = rng(7);
  const halves = projections(BASE, ["q_proj", "v_proj"]).map((p) => ({ ...p, rank: 4, a: randomArray(4 * p.nIn, 0.3, r), b: randomArray(p.nOut * 4, 0.3, r) }));
  writePeftDir(path, { r: 4, lora_alpha: 8, target_modules: ["q_proj", "v_proj"], ...extra }, halves);
  return path;
}

describe("convert", () => {
  it("PEFT -> GGUF writes alora_invocation_tokens as adapter.alora.invocation_tokens (u32), and back", () => {
    const src = peftDir("alora-peft", { alora_invocation_tokens: INVOCATION });
    const gguf = join(dir, "from-peft.gguf");
    const r = peftToGguf(src, BASE, gguf);
    expect(r.aloraInvocationTokens).toEqual(INVOCATION);
    expect(invocationOf(gguf)).toEqual(INVOCATION);
    const back = join(dir, "back-peft");
    const p = ggufToPeft(gguf, back, { base: BASE });
    expect(p.aloraInvocationTokens).toEqual(INVOCATION);
    expect(peftConfig(back).alora_invocation_tokens).toEqual(INVOCATION);
    expect(parsePeftConfig(join(back, "adapter_config.json")).aloraInvocationTokens).toEqual(INVOCATION);
  });

  it("the aLoRA test adapter goes to PEFT and back with its invocation; a plain one gets no alora field", () => {
    const peft = join(dir, "alora-to-peft");
    ggufToPeft(ALORA, peft, { base: BASE });
    expect(peftConfig(peft).alora_invocation_tokens).toEqual(INVOCATION);
    const again = join(dir, "alora-again.gguf");
    peftToGguf(peft, BASE, again);
    expect(invocationOf(again)).toEqual(INVOCATION);
    const plain = join(dir, "plain-to-peft");
    ggufToPeft(S1, plain, { base: BASE });
    expect("alora_invocation_tokens" in peftConfig(plain)).toBe(false);
  });

  it("null or an empty list is a plain LoRA, as in PEFT and llama.cpp's converter", () => {
    for (const [name, value] of [["null", null], ["empty", []]] as const) {
      const out = join(dir, `plain-${name}.gguf`);
      expect(peftToGguf(peftDir(`peft-${name}`, { alora_invocation_tokens: value }), BASE, out).aloraInvocationTokens).toBeNull();
      expect(invocationOf(out)).toBeUndefined();
    }
  });

  it("refuses ids outside the base's vocabulary, bad ids, and an invocation_string without ids, writing nothing", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["outside", { alora_invocation_tokens: [385, 600] }, /token id 600 \(item 1\) is outside the base's vocabulary of 512 tokens/],
      ["negative", { alora_invocation_tokens: [-1] }, /item 0 is -1, not a token id/],
      ["string", { alora_invocation_tokens: "One day," }, /must be a list of token ids or null/],
      ["old", { invocation_string: "One day," }, /invocation_string but no alora_invocation_tokens/],
    ];
    for (const [name, extra, why] of cases) {
      const out = join(dir, `refused-${name}.gguf`);
      const e = (() => { try { peftToGguf(peftDir(`peft-${name}`, extra), BASE, out); } catch (x) { return x; } })() as UnsupportedAdapterError;
      expect(e, name).toBeInstanceOf(UnsupportedAdapterError);
      expect(e.field).toBe(name === "old" ? "invocation_string" : "alora_invocation_tokens");
      expect(e.message).toMatch(why);
      expect(existsSync(out)).toBe(false);
    }
  });

  it("GGUF -> PEFT refuses ids outside the base's vocabulary when the base is given", () => {
    const outside = withInvocation(join(dir, "outside.gguf"), [385, 512]);
    const out = join(dir, "outside-peft");
    expect(() => ggufToPeft(outside, out, { base: BASE })).toThrow(/adapter\.alora\.invocation_tokens: token id 512 \(item 1\) is outside/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("quantize-adapter, mix and merge", () => {
  it("quantize-adapter keeps the invocation", () => {
    for (const type of ["f16", "q8_0"] as const) {
      const out = join(dir, `alora-${type}.gguf`);
      quantizeAdapter(ALORA, out, type);
      expect(invocationOf(out), type).toEqual(INVOCATION);
    }
  });

  it("mix refuses an aLoRA input, with or without plain ones, before writing anything", async () => {
    for (const inputs of [[ALORA], [S1, ALORA]]) {
      const out = join(dir, "mixed.gguf");
      const e = await mixAdapters(inputs.map((path) => ({ path, weight: 1 })), out, "cat").catch((x) => x);
      expect(e).toBeInstanceOf(UnsupportedAdapterError);
      expect(e.file).toBe(ALORA);
      expect(e.field).toBe(ALORA_INVOCATION_KEY);
      expect(e.message).toMatch(/an aLoRA adapter cannot be mixed/);
      expect(existsSync(out)).toBe(false);
    }
    // The plain fixture still mixes (readAdapter carries the key only for aLoRA files).
    expect(readAdapter(S1).extraKv.map((k) => k.key)).not.toContain(ALORA_INVOCATION_KEY);
  });

  it("merge refuses an aLoRA input: a merge cannot keep activation", async () => {
    const out = join(dir, "merged.gguf");
    const e = await mergeAdapters(BASE, [{ path: S1, scale: 1 }, { path: ALORA, scale: 1 }], out).catch((x) => x);
    expect(e).toBeInstanceOf(UnsupportedAdapterError);
    expect(e.file).toBe(ALORA);
    expect(e.field).toBe(ALORA_INVOCATION_KEY);
    expect(e.message).toMatch(/a merge cannot keep activation/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("CLI", () => {
  it("inspect shows whether an adapter is an aLoRA one, in text and JSON", async () => {
    const t = await cli("inspect", ALORA);
    expect(t.code).toBe(0);
    expect(t.out).toContain("aLoRA: acts from the last occurrence of the invocation tokens [385, 328, 432] on");
    expect(t.out).toMatch(/adapter\.alora\.invocation_tokens\s+uint32\[3\] \[385, 328, 432\]/);
    expect((await cli("inspect", S1)).out).toContain("plain LoRA: acts on every token");
    expect(JSON.parse((await cli("inspect", ALORA, "--json")).out).adapter.aloraInvocationTokens).toEqual(INVOCATION);
    expect(JSON.parse((await cli("inspect", S1, "--json")).out).adapter.aloraInvocationTokens).toBeNull();
  });

  it("check names the invocation when it fits, and refuses ids outside the vocabulary naming the key (exit 1)", async () => {
    const ok = await cli("check", "-m", BASE, ALORA);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain("aLoRA invocation [385, 328, 432]");
    const bad = withInvocation(join(dir, "bad-vocab.gguf"), [385, 9999]);
    const r = await cli("check", "-m", BASE, bad);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/adapter\.alora\.invocation_tokens: the invocation sequence token id 9999 \(item 1\) is outside the base's vocabulary of 512 tokens/);
    const j = JSON.parse((await cli("check", "-m", BASE, bad, "--json")).out);
    expect(j.ok).toBe(false);
    expect(j.problems[0]).toMatchObject({ tensor: ALORA_INVOCATION_KEY, expected: "token ids below 512", actual: "[385, 9999]" });
  });

  it("mix and merge refuse an aLoRA adapter with exit 1 and the reason; convert prints the invocation", async () => {
    const m = await cli("mix", S1, ALORA, "-o", join(dir, "cli-mix.gguf"));
    expect(m.code).toBe(1);
    expect(m.err).toMatch(/adapter\.alora\.invocation_tokens.*cannot be mixed/);
    const g = await cli("merge", "-m", BASE, "-a", ALORA, "-o", join(dir, "cli-merge.gguf"));
    expect(g.code).toBe(1);
    expect(g.err).toMatch(/cannot be merged/);
    const c = await cli("convert", ALORA, "--to", "peft", "-m", BASE, "-o", join(dir, "cli-peft"));
    expect(c.code).toBe(0);
    expect(c.out).toContain("aLoRA invocation [385, 328, 432]");
  });
});
