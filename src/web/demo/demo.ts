// The demo page: stories260K and its two demo adapters, streamed text, a live slider per adapter, drag-and-drop files.
import { Runtime, type Generation, type WebSession, type WebSource } from "../index.js";

interface El { textContent: string | null; innerHTML: string; className: string; disabled?: boolean; value?: string; files?: ArrayLike<File>;
  addEventListener(t: string, f: (ev: DropEvent) => void): void; appendChild(c: unknown): unknown; classList: { add(c: string): void; remove(c: string): void; toggle(c: string, on: boolean): void } }
interface DropEvent { preventDefault(): void; dataTransfer?: { files: ArrayLike<File> } }
const doc = (globalThis as unknown as { document: { getElementById(id: string): El; createElement(t: string): El; querySelector(s: string): El | null } }).document;
const $ = (id: string) => doc.getElementById(id);

const params = new URLSearchParams((globalThis as unknown as { location: { search: string } }).location.search);
const BASE = params.get("model") ?? "/gguf/stories260K.gguf";
const ADAPTERS: [string, string][] = params.has("adapters")
  ? params.getAll("adapters").map((a) => a.split("=", 2) as [string, string])
  : [["A", "/gguf/stories260K-demo-a.gguf"], ["B", "/gguf/stories260K-demo-b.gguf"]];

/** What the page shows, and what a test can read back (window.demo). */
const state = {
  ready: false,
  /** ms from opening the page until it could generate with its model and adapters loaded */
  openedMs: 0,
  threadsMode: "",
  threads: 0,
  generating: false,
  text: "",
  lastSwapMs: NaN,
  swaps: 0,
  error: "",
  adapters: {} as Record<string, number>,
};
(globalThis as unknown as { demo: unknown }).demo = { state, setScale, generate, loadAdapters, openBase };

let rt: Runtime | undefined;
let session: WebSession | undefined;
let running: Generation | undefined;

function showError(e: unknown): void {
  state.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  $("error").textContent = state.error;
  $("error").classList.add("shown");
}

function clearError(): void {
  state.error = "";
  $("error").classList.remove("shown");
}

function renderSliders(): void {
  const box = $("sliders");
  box.innerHTML = "<b>Adapters</b> (scale, applied live)";
  for (const name of Object.keys(state.adapters)) {
    const row = doc.createElement("div");
    row.className = "slider";
    row.innerHTML = `<span>${escapeHtml(name)}</span><input type="range" min="0" max="2" step="0.05" value="${state.adapters[name]}" data-adapter="${escapeHtml(name)}"><span>${state.adapters[name].toFixed(2)}</span>`;
    box.appendChild(row);
    const input = (row as unknown as { querySelector(s: string): El }).querySelector("input");
    const label = (row as unknown as { querySelector(s: string): El }).querySelector("span:last-child");
    input.addEventListener("input", () => {
      const v = Number(input.value);
      label.textContent = v.toFixed(2);
      void setScale(name, v);
    });
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** Applies the whole slider set to the session: during a generation it takes effect from the next token. */
async function setScale(name: string, scale: number): Promise<void> {
  if (!session) return;
  state.adapters[name] = scale;
  const slider = doc.querySelector(`input[data-adapter="${escapeHtml(name)}"]`);
  if (slider && Number(slider.value) !== scale) {
    slider.value = String(scale);
    const label = doc.querySelector(`input[data-adapter="${escapeHtml(name)}"] + span`);
    if (label) label.textContent = scale.toFixed(2);
  }
  const set = Object.fromEntries(Object.entries(state.adapters).filter(([, s]) => s > 0));
  try {
    await session.setAdapters(set);
    const st = await rt!.stats();
    state.swaps = st.swaps.count;
    state.lastSwapMs = st.swaps.count > 0 ? st.swaps.meanMs : NaN;
    void renderStats();
  } catch (e) {
    showError(e);
  }
}

async function renderStats(): Promise<void> {
  if (!rt) return;
  const s = await rt.stats();
  const tok = Object.keys(state.adapters).some((n) => state.adapters[n] > 0) ? s.tokens.adapted : s.tokens.base;
  const cells: [string, string][] = [
    ["decode tokens/s", tok.decodeTokensPerSecond.toFixed(0)],
    ["prefill tokens/s", tok.prefillTokensPerSecond.toFixed(0)],
    ["swap (median)", s.swaps.count ? `${s.swaps.p50Ms.toFixed(3)} ms` : "–"],
    ["memory (engine)", `${(s.memory.rss / 2 ** 20).toFixed(1)} MiB`],
    ["threads", `${s.threads} (${s.threadsMode === "workers" ? "Web Workers, shared memory" : "one thread"})`],
    ["model", s.model],
    ["load", `${s.load.totalMs.toFixed(0)} ms`],
    ["swaps", String(s.swaps.count)],
  ];
  $("stats").innerHTML = cells.map(([k, v]) => `<div>${k}<b>${escapeHtml(v)}</b></div>`).join("");
  if (s.threadsNote) $("status").textContent = `Ready. One thread: ${s.threadsNote}.`;
}

async function openBase(model: WebSource, name?: string): Promise<void> {
  clearError();
  const next = await Runtime.open({ model, name, contextSize: 512 });
  running?.abort();
  await rt?.dispose();
  rt = next;
  session = rt.session();
  state.adapters = {};
  state.threads = rt.threads;
  state.threadsMode = rt.threadsMode;
  renderSliders();
  $("status").textContent = `Ready: ${rt.opened.model}, ${rt.threads} thread${rt.threads > 1 ? "s (Web Workers)" : " (one thread)"}.`;
}

async function loadAdapters(list: [string, WebSource][]): Promise<void> {
  for (const [name, src] of list) {
    try {
      await rt!.adapters.load(name, src);
      state.adapters[name] = 0;
      clearError();
    } catch (e) {
      showError(e);
    }
  }
  renderSliders();
}

async function generate(): Promise<string> {
  if (!session || state.generating) return state.text;
  state.generating = true;
  $("go").disabled = true;
  $("stop").disabled = false;
  state.text = "";
  $("out").textContent = "";
  const prompt = $("prompt").value ?? "";
  try {
    running = session.generate(prompt, { maxTokens: Number($("max").value), temperature: Number($("temp").value) });
    let n = 0;
    for await (const piece of running) {
      state.text += piece;
      $("out").textContent = prompt + state.text;
      if (++n % 16 === 0) void renderStats();
    }
    await running.result;
  } catch (e) {
    showError(e);
  } finally {
    running = undefined;
    state.generating = false;
    $("go").disabled = false;
    $("stop").disabled = true;
    await renderStats();
  }
  return state.text;
}

function uniqueName(file: string): string {
  const stem = file.replace(/\.gguf$/i, "").replace(/[,=:\s]/g, "_") || "adapter";
  let name = stem;
  for (let i = 2; name in state.adapters; i++) name = `${stem}_${i}`;
  return name;
}

function dropZone(zone: string, input: string, take: (files: File[]) => Promise<void>): void {
  const z = $(zone);
  z.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    z.classList.add("over");
  });
  z.addEventListener("dragleave", () => z.classList.remove("over"));
  z.addEventListener("drop", (ev) => {
    ev.preventDefault();
    z.classList.remove("over");
    void take(Array.from(ev.dataTransfer?.files ?? []));
  });
  $(input).addEventListener("change", () => void take(Array.from($(input).files ?? [])));
}

dropZone("drop-base", "file-base", async (files) => {
  if (!files[0]) return;
  try {
    await openBase(files[0]);
  } catch (e) {
    showError(e); // the model loaded before stays in use
  }
});
dropZone("drop-adapters", "file-adapters", (files) => loadAdapters(files.map((f) => [uniqueName(f.name), f])));

$("go").addEventListener("click", () => void generate());
$("stop").addEventListener("click", () => running?.abort());

try {
  if (!BASE) throw new Error("no model: drop a base model (.gguf) on the page");
  await openBase(BASE);
  await loadAdapters(ADAPTERS);
  state.openedMs = performance.now(); // since the page was opened (navigation start)
  state.ready = true;
  $("go").disabled = false;
  await renderStats();
} catch (e) {
  showError(e);
}
