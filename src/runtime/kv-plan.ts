// Which adapters evaluate which tokens (base, plain LoRA or aLoRA from its invocation on), and how much cached KV a new evaluation may keep.
import { InvalidArgumentError } from "../errors.js";
import { lastInvocationStart } from "./invocation.js";

/**
 * How a generation's tokens were evaluated: "base" (no adapters), "plain" (the set on every token), "alora"
 * (the base up to the invocation start, the set from there on) or "alora-inactive" (aLoRA adapters whose
 * invocation is not in the prompt: the base on every token, as llama-server does).
 */
export type AdapterPath = "base" | "plain" | "alora" | "alora-inactive";

/** One adapter of a set as planning sees it: its set key part and its invocation sequence (aLoRA only). */
export interface PlannedAdapter {
  readonly name: string;
  readonly invocation: readonly number[] | undefined;
}

/**
 * What computed a run of cached KV states: positions below `baseEnd` by the base (no adapters), the rest
 * by the set `key` ("" is the base; then `baseEnd` is Infinity). Empty caches are described by BASE_KV.
 */
export interface KvOrigin {
  readonly key: string;
  readonly baseEnd: number;
}

export const BASE_KV: KvOrigin = { key: "", baseEnd: Infinity };

export interface EvalPlan extends KvOrigin {
  readonly path: AdapterPath;
  /** Index in the tokens where the aLoRA adapters start acting (path "alora"). */
  readonly start?: number;
}

/** True when every adapter of the set is an aLoRA adapter (the empty set counts: it is the base). */
export function isAloraOnly(set: readonly PlannedAdapter[]): boolean {
  return set.every((a) => a.invocation !== undefined);
}

/**
 * The invocation sequence a set of aLoRA adapters shares. A set switches from the base to its adapters at one
 * point, so several aLoRA adapters in one set must share one invocation (llama-server takes one aLoRA
 * adapter per request); otherwise InvalidArgumentError naming them.
 */
export function sharedInvocation(set: readonly PlannedAdapter[]): readonly number[] | undefined {
  let inv: readonly number[] | undefined;
  let first = "";
  for (const a of set) {
    if (!a.invocation) return undefined;
    if (!inv) [inv, first] = [a.invocation, a.name];
    else if (inv.length !== a.invocation.length || inv.some((t, i) => t !== a.invocation![i])) {
      throw new InvalidArgumentError(`aLoRA adapters "${first}" and "${a.name}" have different invocation sequences ` +
        `([${inv.join(", ")}] and [${a.invocation.join(", ")}]): a set can hold aLoRA adapters that share one invocation only`);
    }
  }
  return inv;
}

/**
 * The plan for evaluating `tokens` under a set whose cache key is `key`: a set with any plain adapter is
 * plain on every token; a set of aLoRA adapters acts from the last start of its invocation in `tokens` on,
 * and not at all when the invocation is absent.
 */
export function planEvaluation(set: readonly PlannedAdapter[], key: string, tokens: ArrayLike<number>): EvalPlan {
  if (set.length === 0) return { path: "base", ...BASE_KV };
  if (!isAloraOnly(set)) return { path: "plain", key, baseEnd: 0 };
  const start = lastInvocationStart(tokens, sharedInvocation(set)!);
  if (start === undefined) return { path: "alora-inactive", ...BASE_KV };
  return { path: "alora", key, baseEnd: start, start };
}

/**
 * How many leading cached states computed as `cached` describes are also what `plan` computes: all of them when
 * both are the same set switched at the same point, else those below both base parts (plain sets have none).
 * KV states computed with a plain set are therefore never kept for any other set.
 */
export function keptPrefixLimit(cached: KvOrigin, plan: KvOrigin): number {
  if (cached.key === plan.key && cached.baseEnd === plan.baseEnd) return Infinity;
  return Math.min(cached.baseEnd, plan.baseEnd);
}
