// Public entry of the kernel core on Node: wires the Node host adapter into the loader and the worker pool.
import { nodePlatform } from "./platform-node.js";
import { compileBuilds, loadCoreOn, type CoreOptions } from "./loader.js";
import { KernelPool, PoolOptions } from "./pool.js";
import type { Core } from "./core.js";
import type { Platform } from "./platform.js";

export { Core, CoreError } from "./core.js";
export type { LowRankPair, GemvOptions } from "./core.js";
export type { Matrix, BuildName, KernelCall, KernelHost, ParallelRunner } from "./types.js";
export { KERNELS, ACTIVATIONS, kernelsFor, productKernels, q4_0ScalesFinite, UnsupportedTypeError } from "./kernels.js";
export type { TypeKernels, ProductKernels, Layout, Activation, ActivationForm } from "./kernels.js";
export { Products } from "./products.js";
export { TRANSPOSED_KERNELS, gemmTransposed, hasTransposed, transposedScratchBytes } from "./transposed.js";
export type { Product, AdapterTerm, TermRows, LoraHalves } from "./products.js";
export { KernelPool } from "./pool.js";
export type { PoolOptions } from "./pool.js";
export { gemvStreamed, dequantizeStreamed, tensorRows, uploadTensor, gemvTensor } from "./stream.js";
export type { RowSource, StreamOptions } from "./stream.js";
export { Arena, ArenaError } from "./arena.js";

export type { CoreOptions } from "./loader.js";

/** A single-threaded core over a fresh memory, on the best build that computes correctly here. */
export function loadCore(opts: CoreOptions = {}): Promise<Core> {
  return loadCoreOn(opts.platform ?? nodePlatform, opts);
}

/** Why the relaxed SIMD build is not in use here (undefined when it is). */
export async function relaxedSimdProblem(platform: Platform = nodePlatform): Promise<string | undefined> {
  return (await compileBuilds(platform, true)).relaxedProblem;
}

/** A worker pool whose `core` splits large products by rows over all cores. Call dispose() when done. */
export function createPool(opts: PoolOptions & { platform?: Platform } = {}): Promise<KernelPool> {
  return KernelPool.create(opts.platform ?? nodePlatform, opts);
}
