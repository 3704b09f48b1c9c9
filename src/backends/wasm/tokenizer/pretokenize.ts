// BPE pre-tokenizers: split text into words by the rule set a GGUF `tokenizer.ggml.pre` name selects.

import { CpFlag, codepoints, cpFlags } from "./unicode.js";

const { NUMBER, LETTER, PUNCTUATION, WHITESPACE } = CpFlag;

/**
 * One splitting pass. It receives the codepoints and the current segmentation (lengths of consecutive
 * segments) and returns a finer segmentation; segments are split independently.
 */
type Pass = (cps: readonly number[], segments: readonly number[]) => number[];

const APOS = 0x27;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;

function lowerAscii(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

/** Length of a contraction ('s 't 're 've 'm 'll 'd) at `pos`, or 0. */
function contraction(cps: readonly number[], pos: number, end: number, anyCase: boolean): number {
  if (cps[pos] !== APOS || pos + 1 >= end) return 0;
  const f = anyCase ? lowerAscii : (c: number) => c;
  const a = f(cps[pos + 1]);
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2; // s t m d
  if (pos + 2 < end) {
    const b = f(cps[pos + 2]);
    if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) return 3; // re ve ll
  }
  return 0;
}

/**
 * GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 */
const gpt2Pass: Pass = (cps, segments) => {
  const out: number[] = [];
  let start = 0;
  for (const seg of segments) {
    const ini = start;
    const end = start + seg;
    start = end;
    const flags = (p: number): number => (p >= ini && p < end ? cpFlags(cps[p]) : -1);
    let prevEnd = ini;
    const emit = (e: number): number => {
      const len = e - prevEnd;
      if (len > 0) out.push(len);
      prevEnd = e;
      return len;
    };
    for (let pos = ini; pos < end; ) {
      const cp = cps[pos];
      const c = contraction(cps, pos, end, false);
      if (c > 0) {
        pos += emit(pos + c);
        continue;
      }
      let f2 = cp === SPACE ? flags(pos + 1) : flags(pos);
      const isL = (f: number) => f !== -1 && (f & LETTER) !== 0;
      const isN = (f: number) => f !== -1 && (f & NUMBER) !== 0;
      const isOther = (f: number) => f !== -1 && (f & (WHITESPACE | LETTER | NUMBER)) === 0;
      if (isL(f2) || isN(f2) || isOther(f2)) {
        const cls = isL(f2) ? isL : isN(f2) ? isN : isOther;
        if (cp === SPACE) pos++;
        while (cls(f2)) f2 = flags(++pos);
        emit(pos);
        continue;
      }
      let nws = 0;
      while (pos + nws < end && (cpFlags(cps[pos + nws]) & WHITESPACE) !== 0) nws++;
      if (nws > 1 && pos + nws < end) {
        // \s+(?!\S): leave the last whitespace for the next word
        pos += nws - 1;
        emit(pos);
        continue;
      }
      if (nws > 0) {
        pos += nws;
        emit(pos);
        continue;
      }
      emit(++pos);
    }
  }
  return out;
};

/**
 * Llama-3 (maxDigits 3) and Qwen2 (maxDigits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 */
function llama3Pass(maxDigits: number): Pass {
  return (cps, segments) => {
    const out: number[] = [];
    let start = 0;
    for (const seg of segments) {
      const ini = start;
      const end = start + seg;
      start = end;
      const flags = (p: number): number => (p >= ini && p < end ? cpFlags(cps[p]) : -1);
      const cpAt = (p: number): number => (p >= ini && p < end ? cps[p] : -1);
      let prevEnd = ini;
      const emit = (e: number): number => {
        const len = e - prevEnd;
        if (len > 0) out.push(len);
        prevEnd = e;
        return len;
      };
      const isL = (f: number) => f !== -1 && (f & LETTER) !== 0;
      const isN = (f: number) => f !== -1 && (f & NUMBER) !== 0;
      const isOther = (f: number) => f !== -1 && (f & (WHITESPACE | LETTER | NUMBER)) === 0;
      for (let pos = ini; pos < end; ) {
        const cp = cps[pos];
        const f = flags(pos);
        const c = contraction(cps, pos, end, true);
        if (c > 0) {
          pos += emit(pos + c);
          continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (!(cp === CR || cp === LF || isN(f))) {
          if (isL(f) || isL(flags(pos + 1))) {
            pos++;
            while (isL(flags(pos))) pos++;
            emit(pos);
            continue;
          }
        }
        // \p{N}{1,maxDigits}
        if (isN(f)) {
          let runStart = pos;
          while (isN(flags(pos))) {
            if (++pos - runStart >= maxDigits) {
              emit(pos);
              runStart = pos;
            }
          }
          emit(pos);
          continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let f2 = cp === SPACE ? flags(pos + 1) : f;
        if (isOther(f2) && f !== -1) {
          if (cp === SPACE) pos++;
          while (isOther(f2)) f2 = flags(++pos);
          let c2 = cpAt(pos);
          while (c2 === CR || c2 === LF) c2 = cpAt(++pos);
          emit(pos);
          continue;
        }
        let nws = 0;
        let lastNl = 0;
        while (isWs(flags(pos + nws))) {
          const c2 = cps[pos + nws];
          if (c2 === CR || c2 === LF) lastNl = pos + nws + 1;
          nws++;
        }
        // \s*[\r\n]+
        if (lastNl > 0) {
          pos = lastNl;
          emit(pos);
          continue;
        }
        if (nws > 1 && pos + nws < end) {
          pos += nws - 1;
          emit(pos);
          continue;
        }
        if (nws > 0) {
          pos += nws;
          emit(pos);
          continue;
        }
        emit(++pos);
      }
    }
    return out;
  };
}

function isWs(f: number): boolean {
  return f !== -1 && (f & WHITESPACE) !== 0;
}

/**
 * A pass that isolates every leftmost, non-overlapping match of a simple pattern; `matchAt` returns
 * the match length at a position (0: no match). Text between matches stays as its own segment.
 */
function matchPass(matchAt: (cps: readonly number[], pos: number, end: number) => number): Pass {
  return (cps, segments) => {
    const out: number[] = [];
    let start = 0;
    for (const seg of segments) {
      const end = start + seg;
      let last = start;
      for (let pos = start; pos < end; ) {
        const m = matchAt(cps, pos, end);
        if (m > 0) {
          if (pos > last) out.push(pos - last);
          out.push(m);
          pos += m;
          last = pos;
        } else {
          pos++;
        }
      }
      if (last < end) out.push(end - last);
      start = end;
    }
    return out;
  };
}

/** Run of codepoints satisfying `pred`, at least one long. */
function runOf(pred: (cp: number) => boolean, maxLen = Infinity) {
  return (cps: readonly number[], pos: number, end: number): number => {
    let p = pos;
    while (p < end && p - pos < maxLen && pred(cps[p])) p++;
    return p - pos;
  };
}

/** \p{N} as the pattern engine sees it: ASCII digits, or a non-ASCII, non-whitespace number. */
const isNumberCp = (cp: number): boolean => {
  if (cp < 128) return cp >= 0x30 && cp <= 0x39;
  const f = cpFlags(cp);
  return (f & WHITESPACE) === 0 && (f & NUMBER) !== 0;
};

/** [\p{P}$+<=>^~|] (optionally also `): ASCII punctuation and symbols except the backtick, or non-ASCII punctuation. */
function isPunctCp(withBacktick: boolean) {
  return (cp: number): boolean => {
    if (cp < 128) {
      if (cp === 0x60) return withBacktick;
      return (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) || (cp >= 0x5b && cp <= 0x5f) ||
        (cp >= 0x7b && cp <= 0x7e);
    }
    const f = cpFlags(cp);
    return (f & WHITESPACE) === 0 && (f & PUNCTUATION) !== 0;
  };
}

const isAsciiDigit = (cp: number): boolean => cp >= 0x30 && cp <= 0x39;
const threeDigits = (cps: readonly number[], pos: number, end: number): number =>
  pos + 3 <= end && isAsciiDigit(cps[pos]) && isAsciiDigit(cps[pos + 1]) && isAsciiDigit(cps[pos + 2]) ? 3 : 0;

/** Splitting rule sets; `tokenizer.ggml.pre` names map onto these (see the vocabulary). */
export type PreFamily = "default" | "gpt2" | "starcoder" | "llama3" | "qwen2" | "falcon";

const PASSES: Record<PreFamily, Pass[]> = {
  // [\p{P}$+<=>^~|]+, then the GPT-2 pattern, then \p{N}+, then [0-9][0-9][0-9]
  default: [matchPass(runOf(isPunctCp(false))), gpt2Pass, matchPass(runOf(isNumberCp)), matchPass(threeDigits)],
  gpt2: [gpt2Pass],
  // \p{N}, then the GPT-2 pattern (smollm, starcoder, refact, command-r, ...)
  starcoder: [matchPass(runOf(isNumberCp, 1)), gpt2Pass],
  llama3: [llama3Pass(3)],
  qwen2: [llama3Pass(1)],
  // [\p{P}$+<=>^~|`]+, then the GPT-2 pattern, then [0-9][0-9][0-9]
  falcon: [matchPass(runOf(isPunctCp(true))), gpt2Pass, matchPass(threeDigits)],
};

/** Splits `text` into pre-tokenized words (plain text, not yet byte-encoded). */
export function preTokenize(family: PreFamily, text: string): string[] {
  const passes = PASSES[family];
  if (passes === undefined) throw new Error(`tokenizer: unknown pre-tokenizer family '${family}'`);
  const cps = codepoints(text);
  let segments: number[] = cps.length > 0 ? [cps.length] : [];
  for (const pass of passes) segments = pass(cps, segments);
  const words: string[] = [];
  let p = 0;
  for (const len of segments) {
    words.push(String.fromCodePoint(...cps.slice(p, p + len)));
    p += len;
  }
  return words;
}
