// Human-readable text for detection results and memory plans (used by the devices command).

import type { Detection } from "./detect.js";
import type { MemoryPlan } from "./plan.js";

/** Bytes as GiB or MiB with two decimals. */
export function fmtBytes(b: number): string {
  return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(2)} MiB`;
}

/** The detected device, its facts and how to get a working native build. */
export function formatDetection(d: Detection): string {
  const f = d.facts;
  const p = d.profile;
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${k.padEnd(10)} ${v}`);
  row("device", `${p.name}: ${p.title}`);
  row("matched", d.reasons.join(", ") + (d.alsoMatched.length ? ` (also: ${d.alsoMatched.join(", ")})` : ""));
  const cores = f.cpu.performanceCores !== undefined ? `${f.cpu.physicalCores} cores, ${f.cpu.performanceCores} performance`
    : `${f.cpu.physicalCores} cores / ${f.cpu.logicalCores} threads`;
  row("system", `${f.os} ${f.arch} ${f.osRelease}, node ${f.node}`);
  row("cpu", `${f.cpu.model || "unknown"} (${cores})`);
  row("memory", `${fmtBytes(f.memory.totalBytes)} total, ${fmtBytes(f.memory.availableBytes)} available` +
    (f.memory.swapTotalBytes ? `, ${fmtBytes(f.memory.swapTotalBytes)} swap` : ""));
  if (f.deviceTreeModel) row("board", f.deviceTreeModel + (f.l4t ? `, L4T ${f.l4t}` : ""));
  const v = f.gpu.vram;
  row("gpu", f.gpu.type ? `${f.gpu.type}: ${f.gpu.devices.join(", ") || "?"}` +
    (v && v.total ? `, ${fmtBytes(v.free)} free of ${fmtBytes(v.total)}${v.unifiedSize ? " (unified)" : ""}` : "")
    : `none used${f.gpu.error ? ` (${f.gpu.error})` : ""}`);
  row("backend", `${p.backend} ${p.gpu || "cpu"}, ${p.memory.model} memory, ${d.threads} threads, ` +
    `context ${p.defaults.contextSize}, batch ${p.defaults.batchSize}, flash attention ${p.defaults.flashAttention ? "on" : "off"}`);
  row("build", p.build.summary);
  for (const c of p.build.commands) lines.push(`${"".padEnd(10)}   $ ${c}`);
  if (p.powerModes) row("power", p.powerModes.map((m) => `${m.name} (nvpmodel -m ${m.nvpmodel})`).join(", ") +
    (p.powerNotes ? `. ${p.powerNotes}` : ""));
  for (const w of d.warnings) row("warning", w);
  for (const n of d.notes ?? []) row("note", n);
  return lines.join("\n") + "\n";
}

/** A memory plan as a small table. */
export function formatPlan(p: MemoryPlan): string {
  const b = p.bytes;
  const lines = [
    `plan for ${p.model.path} (${p.model.architecture}, ${p.model.nLayer} layers, ${(p.model.parameters / 1e6).toFixed(1)}M parameters)`,
    `  context ${p.contextSize} (KV cells ${p.kvCells}), batch ${p.batchSize}, flash attention ${p.flashAttention ? "on" : "off"}, ` +
      `threads ${p.threads}, GPU layers ${p.gpuLayers}/${p.model.nLayer + 1} (${p.backend})`,
    `  weights   ${fmtBytes(b.weights).padStart(12)}`,
    `  adapters  ${fmtBytes(b.adapters).padStart(12)}${p.adapters.length ? `  (${p.adapters.length})` : ""}`,
    `  KV cache  ${fmtBytes(b.kvCache).padStart(12)}`,
    `  compute   ${fmtBytes(b.compute + b.output).padStart(12)}`,
    `  total     ${fmtBytes(b.total).padStart(12)}  of ${fmtBytes(p.budget.usableBytes)} usable` +
      (p.memoryModel === "unified" ? " (unified: counted once)" : ""),
  ];
  if (p.memoryModel === "discrete" && p.gpuLayers > 0) {
    lines.push(`  on GPU    ${fmtBytes(p.placement.gpuBytes).padStart(12)}  of ${fmtBytes(p.budget.gpuUsableBytes ?? 0)} usable VRAM`);
    lines.push(`  on host   ${fmtBytes(p.placement.hostBytes).padStart(12)}`);
  }
  lines.push(`  largest context that fits: ${p.maxContextSize}`);
  for (const n of p.notes) lines.push(`  note: ${n}`);
  return lines.join("\n") + "\n";
}
