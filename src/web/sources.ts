// Inputs of the web runtime (a URL, an ArrayBuffer or typed array, a Blob or File) as byte sources for the GGUF reader.
import { bufferSource, type ByteSource } from "../gguf/byte-source.js";
import { blobReadsSupported, blobSource } from "../gguf/blob-source.js";
import { GgufError } from "../gguf/errors.js";

/** A model or adapter as the page has it. URLs are fetched; Blobs and Files are read in ranges. */
export type WebSource = string | URL | ArrayBuffer | ArrayBufferView | Blob;

/** The name errors and stats use for an input: a File's name, a URL's last path part, or `fallback`. */
export function sourceName(input: WebSource, fallback: string): string {
  if (typeof input === "string" || input instanceof URL) {
    const s = String(input);
    const last = s.split(/[?#]/)[0].split("/").filter(Boolean).pop();
    return last ? decodeURIComponent(last) : s;
  }
  if (typeof Blob !== "undefined" && input instanceof Blob && typeof (input as File).name === "string" && (input as File).name) return (input as File).name;
  return fallback;
}

/** A byte source over the input; GgufError (field "file") when it cannot be fetched. */
export async function openWebSource(input: WebSource, name: string): Promise<ByteSource> {
  if (input instanceof ArrayBuffer) return bufferSource(new Uint8Array(input));
  if (ArrayBuffer.isView(input)) return bufferSource(new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  if (typeof Blob !== "undefined" && input instanceof Blob) return overBlob(input);
  if (typeof input !== "string" && !(input instanceof URL)) throw new GgufError(name, "file", -1, "not a URL, ArrayBuffer, typed array, Blob or File");
  let res: Response;
  try {
    res = await fetch(input);
  } catch (e) {
    throw new GgufError(name, "file", -1, `cannot fetch ${String(input)}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new GgufError(name, "file", -1, `cannot fetch ${String(input)}: HTTP ${res.status}`);
  // a browser keeps a large response Blob out of the JS heap; it is then read in ranges like a File
  return overBlob(await res.blob());
}

async function overBlob(blob: Blob): Promise<ByteSource> {
  return blobReadsSupported() ? blobSource(blob) : bufferSource(new Uint8Array(await blob.arrayBuffer()));
}
