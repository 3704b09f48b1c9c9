// HTTP errors in OpenAI's shape ({ error: { message, type, param, code } }), and how lora-edge's errors map to them.
import {
  AdapterLoadError,
  AdapterMismatchError,
  AdapterNameError,
  ChatTemplateError,
  DisposedError,
  InvalidArgumentError,
  LoraEdgeError,
  QueueFullError,
} from "../errors.js";
import { GgufError } from "../gguf/errors.js";

/** An answer other than success: status, OpenAI error fields, extra headers. */
export class HttpError extends LoraEdgeError {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    code = "invalid_request",
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }

  get type(): string {
    if (this.status === 401) return "authentication_error";
    if (this.status === 503 || this.status >= 500) return "server_error";
    return "invalid_request_error";
  }

  body(): { error: { message: string; type: string; param: string | null; code: string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 naming the field. */
export const badField = (param: string, message: string): HttpError => new HttpError(400, message, param, "invalid_value");

/** Maps any error to the HTTP answer it deserves; `param` names the field the input came from. */
export function toHttpError(e: unknown, param: string | null = null): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QueueFullError) {
    return new HttpError(503, e.message, null, "overloaded", { "Retry-After": String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))) });
  }
  if (e instanceof AdapterNameError) return new HttpError(404, e.message, param, "model_not_found");
  if (e instanceof AdapterLoadError && /no such file/.test(e.message)) return new HttpError(404, e.message, param, "not_found");
  if (e instanceof AdapterMismatchError || e instanceof AdapterLoadError || e instanceof GgufError) return new HttpError(400, e.message, param, "invalid_adapter");
  if (e instanceof ChatTemplateError) return new HttpError(400, e.message, param ?? "messages", "chat_template");
  if (e instanceof InvalidArgumentError) return new HttpError(400, e.message, param, "invalid_value");
  if (e instanceof DisposedError) return new HttpError(503, "the server is shutting down", null, "shutting_down");
  return new HttpError(500, "internal error", null, "internal_error");
}
