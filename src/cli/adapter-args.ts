// Adapter arguments of the CLI: FILE[:SCALE], NAME=FILE[:SCALE] and NAME[:SCALE][,NAME[:SCALE]], scales checked.
import { existsSync } from "node:fs";
import { UsageError } from "./command.js";
import { scaleProblem } from "../gguf/adapter.js";

/** A scale written on the command line; anything else is a UsageError that says "bad scale". */
export function parseScale(text: string, arg: string): number {
  const s = text.trim() === "" ? NaN : Number(text);
  const problem = scaleProblem(s);
  if (problem) throw new UsageError(`bad scale "${text}" in "${arg}": ${problem.replace(/^NaN is/, "it is")}`);
  return s;
}

/**
 * FILE[:SCALE]: the text after the last colon is the scale, unless it holds a path separator (C:\x.gguf)
 * or the whole argument names an existing file. A file whose name ends in ":text" needs an explicit scale.
 */
export function splitFileScale(arg: string): { file: string; scale: number | undefined } {
  const i = arg.lastIndexOf(":");
  const tail = arg.slice(i + 1);
  if (i <= 0 || /[\\/]/.test(tail) || existsSync(arg)) return { file: arg, scale: undefined };
  return { file: arg.slice(0, i), scale: parseScale(tail, arg) };
}

/** One -a value of run and chat: NAME=FILE[:SCALE] (scale 1 when not given). */
export function parseAdapterFlag(spec: string): { name: string; file: string; scale: number } {
  const eq = spec.indexOf("=");
  if (eq <= 0 || eq === spec.length - 1) throw new UsageError(`-a wants NAME=FILE[:SCALE], got "${spec}"`);
  const { file, scale } = splitFileScale(spec.slice(eq + 1));
  return { name: spec.slice(0, eq), file, scale: scale ?? 1 };
}

/** One FILE[:SCALE] of merge and mix (scale 1 when not given). */
export function parseFileScale(arg: string): { path: string; scale: number } {
  const { file, scale } = splitFileScale(arg);
  return { path: file, scale: scale ?? 1 };
}

/**
 * An adapter set written NAME[:SCALE][,NAME[:SCALE]] (--use, /adapter): a name without a scale takes the
 * scale it was loaded with (`loadScale`); a name that is not loaded is a UsageError listing those that are.
 */
export function parseAdapterUse(spec: string, loadScale: (name: string) => number | undefined, loaded: () => string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const i = part.lastIndexOf(":");
    const name = i > 0 ? part.slice(0, i) : part;
    const scale = loadScale(name);
    if (scale === undefined) throw new UsageError(`no adapter named "${name}" is loaded (loaded: ${loaded().join(", ") || "none"})`);
    out[name] = i > 0 ? parseScale(part.slice(i + 1), part) : scale;
  }
  return out;
}
