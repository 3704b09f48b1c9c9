// Real model shapes for generated benchmark models: hyper-parameters of public small LLMs.

/** Hyper-parameters of one model family member, as llama.cpp reads them. */
export interface ModelShape {
  /** Preset id used on the command line. */
  id: string;
  /** The public model whose dimensions these are. */
  title: string;
  architecture: "llama" | "qwen2";
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  nVocab: number;
  contextLength: number;
  ropeBase: number;
  rmsEps: number;
  /** Output projection shares token_embd (no output.weight tensor). */
  tiedEmbeddings: boolean;
  /** Biases on the q, k, v projections (Qwen2). */
  qkvBias: boolean;
}

export const SHAPES: readonly ModelShape[] = Object.freeze([
  { id: "tiny", title: "tiny test shape (2 layers)", architecture: "llama", nEmbd: 64, nLayer: 2, nHead: 4,
    nHeadKv: 2, nFf: 128, nVocab: 320, contextLength: 512, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false },
  { id: "stories15m", title: "stories15M (llama2.c)", architecture: "llama", nEmbd: 288, nLayer: 6, nHead: 6,
    nHeadKv: 6, nFf: 768, nVocab: 32000, contextLength: 256, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false },
  { id: "smollm-135m", title: "SmolLM-135M", architecture: "llama", nEmbd: 576, nLayer: 30, nHead: 9,
    nHeadKv: 3, nFf: 1536, nVocab: 49152, contextLength: 2048, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: true, qkvBias: false },
  { id: "qwen2.5-0.5b", title: "Qwen2.5-0.5B", architecture: "qwen2", nEmbd: 896, nLayer: 24, nHead: 14,
    nHeadKv: 2, nFf: 4864, nVocab: 151936, contextLength: 32768, ropeBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true, qkvBias: true },
  { id: "llama-3.2-1b", title: "Llama-3.2-1B", architecture: "llama", nEmbd: 2048, nLayer: 16, nHead: 32,
    nHeadKv: 8, nFf: 8192, nVocab: 128256, contextLength: 131072, ropeBase: 500000, rmsEps: 1e-5, tiedEmbeddings: true, qkvBias: false },
] as ModelShape[]);

/** A preset by id (case-insensitive); throws listing the known ids. */
export function shapeById(id: string): ModelShape {
  const s = SHAPES.find((x) => x.id === id.toLowerCase());
  if (!s) throw new Error(`unknown model shape "${id}"; known: ${SHAPES.map((x) => x.id).join(", ")}`);
  return s;
}

/** The seven LoRA-able projections, by the short names used on the command line. */
export const PROJECTIONS = Object.freeze({
  q: "attn_q", k: "attn_k", v: "attn_v", o: "attn_output", gate: "ffn_gate", up: "ffn_up", down: "ffn_down",
} as const);
export type ProjectionName = keyof typeof PROJECTIONS;

/** [n_in, n_out] of a projection's weight (ggml ne order). */
export function projectionDims(s: ModelShape, p: ProjectionName): [number, number] {
  const hd = s.nEmbd / s.nHead;
  const q = s.nHead * hd;
  const kv = s.nHeadKv * hd;
  switch (p) {
    case "q": return [s.nEmbd, q];
    case "k": return [s.nEmbd, kv];
    case "v": return [s.nEmbd, kv];
    case "o": return [q, s.nEmbd];
    case "gate": return [s.nEmbd, s.nFf];
    case "up": return [s.nEmbd, s.nFf];
    case "down": return [s.nFf, s.nEmbd];
  }
}
