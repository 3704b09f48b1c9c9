// Helpers of the server tests: a runtime with the demo adapters behind a server on an ephemeral loopback port, raw requests.
import net from "node:net";
import { Runtime, demoAdapterPaths, type RuntimeOptions } from "../../src/runtime/index.js";
import { createServer, type LoraEdgeServer, type ServeOptions } from "../../src/serve/index.js";
import { MODEL } from "../runtime/helpers.js";

export const DEMO = demoAdapterPaths();

export interface TestServer {
  rt: Runtime;
  server: LoraEdgeServer;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** stories260K with demo adapters A and B (ids 0 and 1), served on 127.0.0.1 with a free port. */
export async function startServer(o: { runtime?: RuntimeOptions; serve?: ServeOptions; adapters?: boolean } = {}): Promise<TestServer> {
  const rt = await Runtime.open({ model: MODEL, gpu: false, threads: 1, contextSize: 256, ...o.runtime });
  if (o.adapters ?? true) {
    await rt.adapters.load("A", DEMO.a);
    await rt.adapters.load("B", DEMO.b);
  }
  const server = createServer(rt, { port: 0, ...o.serve });
  const { url, port } = await server.listen();
  return {
    rt,
    server,
    url,
    port,
    async close() {
      await server.close();
      await rt.dispose();
    },
  };
}

/** POST a JSON body (or raw text) and read status, headers and body. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, text, json };
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; json: any }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, text, json };
}

/** Sends raw bytes on a fresh connection; resolves with the status code of the answer (0 when the server closed without one). */
export function rawRequest(port: number, bytes: string | Buffer, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      resolve(m ? Number(m[1]) : 0);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on("data", (d) => {
      data += d.toString("latin1");
      if (/^HTTP\/1\.[01] \d{3}/.test(data)) done();
    });
    socket.on("error", done);
    socket.on("close", done);
    socket.on("connect", () => socket.write(bytes));
  });
}

/** A greedy completion request body. */
export const completion = (prompt: string, extra: Record<string, unknown> = {}) => ({ prompt, max_tokens: 16, temperature: 0, ...extra });
