// Byte sources over files on disk (Node): read on demand, and opened for the GGUF reader with its typed errors.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { ioReason } from "../output-file.js";
import type { ByteSource } from "./byte-source.js";
import { GgufError } from "./errors.js";

/** A source over a file: nothing is read until asked, so multi-GB files cost nothing up front. */
export function fileSource(path: string): ByteSource {
  const fd = openSync(path, "r");
  let open = true;
  const stat = fstatSync(fd);
  if (!stat.isFile()) {
    closeSync(fd);
    throw Object.assign(new Error(`${path} is not a regular file`), { code: "EISDIR" });
  }
  const size = stat.size;
  return {
    size,
    read(offset, length) {
      if (!open) throw new Error(`${path} is closed`);
      if (offset < 0 || length < 0 || offset + length > size) throw new RangeError("read past end");
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + done);
        if (n <= 0) throw new RangeError(`${path}: short read at ${offset + done}`);
        done += n;
      }
      return out;
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** A file source for the GGUF reader: GgufError (field "file") when the file cannot be opened. */
export function openFileSource(path: string): ByteSource {
  try {
    return fileSource(path);
  } catch (e) {
    if (e instanceof GgufError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new GgufError(path, "file", -1, code === "ENOENT" ? "no such file" : `cannot open: ${ioReason(e)}`);
  }
}
