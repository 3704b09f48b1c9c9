// No contamination: concurrent greedy requests over four adapter sets, repeated and interleaved with load and unload, each equal to a fresh server's answer.
import { copyFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDir } from "../fixtures.js";
import { S1 } from "../runtime/helpers.js";
import { completion, post, startServer } from "./helpers.js";

// base, A, B and 0.5 A + 0.5 B, two prompts each, in every dialect the server takes
const REQUESTS: Record<string, unknown>[] = [
  completion("Once upon a time", { max_tokens: 24 }),
  completion("Once upon a time", { max_tokens: 24, model: "A" }),
  completion("Once upon a time", { max_tokens: 24, lora: [{ id: 1, scale: 1 }] }),
  completion("Once upon a time", { max_tokens: 24, adapters: { A: 0.5, B: 0.5 } }),
  completion("The little dog", { max_tokens: 24, model: "stories260K" }),
  completion("The little dog", { max_tokens: 24, adapters: { A: 1 } }),
  completion("The little dog", { max_tokens: 24, model: "stories260K:B" }),
  completion("The little dog", { max_tokens: 24, lora: [{ id: 0, scale: 0.5 }, { id: 1, scale: 0.5 }] }),
];
const ON_C = completion("One day, Lily went", { max_tokens: 24, model: "C" });

for (const backend of ["native", "wasm"] as const) {
  describe(`contamination (${backend})`, () => {
    it("8 concurrent requests over 4 sets, 3 rounds interleaved with load and unload, each equal to the same request on a fresh server", async () => {
      const dir = scratchDir();
      copyFileSync(S1, path.join(dir, "c.gguf"));
      // references: each request alone on a server of its own
      const expected: string[] = [];
      for (const body of [...REQUESTS, ON_C]) {
        const fresh = await startServer({ runtime: { backend }, serve: { adapterDir: dir } });
        try {
          if (body === ON_C) expect((await post(`${fresh.url}/v1/load_lora_adapter`, { lora_name: "C", lora_path: "c.gguf" })).status).toBe(200);
          const r = await post(`${fresh.url}/v1/completions`, body);
          expect(r.status, r.text).toBe(200);
          expect(r.json.usage.completion_tokens).toBe(24);
          expected.push(r.json.choices[0].text);
        } finally {
          await fresh.close();
        }
      }
      expect(new Set(expected).size).toBeGreaterThan(4); // the sets really differ

      const t = await startServer({ runtime: { backend }, serve: { adapterDir: dir, parallel: 4, queue: 16 } });
      try {
        for (let round = 0; round < 3; round++) {
          const order = REQUESTS.map((_, i) => (i * 3 + round) % REQUESTS.length); // a different interleaving each round
          const answers = order.map((i) => post(`${t.url}/v1/completions`, REQUESTS[i]).then((r) => [i, r] as const));
          const admin = (async () => {
            const load = await post(`${t.url}/v1/load_lora_adapter`, { lora_name: "C", lora_path: "c.gguf" });
            expect(load.status, load.text).toBe(200);
            const c = await post(`${t.url}/v1/completions`, ON_C);
            expect(c.json.choices[0].text).toBe(expected[REQUESTS.length]);
            expect((await post(`${t.url}/v1/unload_lora_adapter`, { lora_name: "C" })).status).toBe(200);
          })();
          for (const [i, r] of await Promise.all(answers)) {
            expect(r.status, r.text).toBe(200);
            expect(r.json.choices[0].text, `round ${round}, request ${i}`).toBe(expected[i]);
          }
          await admin;
        }
        const stats = t.server.scheduler.stats();
        expect(stats.counts.finished).toBe(3 * (REQUESTS.length + 1));
        if (backend === "native") expect(stats.counts.swaps).toBeGreaterThan(3);
      } finally {
        await t.close();
      }
    });
  });
}
