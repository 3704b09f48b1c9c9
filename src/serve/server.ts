// createServer: the OpenAI-compatible HTTP face of a runtime (node:http), routes, authentication and limits.
import fs from "node:fs";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import { InvalidArgumentError } from "../errors.js";
import type { Runtime } from "../runtime/runtime.js";
import type { Scheduler } from "../runtime/scheduler.js";
import { AdapterTable } from "./adapter-table.js";
import { bearerMatches, isLoopback } from "./auth.js";
import { answerError, handleCompletion, type CompletionContext } from "./completions.js";
import { HttpError, badField, toHttpError } from "./errors.js";
import { readJson, readJsonObject, sendJson, sendText } from "./http.js";
import { metricsText } from "./metrics.js";

export interface ServeOptions {
  /** Address to listen on (default 127.0.0.1). Any other than loopback needs `apiKey`. */
  host?: string;
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
  /** Bearer token every request must carry (except GET /health). */
  apiKey?: string;
  /** Requests decoded at once (default 4). */
  parallel?: number;
  /** Requests that may wait beyond those (default 64); more get 503 with Retry-After. */
  queue?: number;
  /** Tokens each request may hold, prompt and reply (default: the runtime's context size). */
  contextSize?: number;
  /** Enables POST /v1/load_lora_adapter and /v1/unload_lora_adapter for files inside this folder only. */
  adapterDir?: string;
  /** Largest request body, bytes (default 1 MiB). */
  bodyLimit?: number;
  /** The base's name in `model` (default: the model file's name without .gguf). */
  modelName?: string;
}

export interface ListenAddress {
  host: string;
  port: number;
  url: string;
}

const DEFAULT_BODY_LIMIT = 1 << 20;

/** An OpenAI-compatible server over one runtime. `handler` serves an app's own http.Server too. */
export class LoraEdgeServer {
  readonly scheduler: Scheduler;
  readonly modelName: string;
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  private readonly table: AdapterTable;
  private readonly inflight = new Set<AbortController>();
  /** Connections that have not sent their first request yet, with what ends their count as arriving. */
  private readonly connecting = new WeakMap<Socket, () => void>();
  private readonly adapterDir: string | null;
  private readonly bodyLimit: number;
  private readonly created = Math.floor(Date.now() / 1000);
  private server: http.Server | null = null;
  private closed = false;

  constructor(
    private readonly rt: Runtime,
    private readonly options: ServeOptions = {},
  ) {
    const host = options.host ?? "127.0.0.1";
    if (typeof options.apiKey === "string" && options.apiKey.length === 0) throw new InvalidArgumentError("apiKey must not be empty");
    if (!isLoopback(host) && !options.apiKey) {
      throw new InvalidArgumentError(`refusing to listen on ${host} without an API key: anyone who can reach it could use the model (give an API key, or keep the default 127.0.0.1)`);
    }
    this.bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    if (!Number.isInteger(this.bodyLimit) || this.bodyLimit < 1024) throw new InvalidArgumentError("bodyLimit must be a whole number >= 1024");
    this.adapterDir = options.adapterDir === undefined ? null : realDir(options.adapterDir);
    this.modelName = options.modelName ?? path.basename(rt.modelPath).replace(/\.gguf$/i, "");
    if (this.modelName.length === 0 || this.modelName.includes(":")) throw new InvalidArgumentError(`modelName "${this.modelName}" must be non-empty, without ":"`);
    this.scheduler = rt.scheduler({ slots: options.parallel ?? 4, queue: options.queue ?? 64, contextSize: options.contextSize });
    this.table = new AdapterTable(rt, this.modelName);
    this.handler = (req, res) => {
      this.connecting.get(req.socket)?.();
      this.connecting.delete(req.socket);
      void this.handle(req, res);
    };
  }

  /**
   * Create the serving context (a context that does not fit fails here, not on the first request), then
   * listen on the configured host and port; resolves with the address (a port of 0 is resolved).
   */
  async listen(): Promise<ListenAddress> {
    if (this.closed) throw new InvalidArgumentError("the server is closed");
    await this.scheduler.ready();
    const host = this.options.host ?? "127.0.0.1";
    const server = http.createServer({ requestTimeout: 300_000, headersTimeout: 30_000 }, this.handler);
    // a new connection usually brings a request: until it does, a step about to start a prompt may wait for it
    server.on("connection", (socket: Socket) => {
      const done = this.scheduler.receiving();
      this.connecting.set(socket, done);
      socket.once("close", done);
    });
    server.on("clientError", (_e, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      else socket.destroy();
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 8080, host, () => {
        server.off("error", reject);
        const a = server.address() as AddressInfo;
        const shown = a.family === "IPv6" ? `[${a.address}]` : a.address;
        resolve({ host: a.address, port: a.port, url: `http://${shown}:${a.port}` });
      });
    });
  }

  /** Stop listening, end running and waiting requests, free the scheduler (the runtime stays open). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.inflight) a.abort();
    const server = this.server;
    if (server) {
      const done = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await done;
    }
    await this.scheduler.dispose();
  }

  private get completionContext(): CompletionContext {
    return { rt: this.rt, scheduler: this.scheduler, table: this.table, inflight: this.inflight };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? "/", "http://localhost");
      } catch {
        throw new HttpError(400, "the request target is not a valid URL", null, "bad_url");
      }
      const route = `${req.method} ${url.pathname.replace(/\/+$/, "") || "/"}`;
      if (route === "GET /health") return sendJson(res, 200, { status: "ok" });
      if (this.options.apiKey !== undefined && !bearerMatches(req.headers.authorization, this.options.apiKey)) {
        throw new HttpError(401, "a valid API key is needed: send Authorization: Bearer <key>", null, "invalid_api_key", { "WWW-Authenticate": "Bearer" });
      }
      if (this.closed) throw new HttpError(503, "the server is shutting down", null, "shutting_down");
      switch (route) {
        case "POST /v1/chat/completions":
          return await handleCompletion("chat", await this.receive(req), res, this.completionContext);
        case "POST /v1/completions":
          return await handleCompletion("completion", await this.receive(req), res, this.completionContext);
        case "GET /v1/models":
          return sendJson(res, 200, this.models());
        case "POST /v1/load_lora_adapter":
          return await this.loadAdapter(await readJsonObject(req, this.bodyLimit), res);
        case "POST /v1/unload_lora_adapter":
          return await this.unloadAdapter(await readJsonObject(req, this.bodyLimit), res);
        case "GET /lora-adapters":
          return sendJson(res, 200, this.loraAdapters());
        case "POST /lora-adapters":
          return this.setLoraAdapters(await readJson(req, this.bodyLimit), res);
        case "GET /metrics":
          return sendText(res, 200, metricsText(this.scheduler.stats()), "text/plain; version=0.0.4; charset=utf-8");
      }
      const known = ["/health", "/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/lora-adapters", "/metrics"];
      if (known.includes(url.pathname.replace(/\/+$/, ""))) throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}`, null, "method_not_allowed");
      throw new HttpError(404, `no route ${url.pathname}`, null, "not_found");
    } catch (e) {
      answerError(res, e);
    }
  }

  /** A completion's body; the scheduler knows a request is on its way while it is read. */
  private async receive(req: IncomingMessage): Promise<Record<string, unknown>> {
    const done = this.scheduler.receiving();
    try {
      return await readJsonObject(req, this.bodyLimit);
    } finally {
      done();
    }
  }

  private models(): unknown {
    const base = { id: this.modelName, object: "model", created: this.created, owned_by: "lora-edge", root: this.rt.modelPath, parent: null, max_model_len: this.scheduler.contextSize };
    const adapters = this.table.list().map((a) => ({ id: a.name, object: "model", created: this.created, owned_by: "lora-edge", root: a.path, parent: this.modelName, max_model_len: this.scheduler.contextSize }));
    return { object: "list", data: [base, ...adapters] };
  }

  private loraAdapters(): unknown {
    return this.table.list().map((a) => ({ id: a.id, path: a.path, scale: a.globalScale }));
  }

  private setLoraAdapters(body: unknown, res: ServerResponse): void {
    if (!Array.isArray(body)) throw badField("body", "the body must be an array of { id, scale }");
    const entries = body.map((e, i) => {
      const o = e as { id?: unknown; scale?: unknown } | null;
      if (!o || typeof o !== "object" || typeof o.id !== "number" || !Number.isInteger(o.id)) throw badField(`[${i}].id`, `[${i}].id must be a whole number`);
      if (typeof o.scale !== "number" || !Number.isFinite(o.scale) || Math.abs(o.scale) > 1000) throw badField(`[${i}].scale`, `[${i}].scale must be a number from -1000 to 1000`);
      return { id: o.id, scale: o.scale };
    });
    this.table.setGlobalScales(entries);
    sendJson(res, 200, { success: true });
  }

  /** The file a load request names, confined to the adapter folder after resolving `..` and symlinks. */
  private confinedPath(given: string): string {
    const dir = this.adapterDir!;
    const inside = (p: string) => p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
    const lexical = path.resolve(dir, given);
    const outside = () => new HttpError(403, `lora_path must name a file inside the adapter folder`, "lora_path", "forbidden_path");
    if (!inside(lexical)) throw outside();
    let real: string;
    try {
      real = fs.realpathSync(lexical);
    } catch {
      throw new HttpError(404, `lora_path names no file in the adapter folder`, "lora_path", "not_found");
    }
    if (!inside(real)) throw outside();
    return real;
  }

  private async loadAdapter(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    if (!this.adapterDir) throw new HttpError(403, "loading adapters over HTTP is off: start the server with --adapter-dir DIR", null, "adapter_loading_disabled");
    const { lora_name: name, lora_path: file } = body;
    for (const k of Object.keys(body)) if (k !== "lora_name" && k !== "lora_path") throw badField(k, `unknown field "${k}"`);
    if (typeof name !== "string" || name.length === 0 || name.length > 128) throw badField("lora_name", "lora_name must be a non-empty string of at most 128 characters");
    if (name === this.modelName) throw badField("lora_name", `lora_name "${name}" is the base model's name`);
    if (typeof file !== "string" || file.length === 0 || file.length > 4096 || file.includes("\0")) throw badField("lora_path", "lora_path must be a path");
    const real = this.confinedPath(file);
    if (this.rt.adapters.has(name)) throw badField("lora_name", `an adapter named "${name}" is already loaded`);
    try {
      await this.rt.adapters.load(name, real);
    } catch (e) {
      const err = toHttpError(e, "lora_path");
      throw err.code === "model_not_found" ? badField("lora_name", (e as Error).message) : err;
    }
    this.table.sync();
    sendText(res, 200, `Success: LoRA adapter '${name}' added successfully.`);
  }

  private async unloadAdapter(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    if (!this.adapterDir) throw new HttpError(403, "unloading adapters over HTTP is off: start the server with --adapter-dir DIR", null, "adapter_loading_disabled");
    for (const k of Object.keys(body)) if (k !== "lora_name" && k !== "lora_int_id") throw badField(k, `unknown field "${k}"`);
    const name = body.lora_name;
    if (typeof name !== "string" || name.length === 0) throw badField("lora_name", "lora_name must be a non-empty string");
    if (!this.rt.adapters.has(name)) throw new HttpError(404, `no adapter named "${name}" is loaded`, "lora_name", "not_found");
    await this.rt.adapters.unload(name);
    this.table.sync();
    sendText(res, 200, `Success: LoRA adapter '${name}' removed successfully.`);
  }
}

function realDir(dir: string): string {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    throw new InvalidArgumentError(`adapter folder ${dir} does not exist`);
  }
  if (!fs.statSync(real).isDirectory()) throw new InvalidArgumentError(`adapter folder ${dir} is not a folder`);
  return real;
}

/** An OpenAI-compatible server over `runtime` (call `listen()`, or mount `handler` in an app's own server). */
export function createServer(runtime: Runtime, options: ServeOptions = {}): LoraEdgeServer {
  return new LoraEdgeServer(runtime, options);
}
