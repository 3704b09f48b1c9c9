// Unicode helpers for the tokenizers: UTF-8 coding, codepoint categories, GPT-2 byte-to-unicode mapping.

export const CpFlag = {
  NUMBER: 1 << 0,
  LETTER: 1 << 1,
  PUNCTUATION: 1 << 2,
  SYMBOL: 1 << 3,
  ACCENT_MARK: 1 << 4,
  WHITESPACE: 1 << 5,
} as const;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

export function utf8Encode(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** Decodes UTF-8, replacing invalid sequences with U+FFFD. */
export function utf8Decode(b: Uint8Array): string {
  return utf8Decoder.decode(b);
}

/** Replaces unpaired surrogates with U+FFFD, as any conversion of the text to UTF-8 does. */
export function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/** Codepoints of a well-formed string. */
export function codepoints(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        out.push(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000);
        i++;
        continue;
      }
    }
    out.push(c);
  }
  return out;
}

/** Whitespace as the reference tokenizer defines it (differs from JS `\s`: has U+0085, lacks U+FEFF). */
const WHITESPACE = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

const RE_L = /^\p{L}$/u;
const RE_N = /^\p{N}$/u;
const RE_P = /^\p{P}$/u;
const RE_S = /^\p{S}$/u;
const RE_M = /^\p{M}$/u;

/**
 * Codepoints first assigned in Unicode 16.0 and 17.0 (categories L, M, N, P, S), as inclusive [start, end] pairs.
 * The reference tokenizer classifies codepoints by Unicode 15.1, where these are unassigned; newer JS engines
 * know them, so they are masked here to split text the same way on any engine with Unicode 15.1 or later.
 */
const LATER_ASSIGNED: readonly number[] = [
  0x88f, 0x88f, 0x897, 0x897, 0xc5c, 0xc5c, 0xcdc, 0xcdc, 0x1acf, 0x1add, 0x1ae0, 0x1aeb, 0x1b4e, 0x1b4f,
  0x1b7f, 0x1b7f, 0x1c89, 0x1c8a, 0x20c1, 0x20c1, 0x2427, 0x2429, 0x2b96, 0x2b96, 0x31e4, 0x31e5, 0xa7cb, 0xa7cf,
  0xa7d2, 0xa7d2, 0xa7d4, 0xa7d4, 0xa7da, 0xa7dc, 0xa7f1, 0xa7f1, 0xfbc3, 0xfbd2, 0xfd90, 0xfd91, 0xfdc8, 0xfdce,
  0x105c0, 0x105f3, 0x10940, 0x10959, 0x10d40, 0x10d65, 0x10d69, 0x10d85, 0x10d8e, 0x10d8f, 0x10ec2, 0x10ec7,
  0x10ed0, 0x10ed8, 0x10efa, 0x10efc, 0x11380, 0x11389, 0x1138b, 0x1138b, 0x1138e, 0x1138e, 0x11390, 0x113b5,
  0x113b7, 0x113c0, 0x113c2, 0x113c2, 0x113c5, 0x113c5, 0x113c7, 0x113ca, 0x113cc, 0x113d5, 0x113d7, 0x113d8,
  0x113e1, 0x113e2, 0x116d0, 0x116e3, 0x11b60, 0x11b67, 0x11bc0, 0x11be1, 0x11bf0, 0x11bf9, 0x11db0, 0x11ddb,
  0x11de0, 0x11de9, 0x11f5a, 0x11f5a, 0x13460, 0x143fa, 0x16100, 0x16139, 0x16d40, 0x16d79, 0x16ea0, 0x16eb8,
  0x16ebb, 0x16ed3, 0x16ff2, 0x16ff6, 0x187f8, 0x187ff, 0x18cff, 0x18cff, 0x18d09, 0x18d1e, 0x18d80, 0x18df2,
  0x1cc00, 0x1ccfc, 0x1cd00, 0x1ceb3, 0x1ceba, 0x1ced0, 0x1cee0, 0x1cef0, 0x1e5d0, 0x1e5fa, 0x1e5ff, 0x1e5ff,
  0x1e6c0, 0x1e6de, 0x1e6e0, 0x1e6f5, 0x1e6fe, 0x1e6ff, 0x1f6d8, 0x1f6d8, 0x1f777, 0x1f77a, 0x1f8b2, 0x1f8bb,
  0x1f8c0, 0x1f8c1, 0x1f8d0, 0x1f8d8, 0x1fa54, 0x1fa57, 0x1fa89, 0x1fa8a, 0x1fa8e, 0x1fa8f, 0x1fabe, 0x1fabe,
  0x1fac6, 0x1fac6, 0x1fac8, 0x1fac8, 0x1facd, 0x1facd, 0x1fadc, 0x1fadc, 0x1fadf, 0x1fadf, 0x1fae9, 0x1faea,
  0x1faef, 0x1faef, 0x1fbcb, 0x1fbef, 0x1fbfa, 0x1fbfa, 0x2b73a, 0x2b73f, 0x2cea2, 0x2cead, 0x323b0, 0x33479,
];

function laterAssigned(cp: number): boolean {
  let lo = 0;
  let hi = LATER_ASSIGNED.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < LATER_ASSIGNED[2 * mid]) hi = mid - 1;
    else if (cp > LATER_ASSIGNED[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

const flagCache = new Map<number, number>();
const asciiFlags = new Uint8Array(128);
for (let c = 0; c < 128; c++) asciiFlags[c] = computeFlags(c);

function computeFlags(cp: number): number {
  let f = WHITESPACE.has(cp) ? CpFlag.WHITESPACE : 0;
  if (laterAssigned(cp)) return f;
  const ch = String.fromCodePoint(cp);
  if (RE_L.test(ch)) f |= CpFlag.LETTER;
  else if (RE_N.test(ch)) f |= CpFlag.NUMBER;
  else if (RE_P.test(ch)) f |= CpFlag.PUNCTUATION;
  else if (RE_S.test(ch)) f |= CpFlag.SYMBOL;
  else if (RE_M.test(ch)) f |= CpFlag.ACCENT_MARK;
  return f;
}

/** Category flags of a codepoint (general category class plus the whitespace bit). */
export function cpFlags(cp: number): number {
  if (cp < 128) return asciiFlags[cp];
  let f = flagCache.get(cp);
  if (f === undefined) {
    f = computeFlags(cp);
    flagCache.set(cp, f);
  }
  return f;
}

// GPT-2 byte-level mapping: printable Latin-1 bytes stand for themselves, the rest map to U+0100 upwards.
const BYTE_TO_CHAR: string[] = new Array(256);
const CHAR_TO_BYTE = new Map<string, number>();
{
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const cp = printable ? b : 256 + extra++;
    BYTE_TO_CHAR[b] = String.fromCodePoint(cp);
    CHAR_TO_BYTE.set(BYTE_TO_CHAR[b], b);
  }
}

/** Maps each UTF-8 byte of `s` to its GPT-2 byte-level character. */
export function byteEncode(s: string): string {
  const bytes = utf8Encode(s);
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]];
  return out;
}

/** The byte a GPT-2 byte-level character stands for, or undefined. */
export function byteOfChar(ch: string): number | undefined {
  return CHAR_TO_BYTE.get(ch);
}

/** The GPT-2 byte-level character for a byte. */
export function charOfByte(b: number): string {
  return BYTE_TO_CHAR[b & 0xff];
}
