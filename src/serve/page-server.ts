// Serves the web bundle and model files on 127.0.0.1, cross-origin isolated (COOP/COEP) so the page may use threads.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { packageRoot } from "../paths.js";

export interface PageServerOptions {
  /** Port (default 0: any free port). */
  port?: number;
  /** Interface (default 127.0.0.1). */
  host?: string;
  /** URL prefix -> folder, served besides build/web/ at "/" and the package's gguf/ at "/gguf/". */
  folders?: Record<string, string>;
}

export interface PageServer {
  /** e.g. http://127.0.0.1:8080/ : cross-origin isolated (threads). */
  url: string;
  /** The same files without the isolation headers (one thread): `${url}plain/`. */
  plainUrl: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json", ".wasm": "application/wasm", ".gguf": "application/octet-stream", ".json": "application/json",
  ".png": "image/png", ".css": "text/css",
};

/** The headers a page needs for SharedArrayBuffer (and so for the engine's Web Worker threads). */
export const ISOLATION_HEADERS = Object.freeze({
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
});

export function startPageServer(o: PageServerOptions = {}): Promise<PageServer> {
  const root = packageRoot();
  const web = path.join(root, "build", "web");
  if (!fs.existsSync(path.join(web, "lora-edge.js"))) throw new Error(`the web bundle is not built (no ${web}/lora-edge.js); run npm run build`);
  const folders: [string, string][] = Object.entries({ "/gguf/": path.join(root, "gguf"), ...o.folders, "/": web })
    .sort((a, b) => b[0].length - a[0].length);

  const server = http.createServer((req, res) => {
    let url = decodeURIComponent((req.url ?? "/").split("?")[0]);
    const plain = url === "/plain" || url.startsWith("/plain/");
    if (plain) url = url.slice("/plain".length) || "/";
    const headers: Record<string, string> = { "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store", ...(plain ? {} : ISOLATION_HEADERS) };
    const hit = folders.find(([prefix]) => url.startsWith(prefix));
    let file = hit ? path.join(hit[1], url.slice(hit[0].length)) : "";
    if (file && url.endsWith("/")) file = path.join(file, "index.html");
    if (!hit || !file.startsWith(hit[1]) || !fs.existsSync(file) || !fs.statSync(file).isFile() || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { ...headers, "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream", "Content-Length": fs.statSync(file).size });
    if (req.method === "HEAD") res.end();
    else fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, o.host ?? "127.0.0.1", () => {
      const a = server.address() as { port: number; address: string };
      const url = `http://${o.host ?? "127.0.0.1"}:${a.port}/`;
      resolve({
        url,
        plainUrl: `${url}plain/`,
        close: () => new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}
