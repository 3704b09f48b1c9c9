// Bench reports: a Markdown table, an SVG chart of the headline figures, and a side-by-side comparison of two devices.

import type { BenchResult } from "./schema.js";
import type { Figure } from "./stats.js";

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(2));
const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** One line naming the device, for headings and chart titles. */
export function deviceLine(r: BenchResult): string {
  const f = r.facts;
  const gpu = f.gpu.type ? `, ${f.gpu.type} ${f.gpu.devices.join("/")}${r.gpu?.software ? " (a software GPU)" : ""}` : "";
  return `${r.profile.name}: ${f.cpu.model} (${f.cpu.logicalCores} logical CPUs), ${gib(f.memory.totalBytes)}${gpu}`;
}

/** The headline figures: what the README and the issue quote. */
export function headline(r: BenchResult): Record<string, Figure | undefined> {
  const s = r.sections;
  return {
    "load (warm)": s.load?.warm_ms,
    "load (cold)": s.load?.cold_ms,
    "swap (live)": s.swap?.live_ms,
    "swap (new context)": s.swap?.new_context_ms,
    "first token after swap": s.swap?.first_token_after_swap_ms ?? s.swap?.first_token_after_new_context_ms,
    "swap (reload)": s.swap?.reload_ms,
    "decode base": s.tokens?.decode_base_tps,
    "decode + adapter": s.tokens?.decode_adapter_tps,
    "adapter overhead": s.tokens?.decode_overhead_pct,
  };
}

/** The full result as Markdown. */
export function toMarkdown(r: BenchResult): string {
  const m = r.model;
  const out: string[] = [];
  out.push(`# lora-edge bench: ${r.profile.name}${r.quick ? " (quick)" : ""}`, "");
  out.push(`- device: ${deviceLine(r)}`);
  out.push(`- system: ${r.facts.os} ${r.facts.arch} ${r.facts.osRelease}${r.facts.deviceTreeModel ? `, ${r.facts.deviceTreeModel}` : ""}${r.facts.l4t ? `, L4T ${r.facts.l4t}` : ""}`);
  out.push(`- versions: lora-edge ${r.versions.loraEdge}, node ${r.versions.node}, node-llama-cpp ${r.versions.nodeLlamaCpp} (llama.cpp ${r.versions.llamaCpp}), backend ${r.versions.backend}`);
  out.push(`- model: generated ${m.title} shape, ${m.type} (${m.quantizer}), vocab ${m.vocab}, ${m.layers} layers, ${(m.parameters / 1e6).toFixed(0)}M parameters, ${mib(m.bytes)}`);
  if (r.gpu) out.push(`- GPU: ${r.gpu.api} on ${r.gpu.devices.join(", ")}, ${r.gpu.layers} of ${r.gpu.totalLayers} layers offloaded` +
    (r.gpu.software ? "; a software GPU (a CPU-type Vulkan device): the figures show the pipeline end to end, not a GPU's speed" : ""));
  out.push(`- adapter: rank ${r.adapter.rank} on ${r.adapter.modules.join(", ")}, ${r.adapter.type}, ${mib(r.adapter.bytes)}`);
  out.push(`- settings: ${r.settings.threads} threads, context ${r.settings.contextSize}, prompt ${r.settings.promptTokens} tokens, decode ${r.settings.decodeTokens} tokens, ${r.settings.runs} runs`);
  out.push(`- command: \`${r.command}\`, ${r.createdAt}`, "");
  out.push("| section | figure | median | min | max | runs | unit |", "|---|---|--:|--:|--:|--:|---|");
  for (const [sec, figs] of Object.entries(r.sections)) {
    for (const [name, f] of Object.entries(figs)) out.push(`| ${sec} | ${name} | ${fmt(f.median)} | ${fmt(f.min)} | ${fmt(f.max)} | ${f.runs} | ${f.unit} |`);
  }
  if (r.plan) {
    out.push("", "Memory plan against what llama.cpp allocated:", "", "| part | planned | measured | error |", "|---|--:|--:|--:|");
    for (const k of Object.keys(r.plan.measuredBytes)) {
      out.push(`| ${k} | ${mib(r.plan.plannedBytes[k])} | ${mib(r.plan.measuredBytes[k])} | ${r.plan.errorPct[k] >= 0 ? "+" : ""}${r.plan.errorPct[k].toFixed(1)}% |`);
    }
  }
  if (r.notes.length) out.push("", ...r.notes.map((n) => `- ${n}`));
  return out.join("\n") + "\n";
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Two panels of horizontal bars: throughput (tok/s, linear) and latency (ms, log scale), with min-max whiskers. */
export function toSvg(r: BenchResult): string {
  const s = r.sections;
  const rate: [string, Figure | undefined][] = [
    ["prefill base", s.tokens?.prefill_base_tps], ["prefill + adapter", s.tokens?.prefill_adapter_tps],
    ["decode base", s.tokens?.decode_base_tps], ["decode + adapter", s.tokens?.decode_adapter_tps],
  ];
  const lat: [string, Figure | undefined][] = [
    ["swap live", s.swap?.live_ms], ["adapter load", s.adapter?.load_ms], ["context create", s.context?.create_ms],
    ["swap new context", s.swap?.new_context_ms], ["load warm", s.load?.warm_ms], ["load cold", s.load?.cold_ms], ["reload", s.swap?.reload_ms],
  ];
  const rows = (list: [string, Figure | undefined][]) => list.filter((x): x is [string, Figure] => !!x[1] && x[1].median > 0);
  const R = rows(rate);
  const L = rows(lat);
  const W = 720, labelW = 150, barW = 470, rowH = 22, top = 46;
  const panel1H = R.length * rowH + 30;
  const panel2Top = top + panel1H + 20;
  const H = panel2Top + L.length * rowH + 40;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="10" y="18" font-size="14" font-weight="bold">${esc(`lora-edge bench: ${r.model.title} ${r.model.type}, rank-${r.adapter.rank} adapter`)}</text>`);
  o.push(`<text x="10" y="34" fill="#555">${esc(deviceLine(r))}</text>`);
  const maxRate = Math.max(...R.map(([, f]) => f.max), 1);
  o.push(`<text x="10" y="${top + 12}" font-weight="bold">tokens per second (median, whisker min-max)</text>`);
  R.forEach(([name, f], i) => {
    const y = top + 20 + i * rowH;
    const w = (f.median / maxRate) * barW;
    const color = name.includes("adapter") ? "#e07b39" : "#3a78c2";
    o.push(`<text x="10" y="${y + 13}">${esc(name)}</text>`);
    o.push(`<rect x="${labelW}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color}"/>`);
    o.push(`<line x1="${(labelW + (f.min / maxRate) * barW).toFixed(1)}" x2="${(labelW + (f.max / maxRate) * barW).toFixed(1)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#222"/>`);
    o.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 13}">${fmt(f.median)}</text>`);
  });
  const lo = Math.min(...L.map(([, f]) => f.min), 1);
  const hi = Math.max(...L.map(([, f]) => f.max), 10);
  const l0 = Math.floor(Math.log10(Math.max(lo, 1e-3)));
  const l1 = Math.ceil(Math.log10(hi));
  const xs = (v: number) => labelW + ((Math.log10(Math.max(v, 10 ** l0)) - l0) / Math.max(1, l1 - l0)) * barW;
  o.push(`<text x="10" y="${panel2Top + 12}" font-weight="bold">latency in ms (log scale)</text>`);
  for (let e = l0; e <= l1; e++) {
    const x = xs(10 ** e);
    o.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${panel2Top + 18}" y2="${panel2Top + 20 + L.length * rowH}" stroke="#ddd"/>`);
    o.push(`<text x="${x.toFixed(1)}" y="${panel2Top + 32 + L.length * rowH}" text-anchor="middle" fill="#555">${esc(fmt(10 ** e))}</text>`);
  }
  L.forEach(([name, f], i) => {
    const y = panel2Top + 20 + i * rowH;
    o.push(`<text x="10" y="${y + 13}">${esc(name)}</text>`);
    o.push(`<rect x="${labelW}" y="${y + 2}" width="${(xs(f.median) - labelW).toFixed(1)}" height="${rowH - 6}" fill="${name.startsWith("swap live") ? "#2a9d5b" : "#8a8fa0"}"/>`);
    o.push(`<line x1="${xs(f.min).toFixed(1)}" x2="${xs(f.max).toFixed(1)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#222"/>`);
    o.push(`<text x="${(xs(f.median) + 6).toFixed(1)}" y="${y + 13}">${fmt(f.median)}</text>`);
  });
  o.push("</svg>");
  return o.join("\n") + "\n";
}

/** Two results side by side: every figure's median in each, and the ratio b / a. */
export function compareMarkdown(a: BenchResult, b: BenchResult, nameA = "A", nameB = "B"): string {
  const out: string[] = [];
  out.push(`# lora-edge bench: ${a.profile.name} vs ${b.profile.name}`, "");
  out.push(`- ${nameA}: ${deviceLine(a)}; ${a.model.title} ${a.model.type}, ${a.settings.threads} threads`);
  out.push(`- ${nameB}: ${deviceLine(b)}; ${b.model.title} ${b.model.type}, ${b.settings.threads} threads`);
  if (a.model.shape !== b.model.shape || a.model.type !== b.model.type || a.model.vocab !== b.model.vocab) {
    out.push(`- note: the models differ (${a.model.shape} ${a.model.type} vocab ${a.model.vocab} vs ${b.model.shape} ${b.model.type} vocab ${b.model.vocab})`);
  }
  out.push("", `| section | figure | unit | ${nameA} | ${nameB} | ${nameB} / ${nameA} |`, "|---|---|---|--:|--:|--:|");
  const secs = [...new Set([...Object.keys(a.sections), ...Object.keys(b.sections)])];
  for (const sec of secs) {
    const names = [...new Set([...Object.keys(a.sections[sec] ?? {}), ...Object.keys(b.sections[sec] ?? {})])];
    for (const n of names) {
      const fa = a.sections[sec]?.[n];
      const fb = b.sections[sec]?.[n];
      const ratio = fa && fb && fa.median !== 0 && fa.unit !== "%" ? `${(fb.median / fa.median).toFixed(2)}x` : "";
      out.push(`| ${sec} | ${n} | ${(fa ?? fb)!.unit} | ${fa ? fmt(fa.median) : "-"} | ${fb ? fmt(fb.median) : "-"} | ${ratio} |`);
    }
  }
  return out.join("\n") + "\n";
}
