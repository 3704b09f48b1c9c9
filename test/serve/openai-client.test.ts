// The real openai npm client against the server: chat and completions, streamed and not, models.list, typed errors.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scratchDir } from "../fixtures.js";
import { CHAT_TEMPLATE, MODEL, withChatTemplate } from "../runtime/helpers.js";
import { startServer, type TestServer } from "./helpers.js";

describe("openai client", () => {
  let t: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    const model = withChatTemplate(MODEL, CHAT_TEMPLATE, scratchDir());
    t = await startServer({ runtime: { model }, serve: { apiKey: "sekret", modelName: "stories" } });
    client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: "sekret", maxRetries: 0 });
  });
  afterAll(async () => t?.close());

  it("completions: the base's greedy text, then an adapter's by model name", async () => {
    const base = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
    expect(base.object).toBe("text_completion");
    expect(base.choices[0].text).toBe((await t.rt.session().complete("Once upon a time", { maxTokens: 16 })).text);
    expect(base.choices[0].finish_reason).toBe("length");
    expect(base.usage).toEqual({ prompt_tokens: 5, completion_tokens: 16, total_tokens: 21 });
    const a = await client.completions.create({ model: "A", prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
    expect(a.choices[0].text).toBe((await t.rt.session({ adapters: { A: 1 } }).complete("Once upon a time", { maxTokens: 16 })).text);
    expect(a.model).toBe("A");
  });

  it("completions streamed: the pieces add up to the same text, then a finish reason and usage", async () => {
    const whole = await client.completions.create({ model: "B", prompt: "The little dog", max_tokens: 12, temperature: 0 });
    const stream = await client.completions.create({ model: "B", prompt: "The little dog", max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      if (chunk.choices[0]) {
        text += chunk.choices[0].text;
        finish = chunk.choices[0].finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(finish).toBe("length");
    expect(usage).toEqual(whole.usage);
  });

  it("chat from the model's template, streamed and not; stop strings end it", async () => {
    const messages = [{ role: "user" as const, content: "Who was Lily?" }];
    const expected = (await t.rt.scheduler().complete({ A: 1 }, t.rt.chatPrompt(messages).tokens, { maxTokens: 20 })).text;
    const r = await client.chat.completions.create({ model: "stories:A", messages, max_tokens: 20, temperature: 0 });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0].message).toEqual({ role: "assistant", content: expected });
    const stream = await client.chat.completions.create({ model: "stories:A", messages, max_tokens: 20, temperature: 0, stream: true });
    let text = "";
    const roles: string[] = [];
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta;
      if (d?.role) roles.push(d.role);
      text += d?.content ?? "";
    }
    expect(roles).toEqual(["assistant"]);
    expect(text).toBe(expected);
    const word = expected.trim().split(" ")[1];
    const stopped = await client.chat.completions.create({ model: "stories:A", messages, max_tokens: 20, temperature: 0, stop: [word] });
    expect(stopped.choices[0].finish_reason).toBe("stop");
    expect(stopped.choices[0].message.content).toBe(expected.slice(0, expected.indexOf(word)));
  });

  it("seeded sampling repeats; models.list shows the base and the adapters with parent and root", async () => {
    const q = { model: "stories", prompt: "Once upon a time", max_tokens: 12, temperature: 0.9, top_p: 0.9, seed: 7 };
    const x = await client.completions.create(q);
    const y = await client.completions.create(q);
    expect(y.choices[0].text).toBe(x.choices[0].text);
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models.map((m) => m.id)).toEqual(["stories", "A", "B"]);
    expect(models[1]).toMatchObject({ object: "model", parent: "stories", root: t.rt.adapters.get("A")!.path });
    expect(models[0]).toMatchObject({ parent: null });
  });

  it("errors surface as the client's typed errors", async () => {
    await expect(client.completions.create({ model: "nope", prompt: "x" })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const bad = await client.completions.create({ model: "stories", prompt: "x", temperature: 5 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("temperature");
    await expect(client.chat.completions.create({ model: "stories", messages: [{ role: "user", content: "hi" }], n: 2 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(client.completions.create({ model: "stories", prompt: "x", max_tokens: 100_000 })).rejects.toThrow(/beyond the context/);
    const anonymous = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    await expect(anonymous.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
