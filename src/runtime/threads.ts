// CPU threads: the cores this process may use, and a thread request resolved against them.
import fs from "node:fs";
import os from "node:os";

/** Cores this process may run on: its CPU affinity (os.availableParallelism), lowered by a cgroup CPU quota. */
export function usableCores(): number {
  const cores = Math.max(1, os.availableParallelism());
  const quota = cgroupCpuQuota();
  return quota === undefined ? cores : Math.max(1, Math.min(cores, Math.ceil(quota)));
}

/** The CPU quota of this process's cgroup in cores (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), or undefined when unlimited. */
function cgroupCpuQuota(): number | undefined {
  let lines: string[];
  try {
    lines = fs.readFileSync("/proc/self/cgroup", "utf8").split("\n");
  } catch {
    return undefined; // not Linux
  }
  const read = (file: string) => {
    try {
      return fs.readFileSync(file, "utf8").trim();
    } catch {
      return undefined;
    }
  };
  const ratio = (quota: string | undefined, period: string | undefined) => {
    const q = Number(quota);
    const p = Number(period);
    return q > 0 && p > 0 ? q / p : undefined; // "max" or -1: no quota
  };
  for (const line of lines) {
    const [, controllers, dir] = line.split(":");
    if (dir === undefined) continue;
    if (controllers === "") {
      const max = read(`/sys/fs/cgroup${dir}/cpu.max`)?.split(/\s+/);
      if (max) return ratio(max[0], max[1]);
    } else if (controllers.split(",").includes("cpu")) {
      const base = `/sys/fs/cgroup/${controllers}${dir}`;
      return ratio(read(`${base}/cpu.cfs_quota_us`), read(`${base}/cpu.cfs_period_us`));
    }
  }
  return undefined;
}

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
