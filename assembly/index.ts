// Entry point of the wasm core: every exported kernel takes byte offsets into linear memory and element counts.
export { f16_to_f32, f32_to_f16, bf16_to_f32, f32_to_bf16 } from "./half";
export * from "./dequant";
export * from "./quant";
export { quantize_q4_k, quantize_q6_k } from "./quant-k";
export * from "./gemv";
export * from "./gemv-x4";
export * from "./gemm";
export * from "./gemm-x4";
export * from "./lowrank";
export * from "./lora-q8";
export * from "./probe";
export * from "./engine";

/** First free byte after static data: the host's arena starts here. */
export function heap_base(): usize {
  return __heap_base;
}

/** dst[0..n) = src[0..n) for f32 values (the F32 "dequantization"). */
export function copy_f32(src: usize, dst: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}
export * from "./transposed";
export * from "./train-ops";
