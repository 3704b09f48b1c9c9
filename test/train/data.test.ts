// Training data formats: chat messages through a chat template with the loss on the assistant turns only, and the refusals that name the line.
import { describe, expect, it } from "vitest";
import { parseData, toSequences, type DataMessage, type TextFormatter } from "../../src/train/data.js";
import { TrainInputError } from "../../src/errors.js";

/** A formatter over characters (one token per character, BOS 1, EOS 2) with a ChatML-like template. */
const chars: TextFormatter = {
  tokenize: (text, bos) => [...(bos ? [1] : []), ...[...text].map((c) => c.charCodeAt(0))],
  eos: 2,
  renderChat: (messages: readonly DataMessage[], gen: boolean) =>
    messages.map((m) => `<${m.role}>${m.content}</>`).join("") + (gen ? "<assistant>" : ""),
};
const text = (ids: readonly number[]) => ids.map((i) => String.fromCharCode(i)).join("");

describe("training data", () => {
  it("messages: the loss counts each assistant turn's own text (and its closing), nothing of the system or user turns", () => {
    const line = JSON.stringify({ messages: [{ role: "system", content: "S" }, { role: "user", content: "hi" }, { role: "assistant", content: "yo" }, { role: "user", content: "more" }, { role: "assistant", content: "ok" }] });
    const [s] = toSequences("d.jsonl", parseData("d.jsonl", line + "\n"), chars, { ctx: 200 });
    const learnt = s.tokens.slice(1).filter((_, i) => s.lossMask![i]);
    expect(text(learnt)).toBe("yo</>ok</>");
    expect(text(s.tokens)).toBe("<system>S</><user>hi</><assistant>yo</><user>more</><assistant>ok</>");
  });

  it("prompt/completion: the completion and the end token are learnt", () => {
    const [s] = toSequences("d.jsonl", parseData("d.jsonl", `{"prompt":"ab","completion":"cd"}`), chars, { ctx: 10 });
    expect(s.tokens).toEqual([1, 97, 98, 99, 100, 2]);
    expect(s.lossMask).toEqual([false, false, true, true, true]);
  });

  it("plain text: windows of ctx tokens overlapping by one, every token after the first predicted once", () => {
    const seqs = toSequences("t.txt", parseData("t.txt", "abcdefghij"), chars, { ctx: 4 });
    expect(seqs.map((s) => s.tokens.length)).toEqual([4, 4, 4, 2]);
    expect(seqs.reduce((n, s) => n + s.tokens.length - 1, 0)).toBe(10);
  });

  it("refusals name the file and the line", () => {
    const bad = (t: string, re: RegExp, f: TextFormatter = chars) => {
      const e = (() => { try { toSequences("d.jsonl", parseData("d.jsonl", t), f, { ctx: 50 }); } catch (x) { return x; } })();
      expect(e).toBeInstanceOf(TrainInputError);
      expect((e as Error).message).toMatch(re);
    };
    bad(`{"prompt":"a","completion":"b"}\nnot json\n`, /d.jsonl: line 2: not valid JSON/);
    bad(`{"messages":[{"role":"user","content":"a"}]}`, /line 1: no assistant turn/);
    bad(`{"messages":[{"role":"robot","content":"a"}]}`, /line 1: messages\[0\] must be/);
    bad(`{"messages":[{"role":"assistant","content":"a"}]}`, /line 1: "messages" need the model's chat template/, { tokenize: chars.tokenize });
    bad(`{"prompt":"a","completion":"${"x".repeat(60)}"}`, /line 1: 63 tokens, longer than the context of 50/);
  });
});
