// lora-edge's public API: the GGUF layer, and (as they land) the runtime, core and tools.
export { GgufError } from "./gguf/errors.js";
export { openGguf, parseGguf, GgufFile, GgufArray, GgufValueType } from "./gguf/reader.js";
export type { GgufKV, GgufTensorInfo, GgufValue } from "./gguf/reader.js";
export { bufferSource, fileSource } from "./gguf/byte-source.js";
export type { ByteSource } from "./gguf/byte-source.js";
export { writeGguf, kvInputsFrom, tensorInputsFrom } from "./gguf/writer.js";
export type { GgufKVInput, GgufTensorInput, GgufWriteInput } from "./gguf/writer.js";
export { GGML_TYPES, GgmlType, ggmlTypeById, ggmlTypeByName } from "./gguf/ggml-types.js";
export type { GgmlTypeTraits } from "./gguf/ggml-types.js";
export { modelHparams, adapterMeta, fileKind } from "./gguf/metadata.js";
export type { ModelHparams, AdapterMeta } from "./gguf/metadata.js";
export { checkAdapter, adapterSummary } from "./gguf/adapter.js";
export type { AdapterCheck, AdapterProblem, AdapterSummary } from "./gguf/adapter.js";
export { describeGguf } from "./gguf/describe.js";
export * from "./runtime/index.js";
export * from "./devices/index.js";
export * from "./errors.js";
