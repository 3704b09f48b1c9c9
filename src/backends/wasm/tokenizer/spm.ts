// SentencePiece-style tokenization of one text fragment: greedy bigram merging by token score, byte fallback.

import { Heap } from "./heap.js";
import { utf8Encode } from "./unicode.js";
import type { TokenizerVocab } from "./vocab.js";

interface Sym {
  prev: number;
  next: number;
  /** Start (UTF-16 index) of the symbol's text in the fragment. */
  start: number;
  /** Length in UTF-16 units; 0 once merged into its left neighbour. */
  len: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  len: number;
}

/** Higher score first; on equal scores the leftmost pair first. */
const before = (a: Bigram, b: Bigram): boolean => a.score > b.score || (a.score === b.score && a.left < b.left);

const HEX = "0123456789ABCDEF";

/** Token id for one raw byte: `<0xXX>` or, failing that, the byte as a one-character token. */
export function spmByteToken(vocab: TokenizerVocab, byte: number): number {
  const id = vocab.tokenToId.get(`<0x${HEX[byte >> 4]}${HEX[byte & 15]}>`);
  if (id !== undefined) return id;
  const alt = byte < 0x80 ? vocab.tokenToId.get(String.fromCharCode(byte)) : undefined;
  if (alt !== undefined) return alt;
  throw new Error(`tokenizer: the vocabulary has no token for byte 0x${HEX[byte >> 4]}${HEX[byte & 15]}`);
}

/**
 * Tokenizes `text` (spaces already escaped to U+2581, prefix already added) and appends the ids to `out`.
 * The text is first split into characters; adjacent pairs that form a vocabulary token are merged,
 * best score first, until no pair forms a token; characters left outside the vocabulary become byte tokens.
 */
export function spmTokenize(vocab: TokenizerVocab, text: string, out: number[]): void {
  if (text.length === 0) return;
  const syms: Sym[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    const n = c >= 0xd800 && c < 0xdc00 && i + 1 < text.length ? 2 : 1;
    const idx = syms.length;
    syms.push({ prev: idx - 1, next: i + n === text.length ? -1 : idx + 1, start: i, len: n });
    i += n;
  }

  const queue = new Heap<Bigram>(before);
  const revMerge = new Map<string, [number, number]>();
  const symText = (s: Sym): string => text.substr(s.start, s.len);

  const tryAdd = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const l = syms[left];
    const r = syms[right];
    const piece = text.substr(l.start, l.len + r.len);
    const id = vocab.tokenToId.get(piece);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id], len: piece.length });
    revMerge.set(piece, [left, right]);
  };

  for (let i = 1; i < syms.length; i++) tryAdd(i - 1, i);

  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    const l = syms[b.left];
    const r = syms[b.right];
    // stale: one side was merged away, or the right side grew since the pair was queued
    if (l.len === 0 || r.len === 0 || l.len + r.len !== b.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    tryAdd(l.prev, b.left);
    tryAdd(b.left, l.next);
  }

  const resegment = (s: Sym): void => {
    const piece = symText(s);
    const id = vocab.tokenToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    const split = revMerge.get(piece);
    if (split === undefined) {
      const bytes = utf8Encode(piece);
      for (let j = 0; j < bytes.length; j++) out.push(spmByteToken(vocab, bytes[j]));
      return;
    }
    resegment(syms[split[0]]);
    resegment(syms[split[1]]);
  };

  for (let i = 0; i !== -1; i = syms[i].next) resegment(syms[i]);
}
