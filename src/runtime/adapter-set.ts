// Adapter sets ({ name: scale }): validation, normalisation and a stable key for pooling.
import { InvalidArgumentError } from "../errors.js";
import { scaleProblem } from "../gguf/adapter.js";

/** Adapters by name with their user scale; an array of names means each at its default scale. */
export type AdapterSetInput = Readonly<Record<string, number>> | readonly string[];

/** A validated set: entries sorted by name, scale 0 entries removed (scale 0 is exactly the base). */
export type AdapterSet = readonly (readonly [name: string, scale: number])[];

/** Normalise an input set; `defaultScale(name)` supplies scales for names given without one. */
export function normalizeAdapterSet(input: AdapterSetInput | undefined, defaultScale: (name: string) => number): AdapterSet {
  if (input === undefined) return [];
  const entries: [string, number][] = Array.isArray(input)
    ? (input as readonly string[]).map((n) => [n, defaultScale(n)])
    : Object.entries(input as Record<string, number>);
  const out: [string, number][] = [];
  for (const [name, scale] of entries) {
    const bad = scaleProblem(scale);
    if (bad) throw new InvalidArgumentError(`adapter "${name}": bad scale: ${bad}`);
    if (scale !== 0) out.push([name, scale]);
  }
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return out;
}

/** A stable string for a set, e.g. "a=1,b=0.5" ("" for the base). */
export function adapterSetKey(set: AdapterSet): string {
  return set.map(([n, s]) => `${n}=${s}`).join(",");
}

/** The set as a plain object. */
export function adapterSetObject(set: AdapterSet): Record<string, number> {
  return Object.fromEntries(set);
}
