// Browser twin of file-source.ts (the web bundle puts it in its place): there are no file paths to open there.
import type { ByteSource } from "./byte-source.js";
import { GgufError } from "./errors.js";

const WHY = "files cannot be opened by path in a browser; pass a URL, an ArrayBuffer or a File";

export function fileSource(path: string): ByteSource {
  throw new GgufError(path, "file", -1, WHY);
}

export function openFileSource(path: string): ByteSource {
  throw new GgufError(path, "file", -1, WHY);
}
