// Tokenizer facade: special-token partitioning, BOS/EOS and space-prefix rules, dispatch to SPM or BPE.

import { bpeTokenize } from "./bpe.js";
import { detokenize, detokenizeBytes, tokenPieceBytes, tokenToPiece, type DetokenizeOptions } from "./detokenize.js";
import { spmTokenize } from "./spm.js";
import { utf8Encode, wellFormed } from "./unicode.js";
import { TokenAttr, type TokenizerVocab } from "./vocab.js";

export { TokenAttr, TokenType, VocabError, vocabFromMetadata, supportedBpePreTokenizers } from "./vocab.js";
export type { MetadataSource, TokenizerVocab, VocabKind } from "./vocab.js";
export { StreamDetokenizer } from "./detokenize.js";
export type { DetokenizeOptions } from "./detokenize.js";

export interface TokenizeOptions {
  /** Add BOS/EOS where the vocabulary asks for them (default false, like a plain `tokenize(text)`). */
  addSpecial?: boolean;
  /** Recognise control tokens written in the text, e.g. "<s>" (default false; user-defined tokens always are). */
  parseSpecial?: boolean;
}

type Fragment = string | number; // raw text, or an already-resolved token id

const isSpaceAscii = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

export class Tokenizer {
  /** Special tokens, longest text first (control, user-defined, unknown). */
  private readonly specials: number[];

  constructor(readonly vocab: TokenizerVocab) {
    const mask = TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN;
    const ids: number[] = [];
    for (let i = 0; i < vocab.tokens.length; i++) if (vocab.attrs[i] & mask) ids.push(i);
    const bytes = (id: number): number => utf8Encode(vocab.tokens[id]).length;
    ids.sort((a, b) => bytes(b) - bytes(a) || a - b);
    this.specials = ids;
  }

  get nTokens(): number {
    return this.vocab.tokens.length;
  }

  /** Text to token ids, as the reference runtime's tokenizer produces them. */
  tokenize(text: string, opts: TokenizeOptions = {}): number[] {
    const v = this.vocab;
    const addSpecial = opts.addSpecial ?? false;
    const fragments = text.length > 0 ? this.partition(wellFormed(text), opts.parseSpecial ?? false) : [];
    if (addSpecial && ((v.addBos && v.bosId === null) || (v.addEos && v.eosId === null))) {
      throw new Error("tokenizer: the vocabulary asks for a BOS/EOS token it does not have");
    }
    const out: number[] = [];
    if (addSpecial && v.addBos) out.push(v.bosId as number);
    if (v.kind === "spm") {
      let prevSpecial = true; // the first text fragment gets the space prefix
      for (const f of fragments) {
        if (typeof f === "number") {
          out.push(f);
          prevSpecial = true;
          continue;
        }
        const t = (v.addSpacePrefix && prevSpecial ? " " : "") + f;
        spmTokenize(v, t.replaceAll(" ", "\u2581"), out);
        prevSpecial = false;
      }
    } else {
      for (const f of fragments) {
        if (typeof f === "number") out.push(f);
        else bpeTokenize(v, f, out);
      }
    }
    if (addSpecial && v.addEos) out.push(v.eosId as number);
    return out;
  }

  /** Splits text around special tokens; control/unknown ones only when `parseSpecial`. */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let frags: Fragment[] = [text];
    const v = this.vocab;
    for (const id of this.specials) {
      const attr = v.attrs[id];
      if (!parseSpecial && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
      const tok = v.tokens[id];
      const next: Fragment[] = [];
      for (const f of frags) {
        if (typeof f === "number") {
          next.push(f);
          continue;
        }
        let rest = f;
        for (;;) {
          const at = rest.indexOf(tok);
          if (at < 0) {
            if (rest.length > 0) next.push(rest);
            break;
          }
          let leftEnd = at;
          if (attr & TokenAttr.LSTRIP) while (leftEnd > 0 && isSpaceAscii(rest.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > 0) next.push(rest.slice(0, leftEnd));
          next.push(id);
          let rightStart = at + tok.length;
          if (attr & TokenAttr.RSTRIP) while (rightStart < rest.length && isSpaceAscii(rest.charCodeAt(rightStart))) rightStart++;
          rest = rest.slice(rightStart);
          if (rest.length === 0) break;
        }
      }
      frags = next;
    }
    return frags;
  }

  /** Token ids to text. */
  detokenize(ids: readonly number[], opts: DetokenizeOptions = {}): string {
    return detokenize(this.vocab, ids, opts);
  }

  /** Token ids to raw bytes (pieces may split UTF-8 sequences; join bytes before decoding). */
  detokenizeBytes(ids: readonly number[], opts: DetokenizeOptions = {}): Uint8Array {
    return detokenizeBytes(this.vocab, ids, opts);
  }

  /** One token's text; control/unknown tokens are empty unless `special`. */
  tokenToPiece(id: number, special = false): string {
    return tokenToPiece(this.vocab, id, special);
  }

  /** One token's raw bytes. */
  tokenPieceBytes(id: number, special = false): Uint8Array {
    return tokenPieceBytes(this.vocab, id, special);
  }
}

/** Convenience: a tokenizer for a vocabulary. */
export function createTokenizer(vocab: TokenizerVocab): Tokenizer {
  return new Tokenizer(vocab);
}
