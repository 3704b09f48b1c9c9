// Extracts a LoRA adapter from two models (tuned - base, truncated SVD per tensor) and reports the error left over.
import { openGguf } from "../gguf/reader.js";
import { UnsupportedAdapterError } from "../errors.js";
import { LoraPair, writeAdapter } from "./lora.js";
import { truncatedSvd } from "./linalg.js";
import { tensorMath } from "./tensor-math.js";
import { progressBar } from "./progress.js";
import { checkOutput } from "../output-file.js";

export interface ExtractTensorReport {
  target: string;
  /** ||tuned - (base + B A)||_F / ||tuned - base||_F. */
  relError: number;
  /** ||tuned - base||_F / ||base||_F: how much the tensor changed. */
  relDelta: number;
}

export interface ExtractResult {
  output: string;
  rank: number;
  pairs: number;
  /** Over all extracted tensors: ||Δ - B A||_F / ||Δ||_F. */
  relError: number;
  /** Over all extracted tensors: ||tuned - (base + B A)||_F / ||tuned||_F. */
  relErrorOfTuned: number;
  tensors: ExtractTensorReport[];
  /** Tensors that differ but cannot be carried by a LoRA adapter (vectors such as norms). */
  uncaptured: string[];
  /** Pairs whose rank is their matrix's smaller dimension, below the requested rank (the full delta). */
  capped: { target: string; rank: number }[];
  seconds: number;
  /** Kernels of the large products: the wasm core, or the TypeScript fallback. */
  engine: "wasm" | "ts";
}

const adaptable = (name: string, ne: readonly number[]) =>
  ne.length === 2 && name.endsWith(".weight") && !name.endsWith("_norm.weight");

/** base + extracted adapter ≈ tuned: for each 2-D weight that differs, the best rank-R factors of the difference. */
export async function extractAdapter(basePath: string, tunedPath: string, rank: number, output: string,
  opts: { progress?: boolean; minRelDelta?: number; force?: boolean } = {}): Promise<ExtractResult> {
  if (!Number.isInteger(rank) || rank < 1) throw new TypeError(`rank must be a positive integer, got ${rank}`);
  const t0 = performance.now();
  const out = { overwrite: opts.force ?? false, inputs: [basePath, tunedPath] };
  checkOutput(output, out);
  const math = await tensorMath();
  const base = openGguf(basePath);
  const tuned = openGguf(tunedPath);
  try {
    const arch = String(base.get("general.architecture") ?? "");
    if (String(tuned.get("general.architecture") ?? "") !== arch) {
      throw new UnsupportedAdapterError(tunedPath, "general.architecture", `is ${String(tuned.get("general.architecture"))}, the base is ${arch}`);
    }
    for (const t of base.tensors) {
      const u = tuned.tensor(t.name);
      if (!u || u.ne.join() !== t.ne.join()) throw new UnsupportedAdapterError(tunedPath, t.name, u ? `shape [${u.ne.join(", ")}] differs from the base's [${t.ne.join(", ")}]` : "missing (the models must share one tensor table)");
      for (const [f, x] of [[basePath, t], [tunedPath, u]] as const) {
        if (!math.canDecode(x.type.id)) throw new UnsupportedAdapterError(f, x.name, `cannot dequantize ${x.type.name}`);
      }
    }
    const pairs: LoraPair[] = [];
    const reports: ExtractTensorReport[] = [];
    const uncaptured: string[] = [];
    const capped: { target: string; rank: number }[] = [];
    let errSq = 0, deltaSq = 0, tunedSq = 0;
    const bar = progressBar("extract", base.tensors.length, opts.progress ?? false);
    for (const t of base.tensors) {
      bar.tick(t.name);
      const u = tuned.tensor(t.name)!;
      const w = math.decode(t.type.id, base.readTensor(t), t.nElements);
      const v = math.decode(u.type.id, tuned.readTensor(u), u.nElements);
      let dSq = 0, wSq = 0, vSq = 0;
      const d = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) { d[i] = v[i] - w[i]; dSq += d[i] * d[i]; wSq += w[i] * w[i]; vSq += v[i] * v[i]; }
      if (dSq === 0) continue;
      if (!adaptable(t.name, t.ne)) { uncaptured.push(t.name); continue; }
      const relDelta = Math.sqrt(dSq / (wSq || 1));
      if (opts.minRelDelta !== undefined && relDelta < opts.minRelDelta) continue;
      const [nIn, nOut] = t.ne;
      // A rank above the smaller dimension adds only zeros: such a pair gets the full rank of its matrix, and
      // (the file's alpha being --rank) lora_b carries r/rank so that alpha / r times B A is the delta.
      const r = Math.min(rank, nIn, nOut);
      const f = truncatedSvd(d, nOut, nIn, r, 4, math.matmul);
      if (r < rank) capped.push({ target: t.name, rank: r });
      // Residual of the factorisation, measured directly (B·A on the engine's product kernel).
      const approx = math.matmul(f.b, f.a, nOut, r, nIn);
      let rSq = 0;
      for (let i = 0; i < d.length; i++) { const e = d[i] - approx[i]; rSq += e * e; }
      errSq += rSq; deltaSq += dSq; tunedSq += vSq;
      reports.push({ target: t.name, relError: Math.sqrt(rSq / dSq), relDelta });
      if (r < rank) for (let i = 0; i < f.b.length; i++) f.b[i] *= r / rank;
      pairs.push({ target: t.name, nIn, nOut, rank: r, a: f.a, b: f.b });
      await new Promise<void>((res) => setImmediate(res)); // let SIGINT and SIGTERM in between tensors
    }
    bar.stop();
    if (pairs.length === 0) throw new UnsupportedAdapterError(tunedPath, "tensors", "no 2-D weight differs from the base: nothing to extract");
    writeAdapter(output, { architecture: arch, alpha: rank, pairs, extraKv: [] }, undefined, undefined, out);
    return {
      output, rank, pairs: pairs.length,
      relError: Math.sqrt(errSq / deltaSq), relErrorOfTuned: Math.sqrt(errSq / tunedSq),
      tensors: reports, uncaptured, capped, seconds: (performance.now() - t0) / 1000, engine: math.engine,
    };
  } finally {
    base.close();
    tuned.close();
  }
}
