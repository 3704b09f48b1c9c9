// lora-edge inspect and check through the CLI dispatcher: output, JSON shape and exit codes.
import { afterEach, describe, expect, it, vi } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixture, scratchDir } from "../fixtures.js";
import { cli } from "../cli-capture.js";


afterEach(() => vi.restoreAllMocks());

const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");

describe("lora-edge inspect", () => {
  it("prints a model's header, summarised arrays and tensors grouped by layer", async () => {
    const r = await cli("inspect", fixture("models/stories260K-Q4_0.gguf"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/GGUF v3, model, architecture llama, 48 tensors/);
    expect(r.out).toMatch(/tokenizer.ggml.tokens\s+string\[512\] \[.*\.\.\. \(512 items\)\]/);
    expect(r.out).toMatch(/layer 4 \(9 tensors/);
    expect(r.out).toMatch(/blk.0.attn_q.weight\s+Q4_0\s+\[64, 64\]/);
  });

  it("gives one JSON object with the documented fields for a model and an adapter", async () => {
    const m = JSON.parse((await cli("inspect", fixture("models/stories260K.gguf"), "--json")).out);
    expect(m).toMatchObject({ version: 3, architecture: "llama", kind: "model", tensorCount: 48,
      hparams: { n_embd: 64, n_layer: 5, n_head: 8, n_head_kv: 4, n_ff: 172, n_vocab: 512 } });
    const a = JSON.parse((await cli("inspect", S1, "--json")).out);
    expect(a).toMatchObject({ kind: "adapter", tensorCount: 70, adapter: { alpha: 8, ranks: [4] } });
    expect(a.adapter.targets).toHaveLength(7);
  });

  it("inspects the embedded default model when no file is given", async () => {
    const r = await cli("inspect", "--json");
    expect(JSON.parse(r.out).file).toMatch(/gguf[\\/]stories260K\.gguf$/);
  });

  it("prints one line and exits 1 for an invalid file, with no stack trace unless --debug", async () => {
    const bad = join(scratchDir(), "truncated.gguf");
    writeFileSync(bad, readFileSync(S1).subarray(0, 3000));
    const r = await cli("inspect", bad);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/truncated\.gguf \(offset \d+, .*\): .*truncated/);
    const d = await cli("inspect", bad, "--debug");
    expect(d.err).toMatch(/at .*reader/);
  });

  it("exits 2 on usage errors", async () => {
    expect((await cli("inspect", "a", "b")).code).toBe(2);
    expect((await cli("no-such-command")).code).toBe(2);
  });
});

describe("lora-edge check", () => {
  it("exits 0 when the adapter fits, with a JSON report", async () => {
    const r = await cli("check", "-m", fixture("models/stories260K-Q8_0.gguf"), S1, "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, problems: [] });
  });

  it("exits 1 with every problem when it does not fit", async () => {
    const r = await cli("check", "-m", fixture("models/llama-2-tiny-random.gguf"), S1, "--json");
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(false);
    expect(j.problems[0]).toEqual({ tensor: "blk.0.attn_q.weight.lora_a", expected: "[8, 4]", actual: "[64, 4]", message: expect.any(String) });
    const text = await cli("check", "-m", fixture("models/llama-2-tiny-random.gguf"), S1);
    expect(text.out).toMatch(/^does not fit: 42 problem/);
  });

  it("exits 1 for an invalid or missing file and 2 for usage errors", async () => {
    expect((await cli("check", "-m", fixture("models/stories260K.gguf"), join(scratchDir(), "none.gguf"))).code).toBe(1);
    expect((await cli("check", S1)).code).toBe(2);
    expect((await cli("check", "-m")).code).toBe(2);
  });
});
