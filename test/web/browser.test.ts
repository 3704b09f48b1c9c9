// lora-edge/web in headless Chromium: the page's greedy text against the Node wasm engine and llama.cpp, live swaps, bad files, threads.
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime } from "../../src/runtime/index.js";
import { startPageServer, type PageServer } from "../../src/serve/page-server.js";
import { FIXTURES, fixture, repoRoot, scratchDir } from "../fixtures.js";
import { ALORA_TEST_ADAPTER } from "../../src/tools/demo-adapters.js";
import { announceSkip, findChromium, launchChromium } from "../../bench/chromium.js";

const chromium = findChromium();
if ("reason" in chromium) announceSkip("browser", chromium.reason);

const BASE = path.join(repoRoot, "gguf/stories260K.gguf");
const A = path.join(repoRoot, "gguf/stories260K-demo-a.gguf");
const B = path.join(repoRoot, "gguf/stories260K-demo-b.gguf");
const PROMPT = "Once upon a time";
const GREEDY = { maxTokens: 32, temperature: 0 };
const SETS: Record<string, number>[] = [{}, { A: 1 }, { B: 1 }, { A: 0.5, B: 0.5 }];
const ARTIFACTS = path.join(repoRoot, "test-artifacts/web");

/** Runs `body` in the page with `web` bound to the lora-edge/web module (served next to the page). */
function inPage<T>(page: Page, body: string): Promise<T> {
  return page.evaluate(`(async () => { const web = await import("./lora-edge.js"); ${body} })()`) as Promise<T>;
}

/** Opens the demo page at `url` and waits until it has loaded its model and adapters. */
async function openDemo(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url);
  await page.waitForFunction("window.demo && (window.demo.state.ready || window.demo.state.error)", { timeout: 60_000 });
  const state = (await page.evaluate("window.demo.state")) as { ready: boolean; error: string };
  expect(state.error, problems.join("\n")).toBe("");
  expect(state.ready).toBe(true);
  return page;
}

/** The page's greedy texts for each set, on a runtime of its own with `threads`. */
function pageGreedy(page: Page, threads: number): Promise<{ texts: string[]; threads: number; mode: string }> {
  return inPage(page, `
    const rt = await web.Runtime.open({ model: "/gguf/stories260K.gguf", threads: ${threads}, contextSize: 256 });
    await rt.adapters.load("A", "/gguf/stories260K-demo-a.gguf");
    await rt.adapters.load("B", "/gguf/stories260K-demo-b.gguf");
    const s = rt.session();
    const texts = [];
    for (const set of ${JSON.stringify(SETS)}) {
      await s.setAdapters(set);
      texts.push((await s.complete(${JSON.stringify(PROMPT)}, ${JSON.stringify(GREEDY)})).text);
    }
    const st = await rt.stats();
    await rt.dispose();
    return { texts, threads: st.threads, mode: st.threadsMode };
  `);
}

/** Greedy texts of a Node runtime for each set. */
async function nodeGreedy(rt: Runtime, maxTokens = GREEDY.maxTokens): Promise<string[]> {
  const s = rt.session();
  const out: string[] = [];
  for (const set of SETS) {
    await s.setAdapters(set);
    out.push((await s.complete(PROMPT, { ...GREEDY, maxTokens })).text);
  }
  await s.dispose();
  return out;
}

describe.skipIf("reason" in chromium)("lora-edge/web in headless Chromium", () => {
  let server: PageServer;
  let browser: Browser;
  let isolated: Page;
  let wasm: Runtime;
  let native: Runtime;

  beforeAll(async () => {
    server = await startPageServer({ folders: { "/fixtures/": FIXTURES } });
    browser = await launchChromium((chromium as { path: string }).path);
    isolated = await openDemo(browser, server.url);
    wasm = await Runtime.open({ model: BASE, backend: "wasm", threads: 1, contextSize: 256 });
    native = await Runtime.open({ model: BASE, backend: "native", gpu: false, threads: 1, contextSize: 256 });
    for (const rt of [wasm, native]) {
      await rt.adapters.load("A", A);
      await rt.adapters.load("B", B);
    }
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await wasm?.dispose();
    await native?.dispose();
  });

  it("gives the Node wasm engine's and llama.cpp's greedy text for the base, A, B and 0.5 A + 0.5 B, on threads", async () => {
    const page = await pageGreedy(isolated, 2);
    expect(page.mode).toBe("workers");
    expect(page.threads).toBe(2);
    const w = await nodeGreedy(wasm);
    const n = await nodeGreedy(native);
    expect(new Set(n).size).toBe(4); // the four sets write four different texts
    for (let i = 0; i < SETS.length; i++) {
      expect(page.texts[i], JSON.stringify(SETS[i])).toBe(w[i]);
      expect(page.texts[i], JSON.stringify(SETS[i])).toBe(n[i]);
    }
  });

  it("runs on one thread in a page that is not cross-origin isolated, with the same text", async () => {
    const plain = await openDemo(browser, server.plainUrl);
    try {
      expect(await plain.evaluate("crossOriginIsolated")).toBe(false);
      expect(await plain.evaluate("window.demo.state.threadsMode")).toBe("single");
      const single = await pageGreedy(plain, 2);
      expect(single.mode).toBe("single");
      expect(single.threads).toBe(1);
      expect(single.texts).toEqual(await nodeGreedy(native));
    } finally {
      await plain.close();
    }
  });

  it("swaps and rescales live during a generation exactly as the Node engine does", async () => {
    const steps: Record<string, number>[] = [{ B: 1 }, { A: 0.25, B: 0.75 }];
    const r = await inPage<{ tokens: number[]; adapterChanges: number; adapters: Record<string, number>; finishReason: string; pieces: number; swaps: number; swapMs: number }>(isolated, `
      const rt = await web.Runtime.open({ model: "/gguf/stories260K.gguf", threads: 2, contextSize: 256 });
      await rt.adapters.load("A", "/gguf/stories260K-demo-a.gguf");
      await rt.adapters.load("B", "/gguf/stories260K-demo-b.gguf");
      const s = rt.session({ adapters: { A: 1 } });
      const g = s.generate(${JSON.stringify(PROMPT)}, { maxTokens: 160, temperature: 0 });
      const steps = ${JSON.stringify(steps)};
      let pieces = 0;
      for await (const piece of g) {
        pieces++;
        if (pieces === 6) await s.setAdapters(steps[0]);
        if (pieces === 40) await s.setAdapters(steps[1]);
      }
      const res = await g.result;
      const st = await rt.stats();
      await rt.dispose();
      return { ...res, pieces, swaps: st.swaps.live, swapMs: st.swaps.p50Ms };
    `);
    expect(r.adapterChanges).toBe(2);
    expect(r.adapters).toEqual(steps[1]);
    expect(r.swaps).toBeGreaterThanOrEqual(2);
    expect(r.tokens.length).toBeGreaterThan(40);

    // The Node engine, given the same tokens so far, continues each segment the way the page did: the text is
    // A's greedy text up to the first change, then the new set's greedy continuation of prompt and text so far.
    const prompt = wasm.backend.tokenize(PROMPT, true);
    const sets: Record<string, number>[] = [{ A: 1 }, ...steps];
    const s = wasm.session();
    const greedyFrom = async (set: Record<string, number>, done: number): Promise<number[]> => {
      await s.setAdapters(set);
      return (await s.complete([...prompt, ...r.tokens.slice(0, done)], { maxTokens: 160 - done, temperature: 0, reuseCache: false })).tokens;
    };
    const explain = async (i: number, at: number): Promise<number[] | null> => {
      const g = await greedyFrom(sets[i], at);
      let same = 0;
      while (same < g.length && at + same < r.tokens.length && g[same] === r.tokens[at + same]) same++;
      if (i === sets.length - 1) return same === g.length && at + same === r.tokens.length ? [] : null;
      for (let k = at + same; k >= at; k--) {
        const rest = await explain(i + 1, k);
        if (rest) return [k, ...rest];
      }
      return null;
    };
    const cuts = await explain(0, 0);
    await s.dispose();
    expect(cuts, "the page's tokens are the Node engine's, segment by segment").not.toBeNull();
    expect(cuts![0]).toBeGreaterThan(0); // the first change came during the generation, after some tokens under A
    expect(cuts![1]).toBeLessThan(r.tokens.length); // and the second before its end
  });

  it("applies an aLoRA adapter from its invocation on, as the Node engine does", async () => {
    const prompts = ["Once upon a time, there was a little girl named Lily. One day, she", "Once upon a time, there was a little girl named Lily. She"];
    const inPageTexts = await inPage<string[]>(isolated, `
      const rt = await web.Runtime.open({ model: "/gguf/stories260K.gguf", threads: 2, contextSize: 256 });
      const info = await rt.adapters.load("T", "/fixtures/adapters/${ALORA_TEST_ADAPTER.file}");
      if (!info.aloraInvocationTokens || info.aloraInvocationTokens.length === 0) throw new Error("no invocation tokens");
      const s = rt.session({ adapters: { T: 1 } });
      const out = [];
      for (const p of ${JSON.stringify(prompts)}) out.push((await s.complete(p, { maxTokens: 16, temperature: 0 })).text);
      await rt.dispose();
      return out;
    `);
    await wasm.adapters.load("T", fixture(`adapters/${ALORA_TEST_ADAPTER.file}`));
    const s = wasm.session({ adapters: { T: 1 } });
    const node: string[] = [];
    for (const p of prompts) node.push((await s.complete(p, { maxTokens: 16, temperature: 0 })).text);
    await s.dispose();
    await wasm.adapters.unload("T");
    expect(inPageTexts).toEqual(node);
  });

  it("shows a damaged and a mismatched file as an error naming the file and the field; the page goes on working", async () => {
    const dir = scratchDir();
    const truncated = path.join(dir, "truncated-adapter.gguf");
    const bytes = readFileSync(B);
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const page = isolated;
    const before = (await page.evaluate("window.demo.generate()")) as string;
    const input = (await page.$("#file-adapters"))!;

    await input.uploadFile(truncated);
    await page.waitForFunction("window.demo.state.error !== ''", { timeout: 30_000 });
    const damaged = (await page.$eval("#error", (e) => (e as unknown as { textContent: string }).textContent)) as string;
    expect(damaged).toContain("GgufError");
    expect(damaged).toContain("truncated-adapter.gguf");
    expect(damaged).toMatch(/: [\w.[\]]+ at byte \d+: /); // the field and its offset

    await page.evaluate("window.demo.state.error = ''");
    await input.uploadFile(fixture("models/stories260K-Q4_0.gguf"));
    await page.waitForFunction("window.demo.state.error !== ''", { timeout: 30_000 });
    const mismatched = (await page.evaluate("window.demo.state.error")) as string;
    expect(mismatched).toContain("AdapterMismatchError");
    expect(mismatched).toContain("stories260K-Q4_0.gguf");
    expect(mismatched).toContain("general.type");

    // a damaged base dropped on the page: refused, and the model loaded before stays in use
    await page.evaluate("window.demo.state.error = ''");
    await (await page.$("#file-base"))!.uploadFile(truncated);
    await page.waitForFunction("window.demo.state.error !== ''", { timeout: 30_000 });
    expect(await page.evaluate("window.demo.state.error")).toContain("truncated-adapter.gguf");

    expect(await page.evaluate("Object.keys(window.demo.state.adapters)")).toEqual(["A", "B"]);
    expect(await page.evaluate("window.demo.generate()")).toBe(before);
  });

  it("takes an adapter dropped on the page: checked, loaded, given a slider, applied live", async () => {
    const page = isolated;
    await page.evaluate(`(async () => {
      const bytes = await (await fetch("/gguf/stories260K-demo-b.gguf")).arrayBuffer();
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "dropped b.gguf"));
      document.getElementById("drop-adapters").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    })()`);
    await page.waitForFunction("'dropped_b' in window.demo.state.adapters", { timeout: 30_000 });
    expect(await page.$$eval("#sliders input[type=range]", (els) => els.length)).toBe(3);
    await page.evaluate("window.demo.setScale('dropped_b', 1)");
    const viaDrop = (await page.evaluate("window.demo.generate()")) as string;
    await page.evaluate("window.demo.setScale('dropped_b', 0)");
    expect(viaDrop).toBe((await nodeGreedy(native, 200))[2]);
  });

  it("saves a screenshot of the demo after a live swap", async () => {
    const page = isolated;
    await page.evaluate("window.demo.state.error = ''; document.getElementById('error').classList.remove('shown')");
    const running = page.evaluate("window.demo.generate()");
    await page.waitForFunction("window.demo.state.text.length > 20", { timeout: 30_000 });
    await page.evaluate("window.demo.setScale('A', 1)");
    await running;
    await page.evaluate("new Promise((r) => setTimeout(r, 100))");
    const state = (await page.evaluate("window.demo.state")) as { swaps: number; adapters: Record<string, number> };
    expect(state.swaps).toBeGreaterThanOrEqual(1);
    expect(state.adapters.A).toBe(1);
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, "demo-after-swap.png");
    await page.screenshot({ path: file as `${string}.png`, fullPage: true });
    expect(readFileSync(file).subarray(1, 4).toString()).toBe("PNG");
    expect(statSync(file).size).toBeGreaterThan(10_000);
  });
});
