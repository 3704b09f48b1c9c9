// Typed errors of the adapter tools: bad input files (naming file, field and byte offset) and refused conversions.
import { LoraEdgeError } from "../errors.js";

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
