// The cores this process may use: its CPU affinity, lowered by a cgroup CPU quota.
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
