// Typed errors of lora-edge: the base class with its stable code, and the errors of the runtime, the tools and their inputs.

/** Base class of every runtime error; `code` is stable and machine-readable. */
export class LoraEdgeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An adapter does not fit the base model: names the first offending tensor (or field) and both shapes. */
export class AdapterMismatchError extends LoraEdgeError {
  readonly file: string;
  readonly base: string;
  /** First offending tensor, or the metadata key when the problem is not a tensor. */
  readonly tensor: string;
  /** What the base model requires, e.g. "[64, 4]" or "llama". */
  readonly expected: string;
  /** What the adapter file has. */
  readonly actual: string;
  /** Every problem found, first one first. */
  readonly problems: readonly { tensor: string; expected: string; actual: string; message: string }[];
  constructor(
    file: string,
    base: string,
    problems: readonly { tensor: string; expected: string; actual: string; message: string }[],
  ) {
    const p = problems[0] ?? { tensor: "", expected: "", actual: "", message: "adapter does not fit the base" };
    super(
      "ADAPTER_MISMATCH",
      `adapter ${file} does not fit base ${base}: ${p.tensor ? `${p.tensor}: ` : ""}expected ${p.expected}, got ${p.actual}` +
        (p.message ? ` (${p.message})` : "") +
        (problems.length > 1 ? ` and ${problems.length - 1} more problem(s)` : ""),
    );
    this.file = file;
    this.base = base;
    this.tensor = p.tensor;
    this.expected = p.expected;
    this.actual = p.actual;
    this.problems = problems;
  }
}

/** The adapter file could not be read or llama.cpp's loader refused it; `reason` says which. */
export class AdapterLoadError extends LoraEdgeError {
  readonly file: string;
  readonly adapter: string;
  constructor(adapter: string, file: string, reason: string, options?: { cause?: unknown }) {
    super("ADAPTER_LOAD", `cannot load adapter "${adapter}" from ${file}: ${reason}`, options);
    this.adapter = adapter;
    this.file = file;
  }
}

/** A name was used that is not loaded, or is loaded already. */
export class AdapterNameError extends LoraEdgeError {
  readonly adapter: string;
  constructor(adapter: string, message: string) {
    super("ADAPTER_NAME", message);
    this.adapter = adapter;
  }
}

/** The requested backend (or GPU) is not available on this machine. */
export class BackendUnavailableError extends LoraEdgeError {
  readonly backend: string;
  constructor(backend: string, reason: string, options?: { cause?: unknown }) {
    super("BACKEND_UNAVAILABLE", `backend "${backend}" is not available: ${reason}`, options);
    this.backend = backend;
  }
}

/** The base model file could not be loaded. */
export class ModelLoadError extends LoraEdgeError {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super("MODEL_LOAD", `cannot load model ${file}: ${reason}`, options);
    this.file = file;
  }
}

/** A runtime, session or pool was used after it was disposed. */
export class DisposedError extends LoraEdgeError {
  constructor(what: string) {
    super("DISPOSED", `${what} is disposed`);
  }
}

/** Invalid argument to a runtime call (bad scale, bad option). */
export class InvalidArgumentError extends LoraEdgeError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}

/** An output file or directory cannot be written; names the path the caller gave (never a temp name). */
export class OutputError extends LoraEdgeError {
  readonly path: string;
  readonly reason: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super("OUTPUT", `cannot write ${path}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}

/** An adapter's tensor holds NaN or Inf (or would, once encoded): names the file and the tensor. */
export class AdapterDataError extends LoraEdgeError {
  readonly file: string;
  readonly tensor: string;
  readonly reason: string;
  constructor(file: string, tensor: string, reason: string) {
    super("ADAPTER_DATA", `${file}: ${tensor}: ${reason}`);
    this.file = file;
    this.tensor = tensor;
    this.reason = reason;
  }
}

/** Input the tools cannot use; names the file, the field (tensor, key) and the byte offset (-1 if none). */
export class ToolInputError extends LoraEdgeError {
  readonly file: string;
  readonly field: string;
  readonly offset: number;
  readonly reason: string;
  constructor(code: string, file: string, field: string, offset: number, reason: string) {
    super(code, `${file}: ${field}${offset >= 0 ? ` at byte ${offset}` : ""}: ${reason}`);
    this.file = file;
    this.field = field;
    this.offset = offset;
    this.reason = reason;
  }
}

/** A malformed, hostile or unsupported safetensors file. */
export class SafetensorsError extends ToolInputError {
  constructor(file: string, field: string, offset: number, reason: string) {
    super("SAFETENSORS", file, field, offset, reason);
  }
}

/**
 * An adapter that cannot be used here (unsupported feature, missing half, shape mismatch): a conversion or merge
 * the tools refuse (nothing is written), or an adapter the wasm engine cannot apply.
 */
export class UnsupportedAdapterError extends ToolInputError {
  constructor(file: string, field: string, reason: string) {
    super("UNSUPPORTED_ADAPTER", file, field, -1, reason);
  }
}

/** The scheduler's queue is full: try again later (`retryAfterMs` is a hint). */
export class QueueFullError extends LoraEdgeError {
  readonly retryAfterMs: number;
  constructor(queued: number, retryAfterMs: number) {
    super("QUEUE_FULL", `the request queue is full (${queued} waiting); try again later`);
    this.retryAfterMs = retryAfterMs;
  }
}

/** A chat prompt could not be built: the model has no chat template, or rendering it failed. */
export class ChatTemplateError extends LoraEdgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CHAT_TEMPLATE", message, options);
  }
}

/** A model, adapter or training input the trainer cannot use (unsupported architecture, missing tensor, bad shape, bad option). */
export class TrainInputError extends ToolInputError {
  constructor(file: string, field: string, reason: string, offset = -1) {
    super("TRAIN_INPUT", file, field, offset, reason);
  }
}

/** A training run whose loss or gradients stopped being finite: the step, and the checkpoint of the last good state. */
export class TrainDivergedError extends LoraEdgeError {
  constructor(readonly step: number, readonly checkpoint: string | undefined, what: string) {
    super("TRAIN_DIVERGED", `training diverged at step ${step + 1}: ${what}${checkpoint ? `; the last good state is kept in ${checkpoint}` : ""}`);
  }
}
