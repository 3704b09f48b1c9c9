// Messages between the page's web runtime and its engine worker, and errors carried across.
import { LoraEdgeError } from "../errors.js";

/** A request to the engine worker; answered by a Reply with the same id. */
export interface Request {
  id: number;
  op: "open" | "loadAdapter" | "unloadAdapter" | "listAdapters" | "session" | "setAdapters" | "generate" | "abort" | "closeSession" | "stats" | "dispose";
  args: Record<string, unknown>;
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ErrorData };

/** Streamed by a generation: pieces of text, then its result or its error. */
export type GenerationEvent = { gen: number; piece: string } | { gen: number; result: unknown } | { gen: number; error: ErrorData };

/** An error as it crosses to the page: its class name, code, message and the fields that say where. */
export interface ErrorData {
  name: string;
  code: string;
  message: string;
  fields: Record<string, string | number>;
}

const FIELDS = ["file", "field", "offset", "reason", "tensor", "expected", "actual", "adapter", "base"] as const;

export function errorData(e: unknown): ErrorData {
  const err = e instanceof Error ? e : new Error(String(e));
  const fields: Record<string, string | number> = {};
  for (const k of FIELDS) {
    const v = (err as unknown as Record<string, unknown>)[k];
    if (typeof v === "string" || typeof v === "number") fields[k] = v;
  }
  return { name: err.name, code: err instanceof LoraEdgeError ? err.code : "ERROR", message: err.message, fields };
}

/**
 * An error raised in the engine worker, seen in the page: `name` is the original class (GgufError,
 * AdapterMismatchError, ...), `code` its stable code, and `file`, `field`, `offset`, `tensor`... where it had them.
 */
export class WebRuntimeError extends LoraEdgeError {
  readonly file?: string;
  readonly field?: string;
  readonly offset?: number;
  readonly tensor?: string;
  readonly expected?: string;
  readonly actual?: string;
  readonly adapter?: string;
  constructor(data: ErrorData) {
    const code = data.code; // the original error's code, passed on
    super(code, data.message);
    this.name = data.name;
    Object.assign(this, data.fields);
  }
}
