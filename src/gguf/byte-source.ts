// Random-access byte sources for the GGUF reader: the interface and an in-memory buffer (files: file-source.ts).

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
