// lora-edge serve with an aLoRA adapter: a task switch on a conversation reuses the base prefix's states (metrics), and says which path it took.
import { describe, expect, it } from "vitest";
import { fixture } from "../fixtures.js";
import { ALORA_TEST_ADAPTER } from "../../src/tools/demo-adapters.js";
import { completion, get, post, startServer } from "./helpers.js";

const CONVERSATION = "Once upon a time, there was a little girl named Lily. She liked to play with her ball in the big green park.";
const TASK = `${CONVERSATION} One day, she`;

/** A counter's value in the Prometheus text. */
function counter(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no ${name} in the metrics`);
  return Number(m[1]);
}

for (const backend of ["native", "wasm"] as const) {
  describe(`serve with an aLoRA adapter (${backend})`, () => {
    it("the task request reuses the conversation's base states; a plain adapter's request reuses none", async () => {
      const t = await startServer({ runtime: { backend }, serve: { parallel: 1 } });
      try {
        await t.rt.adapters.load("task", fixture(`adapters/${ALORA_TEST_ADAPTER.file}`));
        const start = t.rt.backend.tokenize(CONVERSATION, true).length;
        const conv = await post(`${t.url}/v1/completions`, completion(CONVERSATION, { max_tokens: 1 }));
        expect(conv.status, conv.text).toBe(200);
        expect(conv.json.adapter_path).toBe("base");
        const task = await post(`${t.url}/v1/completions`, completion(TASK, { max_tokens: 8, adapters: { task: 1 } }));
        expect(task.status, task.text).toBe(200);
        expect(task.json.adapter_path).toBe("alora");
        const m1 = (await get(`${t.url}/metrics`)).text;
        expect(counter(m1, "lora_edge_prompt_tokens_reused_base_total")).toBe(start);
        // the same text through a session of its own (the aLoRA path tested against llama.cpp)
        const lone = t.rt.session({ adapters: { task: 1 } });
        expect(task.json.choices[0].text).toBe((await lone.complete(TASK, { maxTokens: 8 })).text);
        await lone.dispose();
        // a plain adapter on the same text: nothing reused from the others' states
        const plain = await post(`${t.url}/v1/completions`, completion(TASK, { max_tokens: 4, model: "A" }));
        expect(plain.json.adapter_path).toBe("plain");
        const m2 = (await get(`${t.url}/metrics`)).text;
        expect(counter(m2, "lora_edge_prompt_tokens_reused_base_total")).toBe(start);
        expect(counter(m2, "lora_edge_prompt_tokens_reused_total") - counter(m1, "lora_edge_prompt_tokens_reused_total")).toBe(0);
      } finally {
        await t.close();
      }
    });
  });
}
