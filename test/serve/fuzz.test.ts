// Seeded malformed bodies and header sets against a live server: never a 5xx except 503 under overload, and it still answers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../src/random.js";
import { completion, post, rawRequest, startServer, type TestServer } from "./helpers.js";

const BODY_CASES = 800;
const HEADER_CASES = 300;

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const WEIRD: unknown[] = [
  null, true, false, 0, -1, 1.5, -1e308, 1e308, 2 ** 53 + 2, "", "x", "A", "stories260K", "stories260K:A", ":", "A:B:C", "\u0000", "\ud800", "🦙".repeat(50),
  "x".repeat(3000), [], [1, 2, 3], ["a", "b"], [null], {}, { A: 1 }, { A: "1" }, { __proto__: 1 }, { constructor: 1 }, [{ id: 0, scale: 1 }], [{ id: -1, scale: 1 }],
  [{ id: 0, scale: 1e9 }], [{ role: "user", content: "hi" }], [{ role: "tool", content: "x" }], [{ role: "user", content: [{ type: "image_url" }] }],
  [{ role: "user" }], { include_usage: "yes" }, { include_usage: true, extra: 1 }, 256, 255, 251, 100000, -0.5, 2.0000001,
];
const FIELDS = ["model", "prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream", "stream_options",
  "n", "user", "ignore_eos", "adapters", "lora", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "echo", "suffix", "best_of", "tools",
  "lora_name", "lora_path", "id", "scale", "unknown_field", "__proto__", "constructor"];
const PATHS = ["/v1/completions", "/v1/chat/completions", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/lora-adapters", "/v1/models", "/metrics", "/health", "/nope", "/v1/completions/"];

function deep(n: number): string {
  return "[".repeat(n) + "]".repeat(n);
}

/** One malformed body: a valid one mutated, another JSON type, or broken JSON text. */
function body(r: Rand): string {
  const valid: Record<string, unknown> = r() < 0.5
    ? completion("Once upon a time", { max_tokens: 2, model: pick(r, ["stories260K", "A", "B"]) })
    : { model: "stories260K", messages: [{ role: "user", content: "hi" }], max_tokens: 2, temperature: 0 };
  const kind = r();
  if (kind < 0.6) {
    const o: Record<string, unknown> = { ...valid };
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
      const f = pick(r, FIELDS);
      if (r() < 0.15) delete o[f];
      else o[f] = pick(r, WEIRD);
    }
    return JSON.stringify(o);
  }
  if (kind < 0.75) return JSON.stringify(pick(r, [[], "text", 42, null, true, [valid], { lora_name: pick(r, WEIRD), lora_path: pick(r, ["../x", "/etc/passwd", "a\u0000b", 7, "x".repeat(5000)]) }]));
  if (kind < 0.9) {
    const s = JSON.stringify(valid);
    return pick(r, [s.slice(0, Math.floor(r() * s.length)), s + "}", "\ufeff" + s, s.replace(":", "="), "{'a': 1}", "// c\n" + s, deep(20000), "", "   ", "nul", "\u0000\u0001\u0002"]);
  }
  return Array.from({ length: Math.floor(r() * 200) }, () => String.fromCharCode(Math.floor(r() * 256))).join("");
}

/** One malformed request as raw bytes: odd methods, paths, lengths, encodings and headers. */
function rawCase(r: Rand): string {
  const method = pick(r, ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "BREW", "post", ""]);
  const p = pick(r, [...PATHS, "/v1/completions?x=1", "//v1//completions", "/%2e%2e/%2e%2e/etc/passwd", "*", "/" + "a".repeat(9000), "/v1/\u00ff", "http://evil/v1/models", "http://[", "//[::1", "http://a:b@/x"]);
  const b = r() < 0.7 ? body(r) : "";
  const len = Buffer.byteLength(b, "latin1");
  const headers = [`Host: ${pick(r, ["127.0.0.1", "", "x".repeat(300), "evil.example"])}`];
  const cl = r();
  if (cl < 0.5) headers.push(`Content-Length: ${len}`);
  else if (cl < 0.6) headers.push(`Content-Length: ${pick(r, ["-1", "abc", "1e3", " 5", "99999999999999999999", `${len}, ${len}`])}`);
  else if (cl < 0.7) headers.push(`Content-Length: ${len}`, `Content-Length: ${len + 1}`);
  else if (cl < 0.8) headers.push("Transfer-Encoding: chunked");
  else if (cl < 0.85) headers.push("Transfer-Encoding: gzip, chunked", `Content-Length: ${len}`);
  if (r() < 0.5) headers.push(`Content-Type: ${pick(r, ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "\u00ff"])}`);
  if (r() < 0.3) headers.push(`Authorization: ${pick(r, ["Bearer", "Bearer x", "Basic Zm9vOmJhcg==", "x".repeat(2000)])}`);
  if (r() < 0.2) headers.push(pick(r, ["Bad Header: x", "X-Long: " + "y".repeat(20000), ": empty", "X-Null: a\u0000b", "Expect: 100-continue", "Connection: upgrade", "Upgrade: websocket"]));
  const version = pick(r, ["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "FOO"]);
  const payload = cl >= 0.7 && cl < 0.8 ? `${pick(r, [len.toString(16), "zz", "-1", "ffffffffffff"])}\r\n${b}\r\n0\r\n\r\n` : b;
  return `${method} ${p} ${version}\r\n${headers.join("\r\n")}\r\n\r\n${payload}`;
}

/** Runs `jobs` with at most `width` in flight. */
async function pool<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }));
  return out;
}

describe("fuzz", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ serve: { parallel: 2, queue: 2, bodyLimit: 16 * 1024, adapterDir: process.cwd() } });
  });
  afterAll(async () => t?.close());

  it(`${BODY_CASES} malformed bodies and ${HEADER_CASES} malformed header sets: no 5xx but 503, and the server still answers`, async () => {
    const r = mulberry32(20261202);
    const cases: { what: string; run: () => Promise<number> }[] = [];
    for (let i = 0; i < BODY_CASES; i++) {
      const path = pick(r, PATHS.slice(0, 5));
      const b = body(r);
      const headers: Record<string, string> = r() < 0.3 ? { "Content-Type": pick(r, ["text/plain", "application/json; charset=latin1", "x/y"]) } : {};
      cases.push({ what: `POST ${path} ${b.slice(0, 200)}`, run: async () => (await post(`${t.url}${path}`, b, headers)).status });
    }
    for (let i = 0; i < HEADER_CASES; i++) {
      const bytes = rawCase(r);
      cases.push({ what: JSON.stringify(bytes.slice(0, 300)), run: () => rawRequest(t.port, Buffer.from(bytes, "latin1"), 1500) });
    }
    const statuses = await pool(cases.map((c) => c.run), 8);
    const bad = statuses.map((s, i) => ({ s, what: cases[i].what })).filter(({ s }) => s >= 500 && s !== 503);
    expect(bad, JSON.stringify(bad.slice(0, 5))).toEqual([]);
    const counts = new Map<number, number>();
    for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
    expect(counts.get(400) ?? 0).toBeGreaterThan(500); // the cases reach the field checks
    // the server still answers, correctly
    const ok = await post(`${t.url}/v1/completions`, completion("Once upon a time", { max_tokens: 8 }));
    expect(ok.status).toBe(200);
    expect(ok.json.choices[0].text).toBe((await t.rt.session().complete("Once upon a time", { maxTokens: 8 })).text);
    expect(t.rt.adapters.list().map((a) => a.name)).toEqual(["A", "B"]);
  });
});
