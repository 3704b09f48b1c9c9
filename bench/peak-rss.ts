// Peak resident memory of this process, in MiB: its own address space's high-water mark, not its parent's.
import { readFileSync } from "node:fs";

/**
 * This process's peak resident set in MiB. On Linux it is VmHWM from /proc/self/status: getrusage's maxrss of a
 * forked child also carries the parent's resident set at the fork (it survives the exec), so a small child of a
 * large parent would report the parent's size. Elsewhere, getrusage's figure.
 */
export function peakRssMiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // no /proc: not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}
