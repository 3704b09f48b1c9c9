// The package entry point exposes the public API in one import.
import { describe, expect, it } from "vitest";
import * as api from "../src/index.js";
import { fixture } from "./fixtures.js";

describe("public API", () => {
  it("exports the GGUF layer, the runtime, the core and the tools", () => {
    for (const name of ["openGguf", "writeGguf", "checkAdapter", "Runtime", "loadCore", "WasmBackend", "peftToGguf", "mergeAdapters", "detect", "plan", "GgufError", "AdapterMismatchError"]) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe("function");
    }
  });

  it("reads and checks real files through the entry point", () => {
    using base = api.openGguf(fixture("models/stories260K.gguf"));
    using adapter = api.openGguf(fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf"));
    expect(api.checkAdapter(base, adapter).ok).toBe(true);
  });
});
