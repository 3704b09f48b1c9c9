// Torture script: 10,000 seeded interleavings of load, unload, swap, rescale and generate over 3 sessions.
import os from "node:os";
import { parseArgs } from "node:util";
import { Runtime, defaultModelPath, demoAdapterPaths } from "../src/runtime/index.js";
import { runTorture } from "./torture-check.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== "--"),
    options: {
      ops: { type: "string", short: "n" },
      seed: { type: "string" },
      swap: { type: "string" },
      threads: { type: "string" },
      json: { type: "boolean" },
    },
  });
  const operations = Number(values.ops ?? 10000);
  const seed = Number(values.seed ?? 42);
  const swap = (values.swap ?? "live") as "live" | "recreate";
  const threads = Number(values.threads ?? 1);
  const demo = demoAdapterPaths();
  const rt = await Runtime.open({ model: defaultModelPath(), gpu: false, threads, contextSize: 256, swap });
  const rss0 = process.memoryUsage().rss;
  try {
    const r = await runTorture(rt, {
      files: [demo.a, demo.b],
      operations,
      seed,
      progressEvery: 1000,
      onProgress: (n) => process.stderr.write(`  ${n} operations, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} MiB\n`),
    });
    const st = rt.stats();
    const summary = {
      operations: r.operations,
      seed,
      swapMode: swap,
      counts: r.counts,
      generationsChecked: r.checked,
      mismatches: r.mismatches.length,
      referenceContexts: r.referenceContexts,
      swaps: { count: st.swaps.count, p50Ms: st.swaps.p50Ms, p99Ms: st.swaps.p99Ms },
      seconds: r.ms / 1000,
      rssStartMiB: rss0 / 2 ** 20,
      rssEndMiB: process.memoryUsage().rss / 2 ** 20,
    };
    if (values.json) process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    else {
      process.stdout.write(
        `torture: ${r.operations} operations (seed ${seed}, ${swap} swaps) in ${summary.seconds.toFixed(1)} s\n` +
          `  ${Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(", ")}\n` +
          `  ${r.checked} generations checked against fresh contexts: ${r.mismatches.length} mismatches\n` +
          `  swaps ${st.swaps.count}: p50 ${st.swaps.p50Ms.toFixed(4)} ms, p99 ${st.swaps.p99Ms.toFixed(4)} ms\n` +
          `  rss ${summary.rssStartMiB.toFixed(1)} -> ${summary.rssEndMiB.toFixed(1)} MiB\n`,
      );
      for (const m of r.mismatches.slice(0, 5)) process.stdout.write(`  mismatch at op ${m.op} [${m.set}] "${m.prompt}": ${m.got} != ${m.expected}\n`);
    }
    if (r.mismatches.length > 0) process.exitCode = 1;
  } finally {
    await rt.dispose();
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
