// Reading an OpenAI chat or completion request: every field checked, a 400 naming the first bad one.
import type { ChatMessage } from "../runtime/chat-template.js";
import { badField } from "./errors.js";

export interface CompletionRequest {
  kind: "chat" | "completion";
  model: string | undefined;
  messages: ChatMessage[];
  /** Completion prompt: text, or token ids. */
  prompt: string | number[];
  maxTokens: number | undefined;
  temperature: number;
  topP: number;
  topK: number;
  seed: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  ignoreEos: boolean;
  /** lora-edge's dialect: { name: scale }. */
  adapters: Record<string, number> | undefined;
  /** llama-server's dialect: [{ id, scale }]. */
  lora: { id: number; scale: number }[] | undefined;
}

type Body = Record<string, unknown>;

const COMMON = new Set([
  "model", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream", "stream_options", "n", "user",
  "ignore_eos", "adapters", "lora", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
]);
const CHAT_ONLY = new Set(["messages", "max_completion_tokens", "response_format", "tools", "tool_choice"]);
const COMPLETION_ONLY = new Set(["prompt", "echo", "suffix", "best_of"]);

function num(b: Body, f: string, lo: number, hi: number, loOpen = false): number | undefined {
  const v = b[f];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || (loOpen ? v <= lo : v < lo) || v > hi) {
    throw badField(f, `${f} must be a number ${loOpen ? ">" : ">="} ${lo} and <= ${hi}`);
  }
  return v;
}

function int(b: Body, f: string, lo: number, hi = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = b[f];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) throw badField(f, `${f} must be a whole number from ${lo} to ${hi}`);
  return v;
}

function bool(b: Body, f: string): boolean | undefined {
  const v = b[f];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badField(f, `${f} must be true or false`);
  return v;
}

/** A field lora-edge does not implement is accepted only at its neutral value. */
function neutral(b: Body, f: string, ok: (v: unknown) => boolean, what: string): void {
  const v = b[f];
  if (v !== undefined && v !== null && !ok(v)) throw badField(f, `${f} is not supported (only ${what})`);
}

function messageContent(v: unknown, i: number): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    return v
      .map((part, k) => {
        const p = part as { type?: unknown; text?: unknown } | null;
        if (!p || typeof p !== "object" || p.type !== "text" || typeof p.text !== "string") {
          throw badField(`messages[${i}].content[${k}]`, `messages[${i}].content[${k}] must be { type: "text", text: string } (only text is supported)`);
        }
        return p.text;
      })
      .join("");
  }
  throw badField(`messages[${i}].content`, `messages[${i}].content must be a string or an array of text parts`);
}

function messages(b: Body): ChatMessage[] {
  const v = b.messages;
  if (!Array.isArray(v) || v.length === 0) throw badField("messages", "messages must be a non-empty array");
  if (v.length > 4096) throw badField("messages", "messages has more than 4096 entries");
  return v.map((m, i) => {
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw badField(`messages[${i}]`, `messages[${i}] must be an object`);
    const { role, content, name } = m as Record<string, unknown>;
    if (role !== "system" && role !== "user" && role !== "assistant" && role !== "developer") {
      throw badField(`messages[${i}].role`, `messages[${i}].role must be "system", "user" or "assistant"`);
    }
    if (name !== undefined && typeof name !== "string") throw badField(`messages[${i}].name`, `messages[${i}].name must be a string`);
    for (const k of Object.keys(m)) {
      if (k !== "role" && k !== "content" && k !== "name") throw badField(`messages[${i}].${k}`, `messages[${i}].${k} is not supported`);
    }
    return { role: role === "developer" ? "system" : role, content: messageContent(content, i) };
  });
}

function prompt(b: Body): string | number[] {
  let v = b.prompt;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === "string") v = v[0];
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === "number" && Number.isInteger(t) && t >= 0 && t < 2 ** 31)) return v as number[];
  if (Array.isArray(v) && v.length > 1 && v.every((t) => typeof t === "string")) throw badField("prompt", "prompt with several texts is not supported: send one request per prompt");
  throw badField("prompt", "prompt must be a string or an array of token ids");
}

function stop(b: Body): string[] {
  const v = b.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === "string" && s.length > 0 && s.length <= 256)) {
    throw badField("stop", "stop must be a non-empty string or an array of up to 4 of them");
  }
  return list as string[];
}

function adapters(b: Body): Record<string, number> | undefined {
  const v = b.adapters;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw badField("adapters", "adapters must be an object of { name: scale }");
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== "number" || !Number.isFinite(s) || Math.abs(s) > 1000) throw badField(`adapters.${k}`, `adapters.${k} must be a number from -1000 to 1000`);
  }
  return v as Record<string, number>;
}

function lora(b: Body): { id: number; scale: number }[] | undefined {
  const v = b.lora;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > 256) throw badField("lora", "lora must be an array of { id, scale }");
  return v.map((e, i) => {
    const o = e as { id?: unknown; scale?: unknown } | null;
    if (!o || typeof o !== "object" || typeof o.id !== "number" || !Number.isInteger(o.id) || o.id < 0) throw badField(`lora[${i}].id`, `lora[${i}].id must be a whole number >= 0`);
    if (typeof o.scale !== "number" || !Number.isFinite(o.scale) || Math.abs(o.scale) > 1000) throw badField(`lora[${i}].scale`, `lora[${i}].scale must be a number from -1000 to 1000`);
    return { id: o.id, scale: o.scale };
  });
}

/** Checks a chat or completion body; throws a 400 naming the first bad field. */
export function parseCompletionRequest(kind: "chat" | "completion", b: Body): CompletionRequest {
  const own = kind === "chat" ? CHAT_ONLY : COMPLETION_ONLY;
  for (const k of Object.keys(b)) if (!COMMON.has(k) && !own.has(k)) throw badField(k, `unknown field "${k}"`);
  if (b.model !== undefined && b.model !== null && typeof b.model !== "string") throw badField("model", "model must be a string");
  const n = int(b, "n", 1);
  if (n !== undefined && n !== 1) throw badField("n", "n > 1 is not supported: send one request per completion");
  neutral(b, "presence_penalty", (v) => v === 0, "0");
  neutral(b, "frequency_penalty", (v) => v === 0, "0");
  neutral(b, "logit_bias", (v) => typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0, "{}");
  neutral(b, "logprobs", (v) => v === false || v === 0, kind === "chat" ? "false" : "0");
  neutral(b, "top_logprobs", (v) => v === 0, "0");
  neutral(b, "echo", (v) => v === false, "false");
  neutral(b, "suffix", (v) => v === "", '""');
  neutral(b, "best_of", (v) => v === 1, "1");
  neutral(b, "tools", (v) => Array.isArray(v) && v.length === 0, "[]");
  neutral(b, "tool_choice", (v) => v === "none", '"none"');
  neutral(b, "response_format", (v) => typeof v === "object" && (v as { type?: unknown }).type === "text", '{ "type": "text" }');
  if (b.user !== undefined && b.user !== null && typeof b.user !== "string") throw badField("user", "user must be a string");
  const so = b.stream_options;
  if (so !== undefined && so !== null) {
    if (typeof so !== "object" || Array.isArray(so)) throw badField("stream_options", "stream_options must be an object");
    for (const k of Object.keys(so)) if (k !== "include_usage") throw badField(`stream_options.${k}`, `unknown field "stream_options.${k}"`);
  }
  const includeUsage = so ? bool(so as Body, "include_usage") : undefined;
  const maxTokens = int(b, "max_tokens", 1) ?? (kind === "chat" ? int(b, "max_completion_tokens", 1) : undefined);
  return {
    kind,
    model: (b.model as string | null | undefined) ?? undefined,
    messages: kind === "chat" ? messages(b) : [],
    prompt: kind === "completion" ? prompt(b) : "",
    maxTokens,
    temperature: num(b, "temperature", 0, 2) ?? 1,
    topP: num(b, "top_p", 0, 1, true) ?? 1,
    topK: int(b, "top_k", 0, 1 << 20) ?? 0,
    seed: int(b, "seed", Number.MIN_SAFE_INTEGER),
    stop: stop(b),
    stream: bool(b, "stream") ?? false,
    includeUsage: includeUsage ?? false,
    ignoreEos: bool(b, "ignore_eos") ?? false,
    adapters: adapters(b),
    lora: lora(b),
  };
}
