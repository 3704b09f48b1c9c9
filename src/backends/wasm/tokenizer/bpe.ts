// GPT-2 byte-level BPE tokenization of one text fragment: pre-tokenize, byte-encode, merge by rank.

import { Heap } from "./heap.js";
import { preTokenize } from "./pretokenize.js";
import { byteEncode, utf8Encode } from "./unicode.js";
import { mergeKey, type TokenizerVocab } from "./vocab.js";

interface Sym {
  prev: number;
  next: number;
  start: number;
  /** Length in UTF-16 units; 0 once merged into its left neighbour. */
  len: number;
}

interface Bigram {
  left: number;
  right: number;
  text: string;
  rank: number;
}

/** Lower rank first; on equal ranks the leftmost pair first. */
const before = (a: Bigram, b: Bigram): boolean => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

/** Merges one byte-encoded word and appends the resulting token ids. */
function bpeWord(vocab: TokenizerVocab, word: string, out: number[]): void {
  if (vocab.ignoreMerges) {
    const whole = vocab.tokenToId.get(word);
    if (whole !== undefined) {
      out.push(whole);
      return;
    }
  }
  const syms: Sym[] = [];
  for (let i = 0; i < word.length; ) {
    const c = word.charCodeAt(i);
    const n = c >= 0xd800 && c < 0xdc00 && i + 1 < word.length ? 2 : 1;
    const idx = syms.length;
    syms.push({ prev: idx - 1, next: i + n === word.length ? -1 : idx + 1, start: i, len: n });
    i += n;
  }
  const text = (s: Sym): string => word.substr(s.start, s.len);
  const queue = new Heap<Bigram>(before);
  const tryAdd = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const l = text(syms[left]);
    const r = text(syms[right]);
    const rank = vocab.mergeRanks.get(mergeKey(l, r));
    if (rank === undefined) return;
    queue.push({ left, right, text: l + r, rank });
  };
  for (let i = 1; i < syms.length; i++) tryAdd(i - 1, i);

  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    const l = syms[b.left];
    const r = syms[b.right];
    if (l.len === 0 || r.len === 0) continue;
    if (text(l) + text(r) !== b.text) continue; // outdated pair
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    tryAdd(l.prev, b.left);
    tryAdd(b.left, l.next);
  }

  for (const s of syms) {
    if (s.len === 0) continue;
    const piece = text(s);
    const id = vocab.tokenToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    // not a token: fall back to single-byte tokens; bytes without one are dropped
    const bytes = utf8Encode(piece);
    for (let j = 0; j < bytes.length; j++) {
      if (bytes[j] >= 0x80) continue; // a lone non-ASCII byte is never a (valid UTF-8) token
      const bid = vocab.tokenToId.get(String.fromCharCode(bytes[j]));
      if (bid !== undefined) out.push(bid);
    }
  }
}

/** Tokenizes a raw text fragment (no special tokens inside) and appends the ids to `out`. */
export function bpeTokenize(vocab: TokenizerVocab, text: string, out: number[]): void {
  for (const w of preTokenize(vocab.preFamily, text)) bpeWord(vocab, byteEncode(w), out);
}
