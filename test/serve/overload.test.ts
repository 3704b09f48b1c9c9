// Overload, abort and security: a full queue answers 503 with Retry-After, a disconnect frees its slot, keys and binds are checked.
import http from "node:http";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { createServer } from "../../src/serve/index.js";
import { bearerMatches, isLoopback } from "../../src/serve/auth.js";
import { completion, get, post, rawRequest, startServer } from "./helpers.js";

/** Opens a streamed completion and resolves once its first event arrives; `close()` drops the connection. */
function openStream(port: number, body: unknown): Promise<{ close(): void; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/v1/completions", method: "POST", headers: { "Content-Type": "application/json" } }, (res) => {
      res.once("data", () => resolve({ req, close: () => req.destroy() }));
      res.on("error", () => undefined);
    });
    req.on("error", (e) => (e as NodeJS.ErrnoException).code === "ECONNRESET" || reject(e));
    req.end(JSON.stringify(body));
  });
}

describe("overload and abort", () => {
  it("a full queue answers 503 with Retry-After; the server answers again once there is room", async () => {
    const t = await startServer({ serve: { parallel: 1, queue: 1 } });
    try {
      const long = completion("Once upon a time", { max_tokens: 200, ignore_eos: true });
      const running = post(`${t.url}/v1/completions`, long);
      const waiting = post(`${t.url}/v1/completions`, completion("The little dog", { max_tokens: 4 }));
      while (t.server.scheduler.stats().queued + t.server.scheduler.stats().running < 2) await new Promise((r) => setTimeout(r, 1));
      const refused = await post(`${t.url}/v1/completions`, completion("Mom said", { max_tokens: 4 }));
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(refused.json.error.code).toBe("overloaded");
      expect((await running).status).toBe(200);
      expect((await waiting).status).toBe(200);
      expect((await post(`${t.url}/v1/completions`, completion("Mom said", { max_tokens: 4 }))).status).toBe(200);
      expect((await get(`${t.url}/metrics`)).text).toMatch(/^lora_edge_requests_total\{outcome="rejected"\} 1$/m);
    } finally {
      await t.close();
    }
  });

  it("a client that disconnects frees its slot: the queued request starts before the aborted one would have ended", async () => {
    const t = await startServer({ serve: { parallel: 1, queue: 4 } });
    try {
      const sch = t.server.scheduler;
      const stream = await openStream(t.port, completion("Once upon a time", { max_tokens: 240, ignore_eos: true, stream: true }));
      const next = post(`${t.url}/v1/completions`, completion("The little dog", { max_tokens: 4 }));
      while (sch.stats().queued < 1) await new Promise((r) => setTimeout(r, 1));
      stream.close();
      const r = await next;
      expect(r.status).toBe(200);
      // the aborted request ended early: far fewer than its 240 tokens were generated in all
      const s = sch.stats();
      expect(s.counts.aborted).toBe(1);
      expect(s.counts.generatedTokens - r.json.usage.completion_tokens).toBeLessThan(240);
      expect(s.running).toBe(0);
      // a waiting request whose client leaves is dropped from the queue at once, while the running one goes on
      const hold = await openStream(t.port, completion("Once upon a time", { max_tokens: 240, ignore_eos: true, stream: true }));
      const queued = http.request({ host: "127.0.0.1", port: t.port, path: "/v1/completions", method: "POST" });
      queued.on("error", () => undefined);
      queued.end(JSON.stringify(completion("Mom said", { max_tokens: 4 })));
      while (sch.stats().queued < 1) await new Promise((r) => setTimeout(r, 1));
      queued.destroy();
      while (sch.stats().queued > 0) await new Promise((r) => setTimeout(r, 1));
      expect(sch.stats().running).toBe(1);
      expect(sch.stats().counts.aborted).toBe(2);
      hold.close();
    } finally {
      await t.close();
    }
  });

  it("refuses a non-loopback bind without an API key; checks Bearer keys; limits the body", async () => {
    const t = await startServer({ serve: { apiKey: "k3y", bodyLimit: 4096 } });
    try {
      expect(() => createServer(t.rt, { host: "0.0.0.0" })).toThrow(InvalidArgumentError);
      expect(() => createServer(t.rt, { host: "::" })).toThrow(/without an API key/);
      expect(() => createServer(t.rt, { host: "192.168.1.10" })).toThrow(InvalidArgumentError);
      for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopback(h), h).toBe(true);
      for (const h of ["0.0.0.0", "::", "10.0.0.1", "example.com", "::ffff:10.0.0.1"]) expect(isLoopback(h), h).toBe(false);
      expect(bearerMatches("Bearer k3y", "k3y")).toBe(true);
      for (const h of [undefined, "", "Bearer", "Bearer k3", "Bearer k3yy", "Basic k3y", "k3y"]) expect(bearerMatches(h, "k3y"), String(h)).toBe(false);

      const body = completion("Once upon a time", { max_tokens: 2 });
      expect((await post(`${t.url}/v1/completions`, body)).status).toBe(401);
      const wrong = await post(`${t.url}/v1/completions`, body, { Authorization: "Bearer nope" });
      expect(wrong.status).toBe(401);
      expect(wrong.json.error.code).toBe("invalid_api_key");
      expect((await get(`${t.url}/metrics`)).status).toBe(401);
      expect((await get(`${t.url}/health`)).status).toBe(200);
      const auth = { Authorization: "Bearer k3y" };
      expect((await post(`${t.url}/v1/completions`, body, auth)).status).toBe(200);
      const big = await post(`${t.url}/v1/completions`, completion("x".repeat(5000)), auth);
      expect(big.status).toBe(413);
      expect(big.json.error.code).toBe("request_too_large");
      // a body longer than its declared length never reaches the handler whole
      expect(await rawRequest(t.port, `POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: 100000\r\n\r\n{}`)).toBe(413);
    } finally {
      await t.close();
    }
  });
});
