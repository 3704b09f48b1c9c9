// Training data: plain text cut into context-sized windows, JSONL {"prompt","completion"} (loss on the completion) or {"messages":[...]} (loss on the assistant turns, through the model's chat template).
import { readFileSync } from "node:fs";
import { TrainInputError } from "../errors.js";
import type { TrainSequence } from "./reference/model.js";

/** A chat turn as the data file gives it. */
export interface DataMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

/** What the data needs from the model's tokenizer and chat template (provided by the layer that owns them). */
export interface TextFormatter {
  /** Token ids of a text: with the vocabulary's BOS when bos is set; special-token texts recognised when special is set. */
  tokenize(text: string, bos: boolean, special: boolean): number[];
  /** The end-of-sequence token a completion ends with, when the vocabulary has one. */
  readonly eos?: number;
  /** The chat template's text for the messages (ending with the assistant's opening when addGenerationPrompt); absent: the model has none. */
  renderChat?(messages: readonly DataMessage[], addGenerationPrompt: boolean): string;
}

export type DataRecord =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "pair"; readonly line: number; readonly prompt: string; readonly completion: string }
  | { readonly kind: "chat"; readonly line: number; readonly messages: readonly DataMessage[] };

const ROLES = new Set(["system", "user", "assistant"]);

/** Reads a data file: JSONL when every non-blank line is a JSON object, else plain text. */
export function readDataFile(path: string): DataRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new TrainInputError(path, "data", `cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseData(path, text);
}

export function parseData(path: string, text: string): DataRecord[] {
  if (text.trim().length === 0) throw new TrainInputError(path, "data", "the file holds no training text");
  const lines = text.split(/\r?\n/);
  const firstLine = lines.find((l) => l.trim().length > 0)!.trim();
  if (!firstLine.startsWith("{")) return [{ kind: "text", text }];
  const records: DataRecord[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1, s = raw.trim();
    if (s.length === 0) return;
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      throw new TrainInputError(path, `line ${line}`, `not valid JSON: ${(e as Error).message}`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TrainInputError(path, `line ${line}`, "not a JSON object");
    const o = v as Record<string, unknown>;
    if ("messages" in o) {
      const m = o.messages;
      if (!Array.isArray(m) || m.length === 0) throw new TrainInputError(path, `line ${line}`, `"messages" must be a non-empty array`);
      m.forEach((x, k) => {
        const mm = x as Record<string, unknown>;
        if (typeof mm !== "object" || mm === null || !ROLES.has(mm.role as string) || typeof mm.content !== "string") {
          throw new TrainInputError(path, `line ${line}`, `messages[${k}] must be { "role": "system" | "user" | "assistant", "content": string }`);
        }
      });
      if (!m.some((x) => (x as DataMessage).role === "assistant")) throw new TrainInputError(path, `line ${line}`, "no assistant turn to learn from");
      records.push({ kind: "chat", line, messages: m.map((x) => ({ role: (x as DataMessage).role, content: (x as DataMessage).content })) });
      return;
    }
    if (typeof o.prompt !== "string" || typeof o.completion !== "string") {
      throw new TrainInputError(path, `line ${line}`, `needs string fields "prompt" and "completion", or "messages"`);
    }
    if (o.completion.length === 0) throw new TrainInputError(path, `line ${line}`, `empty "completion": nothing to learn from`);
    records.push({ kind: "pair", line, prompt: o.prompt, completion: o.completion });
  });
  return records;
}

/** Token ids and which predictions count, before they become a sequence. */
function maskedSequence(parts: readonly { tokens: readonly number[]; learn: boolean }[]): TrainSequence {
  const tokens: number[] = [], learn: boolean[] = [];
  for (const p of parts) for (const t of p.tokens) {
    tokens.push(t);
    learn.push(p.learn);
  }
  // prediction i is of token i + 1
  return { tokens, lossMask: learn.slice(1) };
}

/** The chat's text in parts: each assistant turn's own text is learnt, the rest (system, user, template) is context. */
function chatParts(path: string, line: number, f: TextFormatter, messages: readonly DataMessage[]): { text: string; learn: boolean }[] {
  if (!f.renderChat) throw new TrainInputError(path, `line ${line}`, `"messages" need the model's chat template, and the model has none`);
  const parts: { text: string; learn: boolean }[] = [];
  let done = "";
  const take = (full: string, learn: boolean) => {
    if (!full.startsWith(done)) throw new TrainInputError(path, `line ${line}`, "the chat template's text for a conversation does not extend the text of its first turns; cannot tell the assistant turns apart");
    if (full.length > done.length) parts.push({ text: full.slice(done.length), learn });
    done = full;
  };
  messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    take(f.renderChat!(messages.slice(0, i), true), false);
    take(f.renderChat!(messages.slice(0, i + 1), false), true);
  });
  return parts;
}

export interface SequenceOptions {
  /** Tokens per sequence at most (the context). */
  readonly ctx: number;
}

/**
 * The records as training sequences. Plain text is tokenized once (with BOS) and cut into windows of ctx tokens
 * that overlap by one, so every token after the first is predicted once; a JSONL record longer than ctx is refused.
 */
export function toSequences(path: string, records: readonly DataRecord[], f: TextFormatter, o: SequenceOptions): TrainSequence[] {
  const out: TrainSequence[] = [];
  for (const r of records) {
    if (r.kind === "text") {
      const ids = f.tokenize(r.text, true, false);
      if (ids.length < 2) throw new TrainInputError(path, "data", "the text is a single token: nothing to predict");
      for (let s = 0; s + 1 < ids.length; s += o.ctx - 1) out.push({ tokens: ids.slice(s, s + o.ctx) });
      continue;
    }
    const parts = r.kind === "pair"
      ? [{ tokens: f.tokenize(r.prompt, true, false), learn: false }, { tokens: [...f.tokenize(r.completion, false, false), ...(f.eos === undefined ? [] : [f.eos])], learn: true }]
      : chatParts(path, r.line, f, r.messages).map((p) => ({ tokens: f.tokenize(p.text, false, true), learn: p.learn }));
    const seq = maskedSequence(parts);
    if (seq.tokens.length > o.ctx) throw new TrainInputError(path, `line ${r.line}`, `${seq.tokens.length} tokens, longer than the context of ${o.ctx} (raise --ctx or shorten the record)`);
    if (!seq.lossMask!.some(Boolean)) throw new TrainInputError(path, `line ${r.line}`, "no token to learn from");
    out.push(seq);
  }
  if (out.length === 0) throw new TrainInputError(path, "data", "no training sequence");
  return out;
}
