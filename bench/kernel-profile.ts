// The wasm core's time of one run kernel by kernel (its profile), with the time spent outside kernels.
import type { Core } from "../src/core/core.js";

/** Name of the entry that holds the run's time outside kernel calls. */
export const OUTSIDE_KERNELS = "outside kernels (JavaScript)";

/**
 * Runs `run` (which returns the milliseconds it timed) with the core's per-kernel timing on: milliseconds per
 * kernel, largest first, then the rest of the timed span outside kernel calls. Timing each call adds a little
 * to every kernel call; nothing is timed outside a profile.
 */
export function kernelProfile(core: Core, run: () => number): { totalMs: number; ms: [string, number][] } {
  core.startProfile();
  let totalMs: number;
  let prof: Map<string, number>;
  try {
    totalMs = run();
  } finally {
    prof = core.stopProfile();
  }
  const ms = [...prof].sort((a, b) => b[1] - a[1]);
  const known = ms.reduce((s, [, v]) => s + v, 0);
  ms.push([OUTSIDE_KERNELS, totalMs - known]);
  return { totalMs, ms };
}
