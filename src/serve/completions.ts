// POST /v1/chat/completions and /v1/completions: OpenAI's request and response shapes, streamed or not, over the scheduler.
import { randomInt, randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { FinishReason, GenerationResult } from "../runtime/generation.js";
import type { Runtime } from "../runtime/runtime.js";
import type { Scheduler } from "../runtime/scheduler.js";
import type { AdapterTable } from "./adapter-table.js";
import { HttpError, badField, toHttpError } from "./errors.js";
import { EventStream, sendError, sendJson } from "./http.js";
import { parseCompletionRequest } from "./request.js";

export interface CompletionContext {
  readonly rt: Runtime;
  readonly scheduler: Scheduler;
  readonly table: AdapterTable;
  /** Requests running or waiting; aborted when the server closes. */
  readonly inflight: Set<AbortController>;
}

const finishReason = (r: FinishReason): "stop" | "length" => (r === "length" || r === "context" ? "length" : "stop");
const usage = (r: GenerationResult) => ({ prompt_tokens: r.promptTokens, completion_tokens: r.generatedTokens, total_tokens: r.promptTokens + r.generatedTokens });

/** Answers one chat or completion request (`body` already parsed). */
export async function handleCompletion(kind: "chat" | "completion", body: Record<string, unknown>, res: ServerResponse, c: CompletionContext): Promise<void> {
  const q = parseCompletionRequest(kind, body);
  const adapters = c.table.resolve(q);
  let tokens: number[];
  if (kind === "chat") {
    try {
      tokens = c.rt.chatPrompt(q.messages).tokens;
    } catch (e) {
      throw toHttpError(e, "messages");
    }
  } else if (typeof q.prompt === "string") {
    tokens = c.scheduler.tokenize(q.prompt);
  } else {
    const vocab = c.rt.backend.vocabSize;
    const bad = q.prompt.findIndex((t) => t >= vocab);
    if (bad >= 0) throw badField(`prompt[${bad}]`, `prompt[${bad}] is not a token id of this model (vocabulary of ${vocab})`);
    tokens = q.prompt;
  }
  const ctxSize = c.scheduler.contextSize;
  const param = kind === "chat" ? "messages" : "prompt";
  if (tokens.length === 0) throw badField(param, `${param} is empty`);
  if (tokens.length >= ctxSize) throw badField(param, `the prompt has ${tokens.length} tokens; this server's context holds ${ctxSize}`);
  const room = ctxSize - tokens.length;
  if (q.maxTokens !== undefined && q.maxTokens > room) {
    throw badField(kind === "chat" && body.max_tokens === undefined ? "max_completion_tokens" : "max_tokens",
      `max_tokens ${q.maxTokens} is beyond the context: this server's context holds ${ctxSize} tokens and the prompt uses ${tokens.length}, so at most ${room}`);
  }
  const maxTokens = q.maxTokens ?? (kind === "chat" ? room : Math.min(16, room));

  const abort = new AbortController();
  c.inflight.add(abort);
  // a client that goes away frees its slot (or its place in the queue) at once
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  try {
    let g;
    try {
      g = c.scheduler.generate(adapters, tokens, {
        maxTokens,
        temperature: q.temperature,
        topP: q.topP,
        topK: q.topK,
        seed: q.seed === undefined ? randomInt(2 ** 31) : ((q.seed % 2 ** 32) + 2 ** 32) % 2 ** 32,
        stop: q.stop,
        ignoreEos: q.ignoreEos,
        signal: abort.signal,
      });
    } catch (e) {
      throw toHttpError(e, q.adapters ? "adapters" : q.lora ? "lora" : "model");
    }
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const model = q.model ?? c.table.modelName;
    if (!q.stream) {
      const r = await g.result;
      if (res.destroyed) return;
      const choice =
        kind === "chat"
          ? { index: 0, message: { role: "assistant", content: r.text }, logprobs: null, finish_reason: finishReason(r.finishReason) }
          : { index: 0, text: r.text, logprobs: null, finish_reason: finishReason(r.finishReason) };
      sendJson(res, 200, { id, object: kind === "chat" ? "chat.completion" : "text_completion", created, model, choices: [choice], usage: usage(r), adapter_path: r.adapterPath });
      return;
    }
    const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    const chunk = (delta: string | null, finish: string | null, first = false) =>
      kind === "chat"
        ? { id, object, created, model, choices: [{ index: 0, delta: delta === null ? {} : first ? { role: "assistant", content: delta } : { content: delta }, logprobs: null, finish_reason: finish }] }
        : { id, object, created, model, choices: [{ index: 0, text: delta ?? "", logprobs: null, finish_reason: finish }] };
    const events = new EventStream(res);
    if (kind === "chat") events.send(chunk("", null, true));
    try {
      for await (const piece of g) events.send(chunk(piece, null));
      const r = await g.result;
      events.send(chunk(null, finishReason(r.finishReason)));
      if (q.includeUsage) events.send({ id, object, created, model, choices: [], usage: usage(r) });
    } catch (e) {
      events.send(toHttpError(e).body());
    }
    events.done();
  } finally {
    c.inflight.delete(abort);
  }
}

/** The error answer for a failed request (headers may be out already when streaming). */
export function answerError(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendError(res, e instanceof HttpError ? e : toHttpError(e));
}
