// CPU threads for a runtime: a thread request resolved against the cores this process may use.
import { usableCores } from "../devices/cores.js";

export interface ThreadChoice {
  /** Threads to open the backend with: the count to use, or with `measure` the most it may use. */
  threads: number;
  /** No count was asked for: the backend times decoding at up to `threads` and keeps the fastest. */
  measure: boolean;
  /** Set when the request was lowered to the usable cores: says so. */
  notice?: string;
}

/**
 * Threads for a runtime: an explicit request (capped at the usable cores, with a notice when lowered),
 * else a measured choice of at most `upTo` (a device plan's threads) and never more than the cores.
 */
export function chooseThreads(requested: number | undefined, upTo: number | undefined, cores = usableCores()): ThreadChoice {
  if (requested !== undefined) {
    if (requested <= cores) return { threads: requested, measure: false };
    return {
      threads: cores,
      measure: false,
      notice: `${requested} threads asked for, but this process may use ${cores} core${cores === 1 ? "" : "s"}: using ${cores}`,
    };
  }
  return { threads: Math.max(1, Math.min(upTo ?? cores, cores)), measure: true };
}
