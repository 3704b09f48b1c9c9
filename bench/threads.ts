// Thread-count benchmark: native decode tokens/s at several thread counts and at the runtime's default, idle and beside a CPU hog, on stories260K and a generated 100M Q4_0 model.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { NativeBackend } from "../src/backends/native.js";
import { threadCandidates } from "../src/backends/native-threads.js";
import { usableCores } from "../src/devices/index.js";
import { Runtime, defaultModelPath } from "../src/runtime/index.js";
import { generated100M } from "./models.js";

/** The default may be at most this much slower than the best thread count (decode time per token). */
const GOAL = 1.2;

interface Setting {
  /** "default" (no threads given: what `lora-edge run` uses) or an explicit count. */
  label: string;
  threads: number | undefined;
}

interface SettingResult {
  label: string;
  /** Threads the runtime used (for the default: what it chose at open, under the same condition). */
  threads: number;
  decodeTps: number;
  prefillTps: number;
  /** Per run, interleaved with the other settings. */
  decodeTpsRuns: number[];
  /** The default's probe: decode ms per token at each count it timed while opening. */
  probe?: { threads: number; msPerToken: number; tokens: number }[];
  probeMs?: number;
}

interface CaseResult {
  model: string;
  condition: "idle" | "loaded";
  settings: SettingResult[];
  best: { label: string; decodeTps: number };
  /** Best decode tok/s over the default's: 1 means the default is the best. */
  bestOverDefault: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A child process spinning on one core until `seconds` pass or it is killed. */
function startHog(seconds: number): ChildProcess {
  const hog = spawn(process.execPath, ["-e", `const end = Date.now() + ${seconds * 1000}; while (Date.now() < end) {}`], { stdio: "ignore" });
  const kill = () => hog.kill("SIGKILL");
  process.once("exit", kill);
  hog.once("exit", () => process.removeListener("exit", kill));
  return hog;
}

async function stopHogs(hogs: ChildProcess[]): Promise<void> {
  await Promise.all(hogs.map((h) => new Promise<void>((resolve) => {
    if (h.exitCode !== null || h.signalCode !== null) return resolve();
    h.once("exit", () => resolve());
    h.kill("SIGKILL");
  })));
}

async function measureCase(o: {
  model: string; label: string; condition: "idle" | "loaded"; settings: Setting[]; runs: number; tokens: number;
  runSeconds: number; prompt: string; hogs: number; hogSeconds: number; log: (s: string) => void;
}): Promise<CaseResult> {
  const hogs = o.condition === "loaded" ? Array.from({ length: o.hogs }, () => startHog(o.hogSeconds)) : [];
  const runtimes: Runtime[] = [];
  try {
    if (hogs.length) await new Promise((r) => setTimeout(r, 200)); // let the hogs start spinning
    // Opened under the condition: the default chooses its threads while opening, as `run` does.
    for (const s of o.settings) runtimes.push(await Runtime.open({ model: o.model, gpu: false, threads: s.threads, contextSize: 512 }));
    // a run stops after `tokens` tokens or `runSeconds` (a collapsed setting decodes a few tokens a second)
    const generate = async (rt: Runtime, maxTokens: number) => {
      const session = rt.session();
      try {
        const signal = AbortSignal.timeout(o.runSeconds * 1000);
        return (await session.generate(o.prompt, { maxTokens, temperature: 0, signal }).result).timings;
      } finally {
        await session.dispose();
      }
    };
    for (const rt of runtimes) await generate(rt, 4); // warm-up
    const decode: number[][] = o.settings.map(() => []);
    const prefill: number[][] = o.settings.map(() => []);
    for (let r = 0; r < o.runs; r++) {
      // interleaved, in a rotating order, so drift and the hog's phases hit every setting alike
      for (let k = 0; k < runtimes.length; k++) {
        const i = (k + r) % runtimes.length;
        const t = await generate(runtimes[i], o.tokens);
        // a run that ended before its second token counts as 0 tok/s (under 1 token per runSeconds)
        decode[i].push(t.decodeTokens > 0 ? t.decodeTokens / (t.decodeMs / 1000) : 0);
        prefill[i].push(t.prefillMs > 0 ? t.prefillTokens / (t.prefillMs / 1000) : 0);
      }
    }
    const settings: SettingResult[] = o.settings.map((s, i) => {
      const probe = runtimes[i].backend.name === "native" ? (runtimes[i].backend as NativeBackend).threadProbe : undefined;
      return {
        label: s.label,
        threads: runtimes[i].threads,
        decodeTps: median(decode[i]),
        prefillTps: median(prefill[i]),
        decodeTpsRuns: decode[i],
        ...(probe ? { probe: probe.timings, probeMs: probe.ms } : {}),
      };
    });
    const best = settings.reduce((a, b) => (b.decodeTps > a.decodeTps ? b : a));
    const def = settings.find((s) => s.label === "default")!;
    o.log(`  ${o.label}, ${o.condition}: ${settings.map((s) => `${s.label}${s.label === "default" ? `(${s.threads})` : ""} ${s.decodeTps.toFixed(0)}`).join(", ")} tok/s`);
    return { model: o.label, condition: o.condition, settings, best: { label: best.label, decodeTps: best.decodeTps }, bestOverDefault: best.decodeTps / def.decodeTps };
  } finally {
    for (const rt of runtimes) await rt.dispose();
    await stopHogs(hogs);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== "--"),
    options: {
      json: { type: "boolean" },
      /** Comma-separated thread counts to compare with the default (default: 1, powers of two, the usable cores). */
      threads: { type: "string" },
      tokens: { type: "string", default: "64" },
      runs: { type: "string", default: "11" },
      /** Longest run, seconds: a run ends after `tokens` tokens or this long. */
      "run-seconds": { type: "string", default: "2" },
      /** Hog processes for the loaded condition (default 1: one core busy). */
      hogs: { type: "string", default: "1" },
      "skip-large": { type: "boolean" },
      keep: { type: "string" },
    },
  });
  const log = (s: string) => process.stderr.write(s + "\n");
  const cores = usableCores();
  const counts = values.threads ? values.threads.split(",").map(Number) : threadCandidates(cores);
  for (const c of counts) {
    if (!Number.isInteger(c) || c < 1) throw new Error(`--threads wants whole numbers >= 1, got "${values.threads}"`);
    if (c > cores) throw new Error(`--threads ${c}: this process may use ${cores} cores (the runtime lowers larger counts to that)`);
  }
  const settings: Setting[] = [...counts.map((c) => ({ label: String(c), threads: c })), { label: "default", threads: undefined }];
  const runs = Number(values.runs);
  const tokens = Number(values.tokens);
  const hogCount = Number(values.hogs);
  // a prompt of about 100 tokens, so prefill figures mean something too
  const prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. ".repeat(4);

  const models: { label: string; path: string }[] = [{ label: "stories260K F32", path: defaultModelPath() }];
  let tmp: string | undefined;
  if (!values["skip-large"]) {
    tmp = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-threads-"));
    fs.mkdirSync(tmp, { recursive: true });
    models.push({ label: "generated 100M Q4_0", path: generated100M(tmp, log) });
  }
  const load0 = os.loadavg()[0];
  const started = performance.now();
  const results: CaseResult[] = [];
  try {
    for (const m of models) {
      log(`${m.label}: thread counts ${counts.join(", ")} and the default, ${runs} interleaved runs of ${tokens} tokens`);
      for (const condition of ["idle", "loaded"] as const) {
        results.push(await measureCase({
          model: m.path, label: m.label, condition, settings, runs, tokens, prompt, hogs: hogCount,
          runSeconds: Number(values["run-seconds"]), hogSeconds: 600, log,
        }));
      }
    }
  } finally {
    if (tmp && !values.keep) fs.rmSync(tmp, { recursive: true, force: true });
  }

  const targets: Record<string, { value: number; goal: number; met: boolean }> = {};
  for (const r of results) {
    const value = Math.round(r.bestOverDefault * 1000) / 1000;
    targets[`${r.model}, ${r.condition}: best decode tok/s over the default's`] = { value, goal: GOAL, met: value <= GOAL };
  }
  const machine = { cpu: os.cpus()[0]?.model ?? "?", usableCores: cores, loadAverageAtStart: load0, hogs: hogCount, seconds: Math.round((performance.now() - started) / 1000) };
  if (values.json) {
    process.stdout.write(JSON.stringify({ machine, tokens, runs, results, targets }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`${machine.cpu}, ${cores} usable cores, load average ${load0.toFixed(2)} at start; loaded = ${hogCount} spinning process(es)\n`);
  for (const r of results) {
    process.stdout.write(`\n${r.model}, ${r.condition}\n  threads        decode tok/s   prefill tok/s\n`);
    for (const s of r.settings) {
      const name = s.label === "default" ? `default (${s.threads})` : s.label;
      process.stdout.write(`  ${name.padEnd(14)} ${s.decodeTps.toFixed(1).padStart(12)}   ${s.prefillTps.toFixed(0).padStart(13)}\n`);
    }
    const probe = r.settings.find((s) => s.label === "default")?.probe;
    if (probe) process.stdout.write(`  default chose by timing ${probe.map((p) => `${p.threads}: ${p.msPerToken.toFixed(2)} ms/token`).join(", ")}\n`);
    process.stdout.write(`  best ${r.best.label}; best / default = ${r.bestOverDefault.toFixed(2)} (goal <= ${GOAL})\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
