// lastInvocationStart: the start of the last occurrence of an aLoRA invocation sequence, against a brute-force search.
import { describe, expect, it } from "vitest";
import { lastInvocationStart } from "../../src/runtime/invocation.js";
import { mulberry32 } from "../../src/random.js";

/** Every start where `inv` occurs in `tokens`, by comparing each window: the definition. */
function allStarts(tokens: number[], inv: number[]): number[] {
  const out: number[] = [];
  for (let s = 0; s + inv.length <= tokens.length; s++) if (inv.every((t, k) => tokens[s + k] === t)) out.push(s);
  return out;
}

/** llama-server's backward scan (node-llama-cpp 3.21.1's llama.cpp), transcribed to show where it differs. */
function llamaServerScan(tokens: number[], inv: number[]): number | undefined {
  let match = inv.length - 1;
  for (let i = tokens.length - 1; i >= 0; i--) {
    if (tokens[i] === inv[match]) {
      if (match === 0) return i;
      match--;
    } else match = inv.length - 1;
  }
  return undefined;
}

describe("lastInvocationStart", () => {
  it("finds the last occurrence, at the sequence's first token", () => {
    expect(lastInvocationStart([1, 7, 8, 9, 2, 7, 8, 9, 3], [7, 8, 9])).toBe(5);
    expect(lastInvocationStart([7, 8, 9], [7, 8, 9])).toBe(0);
    expect(lastInvocationStart([1, 2, 7, 8], [7, 8])).toBe(2);
    expect(lastInvocationStart(new Int32Array([5, 5, 5]), [5])).toBe(2);
  });

  it("says none (undefined) when the sequence is absent, cut off at the end, longer than the text, or empty", () => {
    expect(lastInvocationStart([1, 2, 3], [7, 8])).toBeUndefined();
    expect(lastInvocationStart([1, 2, 7], [7, 8])).toBeUndefined();
    expect(lastInvocationStart([7], [7, 8])).toBeUndefined();
    expect(lastInvocationStart([], [7])).toBeUndefined();
    expect(lastInvocationStart([1, 2], [])).toBeUndefined();
  });

  it("handles overlapping and self-similar sequences", () => {
    expect(lastInvocationStart([4, 4, 4, 4], [4, 4])).toBe(2);
    expect(lastInvocationStart([1, 2, 1, 2, 1], [1, 2, 1])).toBe(2);
    expect(lastInvocationStart([3, 1, 3, 1, 3, 2], [3, 1, 3, 2])).toBe(2);
  });

  it("equals the last window that matches, on 5,000 seeded cases over a small alphabet", () => {
    const rand = mulberry32(16);
    const pick = (n: number) => Math.floor(rand() * n);
    for (let c = 0; c < 5000; c++) {
      const alphabet = 1 + pick(4);
      const tokens = Array.from({ length: pick(40) }, () => pick(alphabet));
      const inv = Array.from({ length: 1 + pick(4) }, () => pick(alphabet));
      const starts = allStarts(tokens, inv);
      expect(lastInvocationStart(tokens, inv), JSON.stringify({ tokens, inv })).toBe(starts.length ? starts[starts.length - 1] : undefined);
    }
  });

  it("agrees with llama-server's scan except where that scan skips a token after a failed partial match", () => {
    // [a, b] in [a, b, b]: the scan matches the last b, fails on the middle b without testing it as a new last token.
    expect(lastInvocationStart([1, 2, 2], [1, 2])).toBe(0);
    expect(llamaServerScan([1, 2, 2], [1, 2])).toBeUndefined();
    // ... and can then report an earlier occurrence than the last one.
    expect(lastInvocationStart([1, 2, 9, 1, 2, 2], [1, 2])).toBe(3);
    expect(llamaServerScan([1, 2, 9, 1, 2, 2], [1, 2])).toBe(0);
    // Otherwise the scan finds only real occurrences, never one later than the last: it can only miss.
    const rand = mulberry32(26);
    let differ = 0;
    for (let c = 0; c < 5000; c++) {
      const tokens = Array.from({ length: Math.floor(rand() * 30) }, () => Math.floor(rand() * 3));
      const inv = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => Math.floor(rand() * 3));
      const ours = lastInvocationStart(tokens, inv);
      const scan = llamaServerScan(tokens, inv);
      if (scan !== undefined) {
        expect(allStarts(tokens, inv)).toContain(scan);
        expect(ours).toBeGreaterThanOrEqual(scan);
      }
      if (ours !== scan) differ++;
      // A one-token sequence has no partial match to fail: the two always agree.
      if (inv.length === 1) expect(ours).toBe(scan);
    }
    expect(differ).toBeGreaterThan(0);
  });
});
