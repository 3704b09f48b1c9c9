// Randomised consistency check: seeded interleavings of load, unload, swap, rescale and generate over sessions.
import { adapterSetKey, normalizeAdapterSet } from "../src/runtime/adapter-set.js";
import type { Runtime } from "../src/runtime/runtime.js";
import type { GenerateOptions, Session } from "../src/runtime/session.js";
import { mulberry32 } from "../src/random.js";

export interface TortureOptions {
  /** Adapter files the names are loaded from. */
  files: readonly string[];
  operations: number;
  seed: number;
  sessions?: number;
  /** Tokens per generation (default 4). */
  maxTokens?: number;
  /** Called every `progressEvery` operations. */
  onProgress?: (done: number) => void;
  progressEvery?: number;
}

export interface TortureReport {
  operations: number;
  counts: Record<string, number>;
  /** Generations compared with a fresh context's output for the same adapter set. */
  checked: number;
  mismatches: { op: number; set: string; prompt: string; got: string; expected: string }[];
  referenceContexts: number;
  ms: number;
}


const NAMES = ["a", "b", "c", "d"];
const SCALES = [1, 0.5, -0.75, 0, 2];
const PROMPTS = ["Once upon a time", "The cat", "Lily and Tom went to the park", "One day"];

/**
 * Runs `operations` random operations. Every generation must equal (token for token) what a freshly
 * created session with the same adapters (by file and scale) generates.
 */
export async function runTorture(rt: Runtime, o: TortureOptions): Promise<TortureReport> {
  const t0 = performance.now();
  const rnd = mulberry32(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const loaded = new Map<string, string>(); // name -> file
  const sessions: Session[] = [];
  for (let i = 0; i < (o.sessions ?? 3); i++) sessions.push(rt.session());
  const counts: Record<string, number> = {};
  const mismatches: TortureReport["mismatches"] = [];
  const reference = new Map<string, string>();
  let checked = 0;
  let referenceContexts = 0;
  const maxTokens = o.maxTokens ?? 4;

  // The adapter set by file: what llama.cpp actually computes with.
  const fileKey = (s: Session): string => {
    const byFile = new Map<string, number>();
    for (const [name, scale] of Object.entries(s.adapters)) {
      const f = loaded.get(name)!;
      byFile.set(f, (byFile.get(f) ?? 0) + scale);
    }
    return [...byFile].filter(([, sc]) => sc !== 0).sort().map(([f, sc]) => `${f}=${sc}`).join(",");
  };

  const expected = async (s: Session, prompt: string, g: GenerateOptions): Promise<string> => {
    const key = `${fileKey(s)}|${prompt}|${g.temperature ?? 0}|${g.seed ?? 0}`;
    let text = reference.get(key);
    if (text === undefined) {
      const fresh = rt.session({ adapters: s.adapters });
      text = (await fresh.complete(prompt, g)).tokens.join(" ");
      await fresh.dispose();
      referenceContexts++;
      reference.set(key, text);
    }
    return text;
  };

  const generate = async (i: number, s: Session) => {
    const prompt = pick(PROMPTS);
    const g: GenerateOptions = rnd() < 0.5 ? { maxTokens } : { maxTokens, temperature: 0.9, seed: Math.floor(rnd() * 3) };
    const set = adapterSetKey(normalizeAdapterSet(s.adapters, () => 1));
    const got = (await s.complete(prompt, g)).tokens.join(" ");
    const want = await expected(s, prompt, g);
    checked++;
    if (got !== want) mismatches.push({ op: i, set, prompt, got, expected: want });
  };

  const randomSet = (): Record<string, number> => {
    const set: Record<string, number> = {};
    for (const n of loaded.keys()) if (rnd() < 0.45) set[n] = pick(SCALES);
    return set;
  };

  try {
    for (let i = 0; i < o.operations; i++) {
      const r = rnd();
      const s = pick(sessions);
      let op: string;
      if (r < 0.12) {
        op = "load";
        const free = NAMES.filter((n) => !loaded.has(n));
        if (free.length === 0) op = "load(skip)";
        else {
          const name = pick(free);
          const file = pick(o.files);
          await rt.adapters.load(name, file);
          loaded.set(name, file);
        }
      } else if (r < 0.2) {
        op = "unload";
        if (loaded.size === 0) op = "unload(skip)";
        else {
          const name = pick([...loaded.keys()]);
          // unload while a generation may be running on a session using it
          const running = rnd() < 0.5 ? s.complete(pick(PROMPTS), { maxTokens }) : undefined;
          await rt.adapters.unload(name);
          loaded.delete(name);
          await running;
          for (const x of sessions) if (name in x.adapters) throw new Error(`op ${i}: ${name} still attached after unload`);
        }
      } else if (r < 0.4) {
        op = "swap";
        await s.setAdapters(randomSet());
      } else if (r < 0.5) {
        op = "rescale";
        const set = { ...s.adapters };
        for (const n of Object.keys(set)) set[n] = pick(SCALES);
        await s.setAdapters(set);
      } else if (r < 0.9) {
        op = "generate";
        await generate(i, s);
      } else {
        op = "generate-parallel";
        await Promise.all(sessions.map((x) => generate(i, x)));
      }
      counts[op] = (counts[op] ?? 0) + 1;
      if (o.onProgress && (i + 1) % (o.progressEvery ?? 1000) === 0) o.onProgress(i + 1);
    }
  } finally {
    for (const s of sessions) await s.dispose();
    for (const n of loaded.keys()) await rt.adapters.unload(n);
  }
  return { operations: o.operations, counts, checked, mismatches, referenceContexts, ms: performance.now() - t0 };
}
