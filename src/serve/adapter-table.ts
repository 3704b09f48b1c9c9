// The server's view of adapters: stable ids in load order (llama-server), global scales, and every request dialect.
import type { Runtime } from "../runtime/runtime.js";
import { HttpError, badField } from "./errors.js";

/** How a request names its adapters, in any of the dialects the server accepts. */
export interface AdapterChoice {
  /** OpenAI `model`: the base's name, an adapter's name (vLLM) or "base:adapter" (SGLang). */
  model: string | undefined;
  /** lora-edge: { name: scale }. */
  adapters: Record<string, number> | undefined;
  /** llama-server: [{ id, scale }], ids in load order. */
  lora: { id: number; scale: number }[] | undefined;
}

const notFound = (param: string, message: string) => new HttpError(404, message, param, "model_not_found");

export class AdapterTable {
  private readonly ids = new Map<string, number>();
  private nextId = 0;
  private readonly globalScales = new Map<string, number>();

  constructor(
    private readonly rt: Runtime,
    readonly modelName: string,
  ) {
    this.sync();
  }

  /** Follow the runtime's registry: names loaded elsewhere get the next ids, unloaded ones lose theirs. */
  sync(): void {
    const loaded = new Set(this.rt.adapters.list().map((a) => a.name));
    for (const name of [...this.ids.keys()]) {
      if (!loaded.has(name)) {
        this.ids.delete(name);
        this.globalScales.delete(name);
      }
    }
    for (const name of loaded) if (!this.ids.has(name)) this.ids.set(name, this.nextId++);
  }

  /** Adapters with id, path, default scale and global scale, in id order. */
  list(): { id: number; name: string; path: string; scale: number; globalScale: number }[] {
    this.sync();
    return this.rt.adapters
      .list()
      .map((a) => ({ id: this.ids.get(a.name)!, name: a.name, path: a.path, scale: a.scale, globalScale: this.globalScales.get(a.name) ?? 0 }))
      .sort((a, b) => a.id - b.id);
  }

  /** llama-server's POST /lora-adapters: the scales applied to requests that choose no adapters (others 0). */
  setGlobalScales(entries: readonly { id: number; scale: number }[]): void {
    const byId = new Map(this.list().map((a) => [a.id, a.name]));
    const next = new Map<string, number>();
    entries.forEach((e, i) => {
      const name = byId.get(e.id);
      if (name === undefined) throw notFound(`[${i}].id`, `no adapter has id ${e.id}`);
      next.set(name, e.scale);
    });
    this.globalScales.clear();
    for (const [k, v] of next) this.globalScales.set(k, v);
  }

  /** The adapter set a request asks for; 404 for unknown names or ids, 400 for conflicting dialects. */
  resolve(c: AdapterChoice): Record<string, number> {
    this.sync();
    let named: string | null = null;
    if (c.model !== undefined && c.model !== this.modelName) {
      const i = c.model.lastIndexOf(":");
      if (i >= 0) {
        if (c.model.slice(0, i) !== this.modelName) throw notFound("model", `the model "${c.model}" does not exist: this server serves "${this.modelName}"`);
        named = c.model.slice(i + 1);
      } else named = c.model;
      if (!this.ids.has(named)) throw notFound("model", `the model "${c.model}" does not exist: neither the base "${this.modelName}" nor a loaded adapter`);
    }
    if (c.adapters && c.lora) throw badField("lora", "choose adapters with one of adapters or lora, not both");
    if (named !== null && (c.adapters || c.lora)) throw badField(c.adapters ? "adapters" : "lora", `model already names the adapter "${named}"`);
    if (named !== null) return { [named]: this.rt.adapters.get(named)!.scale };
    if (c.adapters) {
      for (const name of Object.keys(c.adapters)) if (!this.ids.has(name)) throw notFound(`adapters.${name}`, `no adapter named "${name}" is loaded`);
      return { ...c.adapters };
    }
    if (c.lora) {
      const byId = new Map([...this.ids].map(([n, id]) => [id, n]));
      const set: Record<string, number> = {};
      c.lora.forEach((e, i) => {
        const name = byId.get(e.id);
        if (name === undefined) throw notFound(`lora[${i}].id`, `no adapter has id ${e.id}`);
        set[name] = (set[name] ?? 0) + e.scale;
      });
      return set;
    }
    return Object.fromEntries([...this.globalScales].filter(([, s]) => s !== 0));
  }
}
