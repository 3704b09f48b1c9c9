// Progress reporting for long tool runs: a cli-progress bar on an interactive stderr, silent otherwise.
import cliProgress from "cli-progress";
import { onInterrupt } from "../interrupt.js";

export interface Progress {
  tick(label?: string): void;
  stop(): void;
}

export const silentProgress: Progress = { tick() {}, stop() {} };

/** A bar over `total` steps, shown only when stderr is a terminal and `enabled` (off for --json). */
export function progressBar(title: string, total: number, enabled = true): Progress {
  if (!enabled || !process.stderr.isTTY || total <= 1) return silentProgress;
  const bar = new cliProgress.SingleBar({
    format: `${title} [{bar}] {value}/{total} {label}`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  // The bar hides the cursor: SIGINT and SIGTERM must bring it back.
  const release = onInterrupt(() => bar.stop());
  bar.start(total, 0, { label: "" });
  return {
    tick(label = "") { bar.increment(1, { label }); },
    stop() { bar.stop(); release(); },
  };
}
