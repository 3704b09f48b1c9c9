// The wasm core's quantizer for generated models, when the core is built; undefined otherwise.
import type { Quantizer } from "../synth.js";

/** Loads the wasm core and returns its quantize function, or the reason it is unavailable. */
export async function coreQuantizer(): Promise<{ quantize?: Quantizer; reason?: string }> {
  try {
    const { loadCore } = await import("../../core/index.js");
    const core = await loadCore();
    return { quantize: (typeId, values) => core.quantize(typeId, values) };
  } catch (e) {
    return { reason: (e as Error).message.split("\n")[0] };
  }
}
