// A byte source over a Blob or File, read in ranges on demand with FileReaderSync (Web Workers only).
import type { ByteSource } from "./byte-source.js";

type FileReaderSyncClass = new () => { readAsArrayBuffer(blob: Blob): ArrayBuffer };
const browser = globalThis as unknown as { FileReaderSync?: FileReaderSyncClass };

/** True where Blobs can be read synchronously (a browser's worker). */
export function blobReadsSupported(): boolean {
  return typeof browser.FileReaderSync === "function";
}

/** A source over `blob`: each read copies only the range asked for. Throws where FileReaderSync is missing. */
export function blobSource(blob: Blob): ByteSource {
  const Reader = browser.FileReaderSync;
  if (!Reader) throw new Error("Blobs can be read in ranges only in a worker (no FileReaderSync here)");
  const reader = new Reader();
  let open = true;
  return {
    size: blob.size,
    read(offset, length) {
      if (!open) throw new Error("the source is closed");
      if (offset < 0 || length < 0 || offset + length > blob.size) throw new RangeError("read past end");
      return new Uint8Array(reader.readAsArrayBuffer(blob.slice(offset, offset + length)));
    },
    close() {
      open = false;
    },
  };
}
