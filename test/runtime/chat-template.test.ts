// Chat prompts from the GGUF's tokenizer.chat_template: the same text and tokens on both backends, clear errors without one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatTemplateError, InvalidArgumentError } from "../../src/errors.js";
import { ChatTemplate, type Runtime } from "../../src/runtime/index.js";
import { scratchDir } from "../fixtures.js";
import { CHAT_TEMPLATE, MODEL, openCpu, withChatTemplate } from "./helpers.js";

const MESSAGES = [
  { role: "system" as const, content: "Tell short stories." },
  { role: "user" as const, content: "Who was Lily?" },
  { role: "assistant" as const, content: "A little girl." },
  { role: "user" as const, content: " What did she like? " },
];

describe("chat templates", () => {
  let chatModel: string;
  let native: Runtime;
  let wasm: Runtime;
  beforeAll(async () => {
    chatModel = withChatTemplate(MODEL, CHAT_TEMPLATE, scratchDir());
    native = await openCpu({ model: chatModel });
    wasm = await openCpu({ model: chatModel, backend: "wasm" });
  });
  afterAll(async () => {
    await native?.dispose();
    await wasm?.dispose();
  });

  it("renders the model's template; both backends give the same text and the same tokens", () => {
    const n = native.chatPrompt(MESSAGES);
    const w = wasm.chatPrompt(MESSAGES);
    expect(n.text).toBe("<s>Tell short stories.\n\nQ: Who was Lily?\nA: A little girl.</s>\nQ: What did she like?\nA:");
    expect(w.text).toBe(n.text);
    expect(w.tokens).toEqual(n.tokens);
    // BOS once (the template writes it), EOS read as the control token it is, not as the letters "</s>"
    const bos = native.backend.tokenize("", true)[0];
    expect(n.tokens.filter((t) => t === bos)).toHaveLength(1);
    expect(n.tokens[0]).toBe(bos);
    expect(n.tokens.some((t) => native.backend.isEndOfGeneration(t))).toBe(true);
  });

  it("generates from a chat prompt alike on both backends", async () => {
    const a = native.scheduler({ slots: 1 });
    const b = wasm.scheduler({ slots: 1 });
    const p = native.chatPrompt(MESSAGES.slice(0, 2)).tokens;
    const x = await a.complete({}, p, { maxTokens: 12 });
    const y = await b.complete({}, p, { maxTokens: 12 });
    expect(y.text).toBe(x.text);
    expect(x.generatedTokens).toBeGreaterThan(0);
  });

  it("refuses bad messages and what the template refuses, with typed errors", () => {
    expect(() => native.chatPrompt([{ role: "tool" as never, content: "x" }])).toThrow(InvalidArgumentError);
    const strict = new ChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok", "<s>", "</s>");
    expect(() => strict.render([{ role: "system", content: "x" }])).toThrow(/first must be user/);
    expect(() => new ChatTemplate("{% for %}", "", "")).toThrow(ChatTemplateError);
  });

  it("a model without a template: chat is a clear error, completions still work", async () => {
    const rt = await openCpu();
    try {
      expect(rt.chatTemplate).toBeNull();
      expect(() => rt.chatPrompt(MESSAGES)).toThrow(ChatTemplateError);
      expect(() => rt.chatPrompt(MESSAGES)).toThrow(/no chat template/);
      expect((await rt.session().complete("Once upon a time", { maxTokens: 3 })).generatedTokens).toBe(3);
    } finally {
      await rt.dispose();
    }
  });
});
