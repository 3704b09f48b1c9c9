// Entry of the engine worker: serves the page's web runtime over messages (the engine computes here, off the page's thread).
import type { Generation } from "../runtime/generation.js";
import type { Session } from "../runtime/session.js";
import { setWasmBase } from "../backends/wasm/host-web.js";
import { WebEngine, type EngineOpenOptions } from "./engine.js";
import { errorData, type GenerationEvent, type Reply, type Request } from "./protocol.js";
import type { WebSource } from "./sources.js";

interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (ev: { data: Request }) => void): void;
}
const scope = globalThis as unknown as WorkerScope;

let engine: WebEngine | undefined;
const sessions = new Map<number, Session>();
const generations = new Map<number, Generation>();

function need(): WebEngine {
  if (!engine) throw new Error("no model is open");
  return engine;
}

function session(id: unknown): Session {
  const s = sessions.get(id as number);
  if (!s) throw new Error(`no session ${String(id)}`);
  return s;
}

async function handle(op: Request["op"], a: Record<string, unknown>): Promise<unknown> {
  switch (op) {
    case "open":
      if (engine) throw new Error("a model is open already");
      if (typeof a.wasmBase === "string") setWasmBase(a.wasmBase);
      engine = await WebEngine.open(a as unknown as EngineOpenOptions);
      return engine.stats();
    case "loadAdapter":
      return need().loadAdapter(a.name as string, a.source as WebSource, { scale: a.scale as number | undefined, fileName: a.fileName as string | undefined });
    case "unloadAdapter":
      return need().unloadAdapter(a.name as string);
    case "listAdapters":
      return need().listAdapters();
    case "session": {
      const s = need().session(a.options as object);
      sessions.set(a.sid as number, s);
      return undefined;
    }
    case "setAdapters":
      return session(a.sid).setAdapters(a.adapters as Record<string, number>);
    case "generate": {
      const gen = a.gen as number;
      const g = session(a.sid).generate(a.prompt as string | number[], a.options as object);
      generations.set(gen, g);
      void stream(gen, g);
      return undefined;
    }
    case "abort":
      generations.get(a.gen as number)?.abort();
      return undefined;
    case "closeSession": {
      const s = sessions.get(a.sid as number);
      sessions.delete(a.sid as number);
      return s?.dispose();
    }
    case "stats":
      return need().stats();
    case "dispose": {
      const e = engine;
      engine = undefined;
      sessions.clear();
      return e?.dispose();
    }
  }
}

async function stream(gen: number, g: Generation): Promise<void> {
  const post = (m: GenerationEvent) => scope.postMessage(m);
  try {
    for await (const piece of g) post({ gen, piece });
    post({ gen, result: await g.result });
  } catch (e) {
    post({ gen, error: errorData(e) });
  } finally {
    generations.delete(gen);
  }
}

scope.addEventListener("message", (ev) => {
  const { id, op, args } = ev.data;
  handle(op, args).then(
    (value) => scope.postMessage({ id, ok: true, value } satisfies Reply),
    (e) => scope.postMessage({ id, ok: false, error: errorData(e) } satisfies Reply),
  );
});
