// GgufError: a GGUF file was rejected; names the file, the field and the byte offset.
import { LoraEdgeError } from "../errors.js";

/** Thrown for any malformed, hostile or unsupported GGUF input (code "GGUF"; field "file": it could not be opened). */
export class GgufError extends LoraEdgeError {
  /** The file (or label) being read. */
  readonly file: string;
  /** The field that failed, e.g. "header.tensor_count" or "tensor[3].offset". */
  readonly field: string;
  /** Byte offset in the file where the field starts (-1 when not tied to an offset). */
  readonly offset: number;
  /** The plain sentence, without the file/field/offset prefix. */
  readonly reason: string;

  constructor(file: string, field: string, offset: number, reason: string) {
    super("GGUF", `${file}: ${field}${offset >= 0 ? ` at byte ${offset}` : ""}: ${reason}`);
    this.file = file;
    this.field = field;
    this.offset = offset;
    this.reason = reason;
  }
}
