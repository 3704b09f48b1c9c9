// The real GGUF files the fuzzer mutates: the shipped default model and the test fixtures of the repository.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { defaultModelPath, packageRoot } from "../src/paths.js";

/** Fixture files used as fuzz seeds when present (a clone has them, an installed package not), else only the shipped model. */
export function FUZZ_SEEDS(): string[] {
  const fixtures = resolve(packageRoot(), "test/fixtures");
  const extra = [
    "adapters/stories260K-lora-synthetic-r4-s1.gguf",
    "models/stories260K-Q4_0.gguf",
    "quant/ggml-quant-goldens-256x32.gguf",
    "tokenizer/ggml-vocab-llama-spm.gguf",
  ].map((p) => join(fixtures, p)).filter(existsSync);
  return [defaultModelPath(), ...extra];
}
