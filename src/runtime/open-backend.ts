// Picks and opens the backend for Runtime.open: native (llama.cpp), the wasm engine, or auto (native, else wasm).
import type { Backend, BackendOpenOptions } from "../backends/backend.js";
import { NativeBackend } from "../backends/native.js";
import { WasmBackend } from "../backends/wasm.js";
import { BackendUnavailableError, InvalidArgumentError } from "../errors.js";

export type BackendChoice = "native" | "wasm" | "auto";

export interface OpenedBackend {
  backend: Backend;
  /** Set when "auto" fell back to the wasm engine: why native could not be used. */
  fallbackReason?: string;
}

/** Opens the chosen backend; "auto" uses the wasm engine only when no native binary loads. */
export async function openBackend(kind: BackendChoice, o: BackendOpenOptions): Promise<OpenedBackend> {
  if (kind === "native") return { backend: await NativeBackend.open(o) };
  if (kind === "wasm") return { backend: await WasmBackend.open(o) };
  if (kind !== "auto") throw new InvalidArgumentError(`unknown backend "${String(kind)}"`);
  try {
    return { backend: await NativeBackend.open(o) };
  } catch (e) {
    if (!(e instanceof BackendUnavailableError)) throw e;
    return { backend: await WasmBackend.open(o), fallbackReason: e.message };
  }
}
