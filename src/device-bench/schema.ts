// The bench result schema (one JSON per device run) and its validator.
import { LoraEdgeError } from "../errors.js";

import type { SystemFacts } from "../devices/facts.js";
import type { Figure } from "./stats.js";

export const BENCH_SCHEMA = "lora-edge-bench/1";

export interface BenchResult {
  schema: typeof BENCH_SCHEMA;
  createdAt: string;
  /** The command line that produced it. */
  command: string;
  quick: boolean;
  profile: { name: string; title: string; gpu: string | false; memoryModel: string };
  facts: SystemFacts;
  versions: { loraEdge: string; node: string; nodeLlamaCpp: string; llamaCpp: string; binary: string; backend: string };
  model: { shape: string; title: string; type: string; vocab: number; layers: number; parameters: number; bytes: number;
    quantizer: string; synthetic: true };
  adapter: { rank: number; modules: string[]; type: string; bytes: number };
  settings: { threads: number; contextSize: number; batchSize: number; promptTokens: number; decodeTokens: number; runs: number;
    coldLoad: "process" | "in-process" };
  /** Section -> figure name -> figure. */
  sections: Record<string, Record<string, Figure>>;
  /** The GPU the run used (a software one is a CPU-type device such as lavapipe). */
  gpu?: { api: string; devices: string[]; software: boolean; layers: number; totalLayers: number };
  /** The memory plan against what llama.cpp allocated. */
  plan?: { plannedBytes: Record<string, number>; measuredBytes: Record<string, number>; errorPct: Record<string, number> };
  notes: string[];
}

/** Sections every full result has (kernels may be missing where the wasm core is not built). */
export const REQUIRED_SECTIONS = ["load", "context", "adapter", "swap", "tokens", "memory"] as const;

/** A bench result file is malformed: names the field. */
export class BenchSchemaError extends LoraEdgeError {
  constructor(readonly file: string, readonly field: string, message: string) {
    super("BENCH_SCHEMA", `${file}: ${field}: ${message}`);
  }
}

/** Checks a parsed result against the schema: shape, types, and min <= median <= max. */
export function validateBenchResult(raw: unknown, file = "(result)"): BenchResult {
  const fail = (field: string, msg: string): never => { throw new BenchSchemaError(file, field, msg); };
  const obj = (v: unknown, field: string) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) fail(field, "must be an object");
    return v as Record<string, unknown>;
  };
  const r = obj(raw, "(root)");
  if (r.schema !== BENCH_SCHEMA) fail("schema", `must be "${BENCH_SCHEMA}"`);
  for (const k of ["createdAt", "command"]) if (typeof r[k] !== "string") fail(k, "must be a string");
  if (typeof r.quick !== "boolean") fail("quick", "must be a boolean");
  const p = obj(r.profile, "profile");
  if (typeof p.name !== "string") fail("profile.name", "must be a string");
  obj(r.facts, "facts");
  const v = obj(r.versions, "versions");
  for (const k of ["loraEdge", "node", "nodeLlamaCpp", "llamaCpp", "backend"]) if (typeof v[k] !== "string") fail(`versions.${k}`, "must be a string");
  const m = obj(r.model, "model");
  for (const k of ["vocab", "layers", "parameters", "bytes"]) if (typeof m[k] !== "number" || !((m[k] as number) > 0)) fail(`model.${k}`, "must be a positive number");
  const s = obj(r.settings, "settings");
  for (const k of ["threads", "contextSize", "promptTokens", "decodeTokens", "runs"]) if (typeof s[k] !== "number" || !((s[k] as number) > 0)) fail(`settings.${k}`, "must be a positive number");
  const sections = obj(r.sections, "sections");
  for (const name of REQUIRED_SECTIONS) if (!(name in sections)) fail(`sections.${name}`, "missing");
  for (const [sec, figs] of Object.entries(sections)) {
    for (const [name, f] of Object.entries(obj(figs, `sections.${sec}`))) {
      const field = `sections.${sec}.${name}`;
      const g = obj(f, field);
      for (const k of ["min", "median", "max", "runs"]) if (typeof g[k] !== "number" || !Number.isFinite(g[k])) fail(`${field}.${k}`, "must be a finite number");
      if (typeof g.unit !== "string") fail(`${field}.unit`, "must be a string");
      if (!((g.min as number) <= (g.median as number) && (g.median as number) <= (g.max as number))) fail(field, "needs min <= median <= max");
      if (!Number.isInteger(g.runs) || (g.runs as number) < 1) fail(`${field}.runs`, "must be a positive integer");
    }
  }
  if (!Array.isArray(r.notes)) fail("notes", "must be an array");
  return r as unknown as BenchResult;
}
