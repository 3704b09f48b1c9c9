// Raw HTTP checks of each adapter dialect (llama-server, vLLM, SGLang, lora-edge), /lora-adapters, vLLM load/unload, /health, /metrics.
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scratchDir } from "../fixtures.js";
import { S1 } from "../runtime/helpers.js";
import { completion, get, post, startServer, type TestServer } from "./helpers.js";

const PROMPT = "Once upon a time";

describe("adapter dialects", () => {
  let t: TestServer;
  let dir: string;
  const text = async (body: Record<string, unknown>) => {
    const r = await post(`${t.url}/v1/completions`, completion(PROMPT, body));
    expect(r.status, r.text).toBe(200);
    return r.json.choices[0].text as string;
  };
  const lone = async (set: Record<string, number>) => (await t.rt.session({ adapters: set }).complete(PROMPT, { maxTokens: 16 })).text;

  beforeAll(async () => {
    const root = scratchDir();
    dir = path.join(root, "adapters");
    mkdirSync(dir);
    copyFileSync(S1, path.join(dir, "s1.gguf"));
    writeFileSync(path.join(root, "outside.gguf"), "not inside");
    symlinkSync(path.join(root, "outside.gguf"), path.join(dir, "escape.gguf"));
    t = await startServer({ serve: { adapterDir: dir } });
  });
  afterAll(async () => t?.close());

  it("vLLM's model: adapter, SGLang's model: base:adapter, lora-edge's adapters map, llama-server's lora list", async () => {
    const a = await lone({ A: 1 });
    const b = await lone({ B: 1 });
    const mix = await lone({ A: 0.5, B: 0.5 });
    expect(await text({ model: "A" })).toBe(a);
    expect(await text({ model: "stories260K:B" })).toBe(b);
    expect(await text({ adapters: { A: 0.5, B: 0.5 } })).toBe(mix);
    expect(await text({ lora: [{ id: 0, scale: 0.5 }, { id: 1, scale: 0.5 }] })).toBe(mix);
    expect(await text({ lora: [{ id: 1, scale: 1 }] })).toBe(b);
    expect(await text({ model: "stories260K" })).toBe(await lone({}));
    expect(await text({})).toBe(await lone({}));
  });

  it("unknown adapters are 404s naming the field; conflicting dialects are 400s", async () => {
    for (const [body, param] of [
      [{ model: "C" }, "model"],
      [{ model: "other:A" }, "model"],
      [{ adapters: { C: 1 } }, "adapters.C"],
      [{ lora: [{ id: 9, scale: 1 }] }, "lora[0].id"],
    ] as const) {
      const r = await post(`${t.url}/v1/completions`, completion(PROMPT, body));
      expect(r.status, JSON.stringify(body)).toBe(404);
      expect(r.json.error.param).toBe(param);
      expect(r.json.error.type).toBe("invalid_request_error");
    }
    const both = await post(`${t.url}/v1/completions`, completion(PROMPT, { model: "A", lora: [{ id: 1, scale: 1 }] }));
    expect(both.status).toBe(400);
    expect(both.json.error.param).toBe("lora");
  });

  it("GET and POST /lora-adapters: global scales for requests that choose no adapters (llama-server)", async () => {
    const list = await get(`${t.url}/lora-adapters`);
    expect(list.json).toEqual([
      { id: 0, path: t.rt.adapters.get("A")!.path, scale: 0 },
      { id: 1, path: t.rt.adapters.get("B")!.path, scale: 0 },
    ]);
    expect((await post(`${t.url}/lora-adapters`, [{ id: 1, scale: 1 }])).json).toEqual({ success: true });
    expect((await get(`${t.url}/lora-adapters`)).json[1].scale).toBe(1);
    expect(await text({})).toBe(await lone({ B: 1 }));
    expect(await text({ model: "A" })).toBe(await lone({ A: 1 })); // a request's own choice wins
    expect((await post(`${t.url}/lora-adapters`, [{ id: 5, scale: 1 }])).status).toBe(404);
    expect((await post(`${t.url}/lora-adapters`, { id: 1 })).status).toBe(400);
    await post(`${t.url}/lora-adapters`, []);
    expect(await text({})).toBe(await lone({}));
  });

  it("vLLM's load and unload endpoints: checked, confined to the adapter folder, listed in /v1/models", async () => {
    const load = (body: unknown) => post(`${t.url}/v1/load_lora_adapter`, body);
    const ok = await load({ lora_name: "C", lora_path: "s1.gguf" });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toMatch(/Success/);
    const models = (await get(`${t.url}/v1/models`)).json.data;
    expect(models.map((m: { id: string }) => m.id)).toEqual(["stories260K", "A", "B", "C"]);
    expect(models[3]).toMatchObject({ parent: "stories260K", root: path.join(t.rt.adapters.get("C")!.path) });
    expect((await get(`${t.url}/lora-adapters`)).json[2].id).toBe(2);
    expect(await text({ model: "C" })).toBe(await lone({ C: 1 }));
    expect((await load({ lora_name: "C", lora_path: "s1.gguf" })).status).toBe(400); // already loaded
    // outside the folder: "..", an absolute path, a symlink that leads out; a missing file; not an adapter
    for (const p of ["../outside.gguf", path.join(dir, "..", "outside.gguf"), "/etc/passwd", "escape.gguf"]) {
      const r = await load({ lora_name: "D", lora_path: p });
      expect(r.status, p).toBe(403);
      expect(r.json.error.param).toBe("lora_path");
    }
    expect((await load({ lora_name: "D", lora_path: "missing.gguf" })).status).toBe(404);
    writeFileSync(path.join(dir, "junk.gguf"), "GGUF but not really");
    const junk = await load({ lora_name: "D", lora_path: "junk.gguf" });
    expect(junk.status).toBe(400);
    expect(junk.json.error.message).toMatch(/junk\.gguf/);
    expect((await load({ lora_name: "stories260K", lora_path: "s1.gguf" })).status).toBe(400);
    expect((await load({ lora_path: "s1.gguf" })).json.error.param).toBe("lora_name");
    const un = await post(`${t.url}/v1/unload_lora_adapter`, { lora_name: "C" });
    expect(un.status, un.text).toBe(200);
    expect((await post(`${t.url}/v1/unload_lora_adapter`, { lora_name: "C" })).status).toBe(404);
    expect((await post(`${t.url}/v1/completions`, completion(PROMPT, { model: "C" }))).status).toBe(404);
    expect(t.rt.adapters.has("D")).toBe(false);
  });

  it("loading over HTTP is off without an adapter folder", async () => {
    const plain = await startServer();
    try {
      const r = await post(`${plain.url}/v1/load_lora_adapter`, { lora_name: "C", lora_path: S1 });
      expect(r.status).toBe(403);
      expect(r.json.error.message).toMatch(/--adapter-dir/);
      expect((await post(`${plain.url}/v1/unload_lora_adapter`, { lora_name: "A" })).status).toBe(403);
      expect(plain.rt.adapters.has("C")).toBe(false);
    } finally {
      await plain.close();
    }
  });

  it("/health, /metrics in Prometheus text, 404 and 405 in OpenAI's error shape", async () => {
    expect((await get(`${t.url}/health`)).json).toEqual({ status: "ok" });
    await text({ model: "A" });
    const m = (await get(`${t.url}/metrics`)).text;
    for (const name of ["lora_edge_queue_depth", "lora_edge_generated_tokens_total", "lora_edge_adapter_swaps_total", "lora_edge_time_to_first_token_seconds_bucket", "lora_edge_time_per_output_token_seconds_count", "lora_edge_prompt_tokens_total"]) {
      expect(m).toMatch(new RegExp(`^${name}`, "m"));
    }
    expect(Number(/^lora_edge_generated_tokens_total (\d+)/m.exec(m)![1])).toBeGreaterThan(0);
    expect(m).toMatch(/^# TYPE lora_edge_time_to_first_token_seconds histogram$/m);
    const nf = await get(`${t.url}/v2/nothing`);
    expect(nf.status).toBe(404);
    expect(nf.json.error).toMatchObject({ type: "invalid_request_error", code: "not_found" });
    expect((await get(`${t.url}/v1/completions`)).status).toBe(405);
  });
});
