// Shared tokenizer test inputs and helpers: the .inp/.out case format and strings compared against llama.cpp.
import { readFileSync } from "node:fs";
import { getLlama, type Llama, type Token } from "node-llama-cpp";
import { mulberry32 } from "../../src/random.js";

/** Reads a `.inp` / `.out` pair: inputs separated by "\n__ggml_vocab_test__\n", one line of ids per input. */
export function readVocabCases(base: string): { text: string; ids: number[] }[] {
  const raw = readFileSync(base + ".inp", "utf8");
  const sep = "\n__ggml_vocab_test__\n";
  const inputs: string[] = [];
  for (let pos = 0; pos < raw.length; ) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const lines = readFileSync(base + ".out", "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length !== inputs.length) throw new Error(`${base}: ${inputs.length} inputs but ${lines.length} outputs`);
  return inputs.map((text, i) => {
    const t = lines[i].trim();
    return { text, ids: t === "" ? [] : t.split(" ").map(Number) };
  });
}

/** Strings with the awkward parts: unicode, emoji, whitespace runs, newlines, the empty string. */
export const TRICKY_STRINGS: readonly string[] = [
  "",
  " ",
  "  ",
  "     ",
  "\n",
  "\n\n\n",
  "\t",
  " \t \n ",
  "\r\n",
  "Hello world",
  " Hello world",
  "Hello  world",
  "Hello world ",
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
  "line one\nline two\r\nline three\n\n  indented",
  "tabs\tand\u00a0no-break\u3000ideographic space",
  "café naïve résumé Ünïcödé ÀÉÎÕÜ",
  "日本語のテキストと中文",
  "Привет, мир! Γειά σου κόσμε",
  "emoji 🦙🚀 and a family 👩‍👩‍👧 with skin tone 👍🏽",
  "😀",
  "\u0301\u0301 combining accents e\u0301",
  "1234567890 3.14159 1,000,000 ٣٤٥",
  "Hello, world! How's it going? I'm fine, they'll say. We'Ve done it'S",
  "    def main():\n        return 0\n",
  "<s> not special </s> text",
  "a\u00adb\u200bc\u200dd\ufeffe",
  "x".repeat(300),
  "the quick brown fox jumps over the lazy dog ".repeat(20),
];

/** Plain ids as node-llama-cpp's branded token type. */
export const asTokens = (ids: readonly number[]): Token[] => ids as unknown as Token[];

let llama: Promise<Llama> | undefined;
/** One CPU llama.cpp instance (prebuilt binary; never builds or downloads). */
export function cpuLlama(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: "never", skipDownload: true, maxThreads: 2, logLevel: "error" as never });
  return llama;
}

/** Deterministic random strings drawn from pieces that stress splitting, merging and byte fallback. */
export function randomStrings(seed: number, count: number, maxPieces = 12): string[] {
  const rnd = mulberry32(seed);
  const pieces = [
    " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u0085", "\u3000", "\ufeff",
    "the", "The", " the", "Once", " upon", "a", " time", "Lily", "girl", "play", "x", "Z",
    "'s", "'T", "'ll", "'re", "'VE", "n't", "0", "7", "42", "12345", "3.14", "½", "٣",
    ".", ",", "!", "?", "...", "$", "+", "<=", "^", "|", "~", "`", "#", "@", "_", "-", "(", ")", "{", "}",
    "é", "ü", "ß", "Ω", "ж", "日本", "語", "한", "ก", "🦙", "🚀", "👍🏽", "e\u0301", "\u200d",
  ];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(rnd() * maxPieces);
    let str = "";
    for (let j = 0; j < n; j++) str += pieces[Math.floor(rnd() * pieces.length)];
    out.push(str);
  }
  return out;
}
