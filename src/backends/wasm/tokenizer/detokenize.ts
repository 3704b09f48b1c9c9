// Token ids back to text: per-token pieces (as bytes), leading-space removal and BPE space clean-up.

import { byteOfChar, codepoints, utf8Decode, utf8Encode } from "./unicode.js";
import { TokenAttr, type TokenizerVocab } from "./vocab.js";

const SPECIAL = TokenAttr.UNKNOWN | TokenAttr.CONTROL;
const EMPTY = new Uint8Array(0);

function byteTokenValue(text: string): number {
  return parseInt(text.slice(3, 5), 16);
}

/** GPT-2 byte-level text back to raw bytes; characters outside the mapping are spelled out. */
function decodeByteLevel(text: string): Uint8Array {
  const out: number[] = [];
  for (const cp of codepoints(text)) {
    const ch = String.fromCodePoint(cp);
    const b = byteOfChar(ch);
    if (b !== undefined) {
      out.push(b);
    } else {
      const hex = Array.from(utf8Encode(ch), (x) => x.toString(16).padStart(2, "0")).join("");
      for (const x of utf8Encode(`[UNK_BYTE_0x${hex}${text}]`)) out.push(x);
    }
  }
  return Uint8Array.from(out);
}

/**
 * The bytes one token stands for. Control and unknown tokens give nothing unless `special`;
 * byte tokens give their byte; SPM pieces turn U+2581 into spaces; BPE pieces undo the byte mapping.
 */
export function tokenPieceBytes(vocab: TokenizerVocab, id: number, special = false): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id >= vocab.tokens.length) {
    throw new RangeError(`tokenizer: token id ${id} out of range [0, ${vocab.tokens.length})`);
  }
  const attr = vocab.attrs[id];
  if (!special && (attr & SPECIAL)) return EMPTY;
  const text = vocab.tokens[id];
  if (attr & (SPECIAL | TokenAttr.USER_DEFINED)) return utf8Encode(text);
  if (attr & TokenAttr.NORMAL) {
    return vocab.kind === "spm" ? utf8Encode(text.replaceAll("\u2581", " ")) : decodeByteLevel(text);
  }
  if (attr & TokenAttr.BYTE) return Uint8Array.of(byteTokenValue(text));
  return EMPTY;
}

/** The text of one token (invalid UTF-8, e.g. a lone byte token, decodes to U+FFFD). */
export function tokenToPiece(vocab: TokenizerVocab, id: number, special = false): string {
  return utf8Decode(tokenPieceBytes(vocab, id, special));
}

export interface DetokenizeOptions {
  /** Drop a leading BOS and a trailing EOS where the vocabulary adds them (default false). */
  removeSpecial?: boolean;
  /** Render control/unknown tokens as their text (default false: they vanish). */
  unparseSpecial?: boolean;
}

/** Concatenated bytes of the tokens, with the reference runtime's leading-space and clean-up rules. */
export function detokenizeBytes(vocab: TokenizerVocab, ids: readonly number[], opts: DetokenizeOptions = {}): Uint8Array {
  let list = ids;
  let removeSpace = vocab.addSpacePrefix;
  if (opts.removeSpecial && vocab.addBos && list.length > 0 && list[0] === vocab.bosId) {
    removeSpace = false;
    list = list.slice(1);
  }
  if (opts.removeSpecial && vocab.addEos && list.length > 0 && list[list.length - 1] === vocab.eosId) {
    list = list.slice(0, -1);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const id of list) {
    let p = tokenPieceBytes(vocab, id, opts.unparseSpecial ?? false);
    // only the first token may lose one leading space, even when it renders as nothing
    if (removeSpace && p.length > 0 && p[0] === 0x20) p = p.subarray(1);
    removeSpace = false;
    parts.push(p);
    total += p.length;
  }
  let text: Uint8Array = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    text.set(p, o);
    o += p.length;
  }
  if (vocab.cleanSpaces) text = cleanSpaces(text);
  return text;
}

/** Token ids to text. */
export function detokenize(vocab: TokenizerVocab, ids: readonly number[], opts: DetokenizeOptions = {}): string {
  return utf8Decode(detokenizeBytes(vocab, ids, opts));
}

const SP = 0x20;
const QUOTE = 0x27;
const ch = (s: string): number => s.charCodeAt(0);

/** Removes " " before ?!., , collapses " ' " and attaches 's 'm 're 've to the word before. */
function cleanSpaces(src: Uint8Array): Uint8Array {
  // pass 1: " ?", " !", " .", " ,"
  const a: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    if (i > 0 && src[i - 1] === SP && (x === ch("?") || x === ch("!") || x === ch(".") || x === ch(","))) a.pop();
    a.push(x);
  }
  // pass 2: a single apostrophe between spaces loses both spaces
  // (the dropped space reads as NUL afterwards, so " ' ' " only collapses once)
  const b: number[] = [];
  let dropped = -1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const prev = i - 1 === dropped ? 0 : a[i - 1];
    if (i > 0 && x === QUOTE && i + 1 < a.length && prev === SP && a[i + 1] === SP) {
      b.pop();
      b.push(x);
      dropped = ++i;
      continue;
    }
    b.push(x);
  }
  // pass 3: " 's", " 'm", " 're", " 've"
  const c: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const x = b[i];
    if (i > 0 && b[i - 1] === SP && x === QUOTE && i + 1 < b.length) {
      const x1 = b[i + 1];
      if (x1 === ch("s") || x1 === ch("m")) c.pop();
      else if (i + 2 < b.length && ((x1 === ch("r") && b[i + 2] === ch("e")) || (x1 === ch("v") && b[i + 2] === ch("e")))) c.pop();
    }
    c.push(x);
  }
  return Uint8Array.from(c);
}

/**
 * Incremental detokenization for generated tokens: `push` returns the text completed so far (a UTF-8 sequence
 * split across byte tokens is held back until whole). The joined output equals `detokenize` of all tokens,
 * except that the BPE space clean-up (a whole-text pass) is not applied.
 */
export class StreamDetokenizer {
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private first: boolean;

  /** `continuation`: the tokens follow earlier text, so the first one keeps its leading space. */
  constructor(private readonly vocab: TokenizerVocab, private readonly opts: { unparseSpecial?: boolean; continuation?: boolean } = {}) {
    this.first = !(opts.continuation ?? false);
  }

  push(id: number): string {
    let p = tokenPieceBytes(this.vocab, id, this.opts.unparseSpecial ?? false);
    if (this.first && this.vocab.addSpacePrefix && p.length > 0 && p[0] === 0x20) p = p.subarray(1);
    this.first = false;
    return this.decoder.decode(p, { stream: true });
  }

  /** Flushes bytes of an unfinished UTF-8 sequence (as U+FFFD). */
  end(): string {
    return this.decoder.decode();
  }
}
