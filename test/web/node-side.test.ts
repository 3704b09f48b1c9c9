// The parts of lora-edge/web that run anywhere: byte sources from web inputs, thread choice, the page server's headers.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufError } from "../../src/gguf/errors.js";
import { parseGguf } from "../../src/gguf/reader.js";
import { startPageServer, type PageServer } from "../../src/serve/page-server.js";
import { openWebSource, sourceName } from "../../src/web/sources.js";
import { chooseWebThreads } from "../../src/web/engine.js";
import { repoRoot } from "../fixtures.js";

const BASE = path.join(repoRoot, "gguf/stories260K.gguf");

describe("web sources", () => {
  const bytes = new Uint8Array(readFileSync(BASE));

  it("reads the same GGUF from an ArrayBuffer, a typed array view, a Blob and a URL", async () => {
    const server = await startPageServer();
    try {
      const padded = new Uint8Array(bytes.length + 16);
      padded.set(bytes, 8);
      const inputs = [bytes.slice().buffer, padded.subarray(8, 8 + bytes.length), new Blob([bytes]), `${server.url}gguf/stories260K.gguf`];
      for (const input of inputs) {
        const f = parseGguf(await openWebSource(input, "m.gguf"), "m.gguf");
        expect(f.tensors.length).toBeGreaterThan(5);
        expect(f.get("general.architecture")).toBe("llama");
        expect(f.readTensor(f.tensors[0].name)).toEqual(bytes.subarray(f.tensors[0].offset, f.tensors[0].offset + f.tensors[0].byteSize));
        f.close();
      }
    } finally {
      await server.close();
    }
  });

  it("names inputs by file name or URL, and refuses a URL that cannot be fetched with a GgufError naming it", async () => {
    expect(sourceName("http://h/x/stories260K.gguf?v=1", "d")).toBe("stories260K.gguf");
    expect(sourceName(new File([bytes], "mine.gguf"), "d")).toBe("mine.gguf");
    expect(sourceName(new ArrayBuffer(4), "fallback.gguf")).toBe("fallback.gguf");
    const server = await startPageServer();
    try {
      const e = await openWebSource(`${server.url}gguf/missing.gguf`, "missing.gguf").catch((x) => x);
      expect(e).toBeInstanceOf(GgufError);
      expect(e.file).toBe("missing.gguf");
      expect(e.field).toBe("file");
      expect(e.message).toContain("HTTP 404");
    } finally {
      await server.close();
    }
  });

  it("a damaged ArrayBuffer is refused by the same reader, naming the file, the field and the offset", async () => {
    const source = await openWebSource(bytes.subarray(0, 200), "cut.gguf");
    let e: unknown;
    try {
      parseGguf(source, "cut.gguf");
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GgufError);
    expect((e as GgufError).file).toBe("cut.gguf");
    expect((e as GgufError).field).not.toBe("file");
    expect((e as GgufError).offset).toBeGreaterThan(0);
  });
});

describe("threads in a page", () => {
  it("one thread when asked, otherwise the count asked for where shared memory is allowed; bad counts refused", () => {
    expect(chooseWebThreads(1)).toEqual({ threads: 1, note: "one thread was asked for" });
    expect(chooseWebThreads(3).threads).toBe(3);
    expect(() => chooseWebThreads(0)).toThrow(/threads/);
    expect(() => chooseWebThreads(1.5)).toThrow(/threads/);
  });
});

describe("page server", () => {
  let server: PageServer;
  beforeAll(async () => {
    server = await startPageServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("serves the bundle cross-origin isolated at / and without the isolation headers at /plain/", async () => {
    const iso = await fetch(`${server.url}lora-edge.js`);
    expect(iso.status).toBe(200);
    expect(iso.headers.get("content-type")).toMatch(/javascript/);
    expect(iso.headers.get("cross-origin-opener-policy")).toBe("same-origin");
    expect(iso.headers.get("cross-origin-embedder-policy")).toBe("require-corp");
    const plain = await fetch(`${server.plainUrl}lora-edge.js`);
    expect(plain.status).toBe(200);
    expect(plain.headers.get("cross-origin-embedder-policy")).toBeNull();
    expect((await fetch(`${server.url}core-simd.wasm`)).headers.get("content-type")).toBe("application/wasm");
    expect((await fetch(`${server.url}`)).headers.get("content-type")).toMatch(/html/);
  });

  it("serves nothing outside its folders", async () => {
    expect((await fetch(`${server.url}gguf/../../package.json`)).status).toBe(404);
    expect((await fetch(`${server.url}%2e%2e/package.json`)).status).toBe(404);
    expect((await fetch(`${server.url}nope.js`)).status).toBe(404);
  });
});
