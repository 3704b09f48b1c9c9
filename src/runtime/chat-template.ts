// Chat prompts from the model's own tokenizer.chat_template (Jinja, rendered by @huggingface/jinja), the same text on every backend.
import { Template } from "@huggingface/jinja";
import { ChatTemplateError, InvalidArgumentError } from "../errors.js";
import type { GgufFile } from "../gguf/reader.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

const ROLES = new Set(["system", "user", "assistant"]);

/** A model's chat template with the special-token texts it refers to. */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    readonly bosToken: string,
    readonly eosToken: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the model's chat template does not parse: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The template of a GGUF file (`tokenizer.chat_template`), or null when it has none. */
  static fromGguf(f: GgufFile): ChatTemplate | null {
    const source = f.get("tokenizer.chat_template");
    if (typeof source !== "string" || source.length === 0) return null;
    const tokens = f.get("tokenizer.ggml.tokens");
    const text = (key: string): string => {
      const id = f.get(key);
      return Array.isArray(tokens) && typeof id === "number" && typeof tokens[id] === "string" ? (tokens[id] as string) : "";
    };
    return new ChatTemplate(source, text("tokenizer.ggml.bos_token_id"), text("tokenizer.ggml.eos_token_id"));
  }

  /** The prompt text for `messages`, ending where the assistant's reply starts. */
  render(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
    for (const [i, m] of messages.entries()) {
      if (!m || !ROLES.has(m.role) || typeof m.content !== "string") {
        throw new InvalidArgumentError(`messages[${i}] must be { role: "system" | "user" | "assistant", content: string }`);
      }
    }
    try {
      return this.template.render({
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        bos_token: this.bosToken,
        eos_token: this.eosToken,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (e) {
      // includes the template's own raise_exception(...) refusals
      throw new ChatTemplateError(`the chat template refused the messages: ${(e as Error).message}`, { cause: e });
    }
  }
}
