// Mixes LoRA adapters into one with the meaning of PEFT's add_weighted_adapter: linear, cat or svd.
import { UnsupportedAdapterError } from "../errors.js";
import { LoraAdapter, LoraPair, pairScale, readAdapter, sortPairs, writeAdapter } from "./lora.js";
import { lowRankSvd } from "./linalg.js";
import { progressBar } from "./progress.js";
import { checkOutput } from "../output-file.js";
import { scaleProblem } from "../gguf/adapter.js";
import { ALORA_INVOCATION_KEY } from "../gguf/alora.js";
import { InvalidArgumentError } from "../errors.js";

export type MixMethod = "linear" | "cat" | "svd";

export interface MixInput {
  path: string;
  weight: number;
}

export interface MixResult {
  output: string;
  method: MixMethod;
  rank: number;
  alpha: number;
  pairs: number;
  inputs: { path: string; weight: number; ranks: number[]; alpha: number | null }[];
}

interface Source { path: string; weight: number; adapter: LoraAdapter }

/**
 * Mixes in memory. With s_i the scale llama.cpp gives adapter i (alpha_i / r), w_i the user weight:
 *  - linear (equal ranks, w_i·s_i >= 0): A = Σ √(w_i s_i) A_i, B = Σ √(w_i s_i) B_i, as PEFT does (this is not the
 *    sum of the deltas when several adapters differ: PEFT's cross terms are kept on purpose);
 *  - cat: A = [w_1 s_1 A_1; w_2 s_2 A_2; ...], B = [B_1 B_2 ...]: ΔW = Σ w_i s_i B_i A_i exactly, rank Σ r_i;
 *  - svd: the best rank-R approximation of Σ w_i s_i B_i A_i (B = U Σ, A = Vᵀ), R = --rank or the largest input rank.
 *    (PEFT's own svd path multiplies each delta by its scale twice; this follows the definition instead.)
 * Modules missing from an adapter are skipped for it; in cat mode its block stays zero, as in PEFT.
 * The result has alpha = its rank, so llama.cpp's scale is 1 and every factor lives in A and B.
 */
export async function mixInMemory(sources: readonly Source[], method: MixMethod, svdRank?: number, showProgress = false): Promise<LoraAdapter> {
  if (sources.length === 0) throw new TypeError("mix needs at least one adapter");
  for (const s of sources) {
    if (s.adapter.extraKv.some((e) => e.key === ALORA_INVOCATION_KEY)) {
      throw new UnsupportedAdapterError(s.path, ALORA_INVOCATION_KEY, "an aLoRA adapter cannot be mixed: it acts only from its invocation " +
        "sequence on, and a mixed adapter would carry one activation rule for all its parts (or none, and act on every token)");
    }
  }
  const arch = sources[0].adapter.architecture;
  for (const s of sources) {
    if (s.adapter.architecture !== arch) throw new UnsupportedAdapterError(s.path, "general.architecture", `is ${s.adapter.architecture}, the first adapter is ${arch}`);
  }
  // PEFT mixes a single adapter linearly whatever the method.
  const m: MixMethod = sources.length === 1 ? "linear" : method;
  const targets = new Map<string, { nIn: number; nOut: number }>();
  for (const s of sources) {
    for (const p of s.adapter.pairs) {
      const t = targets.get(p.target);
      if (t && (t.nIn !== p.nIn || t.nOut !== p.nOut)) throw new UnsupportedAdapterError(s.path, p.target, `shape [${p.nIn}, ${p.nOut}] differs from another adapter's [${t.nIn}, ${t.nOut}]`);
      targets.set(p.target, { nIn: p.nIn, nOut: p.nOut });
    }
  }
  const maxRank = Math.max(...sources.flatMap((s) => s.adapter.pairs.map((p) => p.rank)));
  const catRank = sources.reduce((acc, s) => acc + Math.max(0, ...s.adapter.pairs.map((p) => p.rank)), 0);
  if (m === "linear") {
    const ranks = new Set(sources.flatMap((s) => s.adapter.pairs.map((p) => p.rank)));
    if (ranks.size !== 1) throw new UnsupportedAdapterError(sources[0].path, "rank", `linear mixing needs one rank in all adapters, found ${[...ranks].join(", ")} (use --method cat or svd)`);
    for (const s of sources) {
      for (const p of s.adapter.pairs) {
        if (s.weight * pairScale(s.adapter, p) < 0) throw new UnsupportedAdapterError(s.path, "weight", `linear mixing takes square roots of weight · scale, so ${s.weight} cannot be used (use --method cat or svd)`);
      }
    }
  }
  const rank = m === "linear" ? maxRank : m === "cat" ? catRank : svdRank ?? maxRank;
  const bar = progressBar(`mix ${m}`, targets.size, showProgress);
  const out: LoraPair[] = [];
  for (const [target, { nIn, nOut }] of targets) {
    const parts = sources.flatMap((s) => {
      const p = s.adapter.pairs.find((x) => x.target === target);
      return p ? [{ p, c: s.weight * pairScale(s.adapter, p), offset: 0 }] : [];
    });
    if (m === "linear") {
      const a = new Float32Array(rank * nIn);
      const b = new Float32Array(nOut * rank);
      for (const { p, c } of parts) {
        const f = Math.sqrt(c);
        for (let i = 0; i < a.length; i++) a[i] += f * p.a[i];
        for (let i = 0; i < b.length; i++) b[i] += f * p.b[i];
      }
      out.push({ target, nIn, nOut, rank, a, b });
    } else {
      // Concatenate: rows of c·A, columns of B (at each source's fixed offset, so missing modules leave zeros).
      const a = new Float32Array(catRank * nIn);
      const b = new Float32Array(nOut * catRank);
      let off = 0;
      for (const s of sources) {
        const part = parts.find((x) => s.adapter.pairs.includes(x.p));
        const width = Math.max(0, ...s.adapter.pairs.map((p) => p.rank));
        if (part) {
          const { p, c } = part;
          for (let k = 0; k < p.rank; k++) for (let i = 0; i < nIn; i++) a[(off + k) * nIn + i] = c * p.a[k * nIn + i];
          for (let o = 0; o < nOut; o++) for (let k = 0; k < p.rank; k++) b[o * catRank + off + k] = p.b[o * p.rank + k];
        }
        off += width;
      }
      if (m === "cat") out.push({ target, nIn, nOut, rank, a, b });
      else {
        const f = lowRankSvd(b, a, nOut, nIn, catRank, rank);
        out.push({ target, nIn, nOut, rank, a: f.a, b: f.b });
      }
    }
    bar.tick(target);
    // Back to the event loop between targets: SIGINT and SIGTERM are handled at once, not after the whole mix.
    await new Promise<void>((r) => setImmediate(r));
  }
  bar.stop();
  return { architecture: arch, alpha: rank, pairs: sortPairs(out), extraKv: [] };
}

/**
 * Reads the adapters, mixes them and writes the result atomically. An existing output is refused unless
 * `force`; an output that is one of the inputs is always refused. Both are checked before any work.
 */
export async function mixAdapters(inputs: readonly MixInput[], output: string, method: MixMethod, svdRank?: number,
  opts: { progress?: boolean; force?: boolean } = {}): Promise<MixResult> {
  const out = { overwrite: opts.force ?? false, inputs: inputs.map((i) => i.path) };
  checkOutput(output, out);
  for (const i of inputs) {
    const bad = scaleProblem(i.weight);
    if (bad) throw new InvalidArgumentError(`${i.path}: bad weight: ${bad}`);
  }
  const sources = inputs.map((i) => ({ path: i.path, weight: i.weight, adapter: readAdapter(i.path) }));
  const mixed = await mixInMemory(sources, method, svdRank, opts.progress ?? false);
  writeAdapter(output, mixed, undefined, undefined, out);
  return {
    output, method: sources.length === 1 ? "linear" : method, rank: mixed.alpha!, alpha: mixed.alpha!, pairs: mixed.pairs.length,
    inputs: sources.map((s) => ({ path: s.path, weight: s.weight, ranks: [...new Set(s.adapter.pairs.map((p) => p.rank))], alpha: s.adapter.alpha ?? null })),
  };
}
