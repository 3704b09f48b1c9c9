// Strict inputs: NaN/Inf adapter data refused everywhere naming the tensor, scale and sampling bounds, missing files, extract's rank.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "../cli-capture.js";
import { fixture, scratchDir } from "../fixtures.js";
import { openGguf } from "../../src/gguf/reader.js";
import { AdapterDataError, InvalidArgumentError } from "../../src/errors.js";
import { SafetensorsError } from "../../src/errors.js";
import { mergeAdapters } from "../../src/tools/merge.js";
import { peftToGguf } from "../../src/tools/peft/to-gguf.js";
import { openCpu } from "../runtime/helpers.js";

const F32 = fixture("models/stories260K.gguf");
const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");
const PEFT = fixture("peft-stories260K-rslora");
const dir = scratchDir("lora-edge-inputs-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of `src` with bytes of tensor `name` changed by `poke(bytes)` (in place, in the file's data). */
function poked(src: string, out: string, name: string, poke: (b: Buffer) => void): string {
  const bytes = readFileSync(src);
  using g = openGguf(src);
  const t = g.tensor(name)!;
  poke(bytes.subarray(t.offset, t.offset + t.byteSize));
  writeFileSync(out, bytes);
  return out;
}

const TENSOR = "blk.1.attn_v.weight.lora_a";
const nanAt5 = poked(S1, join(dir, "nan.gguf"), TENSOR, (b) => b.writeFloatLE(NaN, 5 * 4));
const allNan = poked(S1, join(dir, "all-nan.gguf"), TENSOR, (b) => { for (let i = 0; i + 4 <= b.length; i += 4) b.writeFloatLE(NaN, i); });

describe("NaN and Inf in adapter data", () => {
  it("check, mix, merge, quantize-adapter and convert --to peft refuse it naming the tensor, and write nothing", async () => {
    const c = await cli("check", "-m", F32, nanAt5);
    expect(c.code).toBe(1);
    expect(c.out).toContain(`${TENSOR}: holds 1 NaN or Inf value(s) (the first at element 5)`);
    const json = JSON.parse((await cli("check", "-m", F32, allNan, "--json")).out);
    expect(json.problems).toEqual([expect.objectContaining({ tensor: TENSOR, kind: "data", actual: "256 NaN/Inf" })]);
    const runs: [string, string[]][] = [
      ["mix", ["mix", S2, nanAt5, "-o", join(dir, "o-mix.gguf")]],
      ["merge", ["merge", "-m", F32, "-a", nanAt5, "-o", join(dir, "o-merge.gguf")]],
      ["quantize-adapter", ["quantize-adapter", nanAt5, "-o", join(dir, "o-q.gguf"), "--type", "q8_0"]],
      ["convert", ["convert", nanAt5, "--to", "peft", "-m", F32, "-o", join(dir, "o-peft")]],
    ];
    for (const [name, args] of runs) {
      const r = await cli(...args);
      expect(r.code, name).toBe(1);
      expect(r.err, name).toContain(`${nanAt5}: ${TENSOR}: holds 1 NaN or Inf value(s)`);
    }
    expect(readdirSync(dir).filter((f) => f.startsWith("o-") || f.endsWith(".tmp"))).toEqual([]);
  });

  it("an F16 Inf and a Q8_0 block with a NaN scale are found too", async () => {
    const q8 = join(dir, "q8.gguf");
    expect((await cli("quantize-adapter", S1, "-o", q8, "--type", "q8_0")).code).toBe(0);
    const q8nan = poked(q8, join(dir, "q8-nan.gguf"), "blk.0.attn_q.weight.lora_a", (b) => b.writeUInt16LE(0x7e00, 34)); // block 1's d
    let r = await cli("check", "-m", F32, q8nan);
    expect(r.out).toContain("blk.0.attn_q.weight.lora_a: holds 1 block(s) whose scale is NaN or Inf (the first at element 32)");
    const f16 = join(dir, "f16.gguf");
    expect((await cli("quantize-adapter", S1, "-o", f16, "--type", "f16")).code).toBe(0);
    const f16inf = poked(f16, join(dir, "f16-inf.gguf"), "blk.4.ffn_down.weight.lora_b", (b) => b.writeUInt16LE(0xfc00, 0));
    r = await cli("merge", "-m", F32, "-a", f16inf, "-o", join(dir, "m.gguf"));
    expect(r.err).toContain("blk.4.ffn_down.weight.lora_b: holds 1 NaN or Inf value(s) (the first at element 0)");
  });

  it("values that overflow the output type are refused when written (f16 beyond 65504)", async () => {
    const big = poked(S1, join(dir, "big.gguf"), TENSOR, (b) => b.writeFloatLE(1e6, 0));
    const r = await cli("quantize-adapter", big, "-o", join(dir, "big-f16.gguf"), "--type", "f16");
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${TENSOR}: would be written as F16 and then holds 1 NaN or Inf value(s)`);
    expect(existsSync(join(dir, "big-f16.gguf"))).toBe(false);
  });

  it("adapters.load refuses it with AdapterDataError naming the tensor; the runtime keeps working", async () => {
    const rt = await openCpu();
    try {
      await rt.adapters.load("good", S1);
      const e = await rt.adapters.load("bad", allNan).catch((x) => x);
      expect(e).toBeInstanceOf(AdapterDataError);
      expect(e).toMatchObject({ code: "ADAPTER_DATA", tensor: TENSOR });
      expect(rt.adapters.list().map((a) => a.name)).toEqual(["good"]);
      expect((await rt.session({ adapters: ["good"] }).complete("Once", { maxTokens: 4 })).generatedTokens).toBe(4);
    } finally {
      await rt.dispose();
    }
  });

  it("a PEFT file with NaN is refused naming the tensor by its key in the file", () => {
    const p = join(dir, "peft-nan");
    mkdirSync(p);
    copyFileSync(join(PEFT, "adapter_config.json"), join(p, "adapter_config.json"));
    const st = readFileSync(join(PEFT, "adapter_model.safetensors"));
    const n = Number(st.readBigUInt64LE(0));
    const header = JSON.parse(st.subarray(8, 8 + n).toString());
    const key = "base_model.model.model.layers.2.mlp.up_proj.lora_B.weight";
    st.writeFloatLE(Infinity, 8 + n + header[key].data_offsets[0] + 12);
    writeFileSync(join(p, "adapter_model.safetensors"), st);
    expect(() => peftToGguf(p, F32, join(dir, "peft-nan.gguf"))).toThrow(`${key}: holds 1 NaN or Inf value(s) (the first at element 3)`);
    expect(existsSync(join(dir, "peft-nan.gguf"))).toBe(false);
  });
});

describe("a real PEFT file with a space-padded header", () => {
  it("converts to the same adapter; with its header length lowered by 1 it is refused (it used to convert with every tensor one byte off)", async () => {
    const st = readFileSync(join(PEFT, "adapter_model.safetensors"));
    const n = Number(st.readBigUInt64LE(0));
    const padded = Buffer.concat([Buffer.alloc(8), st.subarray(8, 8 + n), Buffer.from(" ".repeat(8)), st.subarray(8 + n)]);
    const make = (name: string, len: number) => {
      const p = join(dir, name);
      mkdirSync(p);
      copyFileSync(join(PEFT, "adapter_config.json"), join(p, "adapter_config.json"));
      const b = Buffer.from(padded);
      b.writeBigUInt64LE(BigInt(len), 0);
      writeFileSync(join(p, "adapter_model.safetensors"), b);
      return p;
    };
    peftToGguf(PEFT, F32, join(dir, "rs.gguf"));
    peftToGguf(make("rs-padded", n + 8), F32, join(dir, "rs-padded.gguf"));
    expect(readFileSync(join(dir, "rs-padded.gguf")).equals(readFileSync(join(dir, "rs.gguf")))).toBe(true);
    const shifted = make("rs-shifted", n + 7);
    expect(() => peftToGguf(shifted, F32, join(dir, "rs-shifted.gguf"))).toThrow(SafetensorsError);
    const r = await cli("convert", shifted, "-m", F32, "-o", join(dir, "rs-shifted.gguf"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("header.length at byte 0: the data section is");
    expect(r.err).toContain("1 byte(s) left over");
    expect(existsSync(join(dir, "rs-shifted.gguf"))).toBe(false);
  });
});

describe("scales", () => {
  it("the CLI says \"bad scale\" (exit 2) for NaN, Inf, text and |scale| > 100, for -a, --use, merge and mix", async () => {
    for (const s of ["NaN", "Infinity", "1e30", "-101", "abc", ""]) {
      for (const args of [["run", "-m", F32, "-a", `x=${S1}:${s}`, "-p", "x"], ["merge", "-m", F32, "-a", `${S1}:${s}`, "-o", join(dir, "s.gguf")],
        ["mix", `${S1}:${s}`, S2, "-o", join(dir, "s.gguf")]]) {
        const r = await cli(...args);
        expect(r.code, `${args[0]} ${s}`).toBe(2);
        expect(r.err, `${args[0]} ${s}`).toMatch(/^lora-edge: bad scale "/);
      }
    }
    const r = await cli("run", "-m", F32, "-a", `x=${S1}:0.5`, "-p", "x", "--use", "x:NaN", "-n", "1", "--gpu", "off");
    expect(r.code).toBe(2);
    expect(r.err).toContain('bad scale "NaN" in "x:NaN"');
    expect(existsSync(join(dir, "s.gguf"))).toBe(false);
  });

  it("the API refuses scales that are not finite or beyond MAX_ADAPTER_SCALE", async () => {
    await expect(mergeAdapters(F32, [{ path: S1, scale: 1e30 }], join(dir, "s.gguf"))).rejects.toThrow(InvalidArgumentError);
    const rt = await openCpu();
    try {
      await expect(rt.adapters.load("x", S1, { scale: NaN })).rejects.toThrow(/bad scale: NaN is not a finite number/);
      await expect(rt.adapters.load("x", S1, { scale: 101 })).rejects.toThrow(/bad scale: 101 is beyond the bound of 100/);
      await rt.adapters.load("x", S1, { scale: -100 });
      expect(() => rt.session({ adapters: { x: 1e30 } })).toThrow(InvalidArgumentError);
    } finally {
      await rt.dispose();
    }
  });
});

describe("bounds of run and chat options", () => {
  it("sampling, token count and context bounds are refused with exit 2 before anything loads", async () => {
    const cases: [string[], string][] = [
      [["--temperature", "-0.5"], "--temperature wants a number >= 0"],
      [["--top-p", "0"], "--top-p wants a number > 0 and <= 1"],
      [["--top-p", "1.5"], "--top-p wants a number > 0 and <= 1"],
      [["--top-k", "-1"], "--top-k wants a whole number >= 0"],
      [["-n", "-1"], '--tokens wants a whole number >= 0; got "-1"'],
      [["--ctx", "1"], '--ctx wants a whole number 8 to 1048576; got "1"'],
      [["--ctx", "2000000"], "--ctx wants a whole number 8 to 1048576"],
      [["--threads", "0"], "--threads wants a whole number >= 1"],
    ];
    for (const cmd of [["run", "-p", "x"], ["chat"]]) {
      for (const [args, msg] of cases) {
        const r = await cli(...cmd, "-m", join(dir, "no-such-model.gguf"), ...args);
        expect(r.code, `${cmd} ${args.join(" ")}: ${r.err}`).toBe(2);
        expect(r.err).toContain(msg);
      }
    }
  });
});

describe("missing files", () => {
  it("say \"no such file\" with the path given", async () => {
    const none = join(dir, "none.gguf");
    const cases: string[][] = [["inspect", none], ["check", "-m", F32, none], ["check", "-m", none, S1], ["merge", "-m", none, "-a", S1, "-o", join(dir, "x.gguf")],
      ["mix", none, S1, "-o", join(dir, "x.gguf")], ["quantize-adapter", none, "-o", join(dir, "x.gguf"), "--type", "f16"],
      ["extract", "--base", F32, "--tuned", none, "--rank", "2", "-o", join(dir, "x.gguf")], ["run", "-m", none, "-p", "x", "--gpu", "off"]];
    for (const args of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.err, args.join(" ")).toBe(`lora-edge: ${none}: no such file\n`);
    }
    const r = await cli("convert", join(dir, "no-peft-dir"), "-m", F32, "-o", join(dir, "x.gguf"));
    expect(r.err).toBe(`lora-edge: ${join(dir, "no-peft-dir")}: no such file or directory\n`);
    expect((await cli("inspect", dir)).err).toBe(`lora-edge: ${dir}: cannot open: is a directory (EISDIR)\n`);
  });
});

describe("extract --rank", () => {
  it("above a matrix's smaller dimension the pair gets that rank (the full delta), not a padded file", async () => {
    const out = join(dir, "ex-big.gguf");
    const r = await cli("extract", "--base", F32, "--tuned", fixture("models/stories260K-Q8_0.gguf"), "--rank", "100000", "-o", out, "--json");
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.capped.length).toBe(j.pairs);
    expect(statSync(out).size).toBeLessThan(3 * statSync(F32).size);
    using g = openGguf(out);
    const a = g.tensor("blk.0.attn_k.weight.lora_a")!; // attn_k is [64, 32]: rank 32 at most
    expect(a.ne).toEqual([64, 32]);
    expect(j.relError).toBeLessThan(1e-4);
  }, 60_000);
});
