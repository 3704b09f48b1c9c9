// Random-access byte sources for the GGUF reader: an in-memory buffer or a file read on demand.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** Positional, synchronous reads; `read` returns exactly `length` bytes or throws. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

/** A source over bytes already in memory (tests, fuzzing, browsers). */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.byteLength) throw new RangeError("read past end");
      return bytes.subarray(offset, offset + length);
    },
    close() {},
  };
}

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
