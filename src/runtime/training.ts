// Training data for a base model: its own tokenizer (the wasm engine's, as llama.cpp tokenizes) and chat template turn data files into sequences; a held-out part for the eval loss.
import { TrainInputError } from "../errors.js";
import { mulberry32 } from "../random.js";
import type { GgufFile } from "../gguf/reader.js";
import { createTokenizer, vocabFromMetadata } from "../backends/wasm/tokenizer/index.js";
import { readDataFile, toSequences, type TextFormatter } from "../train/data.js";
import type { TrainSequence } from "../train/reference/model.js";
import { ChatTemplate } from "./chat-template.js";

/** The model's tokenizer and chat template as the training data needs them. */
export function textFormatterFor(model: GgufFile): TextFormatter {
  const tok = createTokenizer(vocabFromMetadata(model, model.path));
  const template = ChatTemplate.fromGguf(model);
  const eos = tok.vocab.eosId;
  return {
    tokenize: (text, bos, special) => tok.tokenize(text, { addSpecial: bos, parseSpecial: special }),
    eos: eos === null ? undefined : eos,
    renderChat: template ? (messages, gen) => template.render(messages, gen) : undefined,
  };
}

export interface TrainingDataOptions {
  readonly ctx: number;
  /** Fraction of the training sequences held out for the eval loss (0 <= x < 1), when no eval file is given. */
  readonly evalSplit?: number;
  readonly evalFile?: string;
  readonly seed?: number;
}

/** Training and held-out sequences from data files. */
export function trainingData(model: GgufFile, dataFile: string, o: TrainingDataOptions): { train: TrainSequence[]; eval: TrainSequence[] } {
  const f = textFormatterFor(model);
  const all = toSequences(dataFile, readDataFile(dataFile), f, { ctx: o.ctx });
  if (o.evalFile) return { train: all, eval: toSequences(o.evalFile, readDataFile(o.evalFile), f, { ctx: o.ctx }) };
  const split = o.evalSplit ?? 0;
  if (!(split >= 0 && split < 1)) throw new TrainInputError("training options", "eval-split", `must be at least 0 and below 1, got ${split}`);
  const nEval = Math.floor(all.length * split);
  if (nEval === 0) return { train: all, eval: [] };
  const r = mulberry32(((o.seed ?? 0) ^ 0x5eed) >>> 0);
  const order = all.map((s, i) => ({ s, k: r(), i })).sort((a, b) => a.k - b.k || a.i - b.i);
  const held = new Set(order.slice(0, nEval).map((x) => x.i));
  return { train: all.filter((_, i) => !held.has(i)), eval: all.filter((_, i) => held.has(i)) };
}
