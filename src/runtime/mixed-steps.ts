// Mixed-set steps: every running sequence, whatever its adapter set, advanced by one Backend.decodeBatch call per step.
import type { Backend, BackendBatchContext, BackendSequence, DecodeStep, SamplingOptions } from "../backends/backend.js";

interface Pending {
  /** Tokens the next step evaluates: the prompt (the part not cached) first, then the last sampled token. */
  tokens: readonly number[];
  sampling: SamplingOptions;
  /** True until the first step: seeded sampling starts its random stream there. */
  restart: boolean;
}

/**
 * Drives the sequences of a batch context that takes mixed sets (`mixedBatch`) through `Backend.decodeBatch`:
 * `begin` records a generation's prompt, `advance` evaluates one step of several sequences in shared forward
 * passes and returns each one's next token. Counts calls and rows, so callers can see the batching happen.
 */
export class MixedSteps {
  private readonly pending = new Map<BackendSequence, Pending>();
  /** decodeBatch calls made and the sequence steps they carried (a lone retry counts as a call of one). */
  calls = 0;
  rows = 0;

  private constructor(private readonly decodeBatch: (steps: readonly DecodeStep[]) => Promise<number[]>) {}

  /** Steps for `ctx`, or null when its backend cannot batch mixed sets (each sequence then advances itself). */
  static for(backend: Backend, ctx: BackendBatchContext): MixedSteps | null {
    if (!ctx.mixedBatch || !backend.decodeBatch) return null;
    return new MixedSteps((steps) => backend.decodeBatch!(steps));
  }

  /** Start a generation on `seq`: `tokens` (after its cached ones) are evaluated by its next step. */
  begin(seq: BackendSequence, tokens: readonly number[], sampling: SamplingOptions): void {
    if (!seq.context) throw new Error("this sequence has no context to batch");
    if (this.pending.has(seq)) throw new Error("a generation is already running on this sequence");
    this.pending.set(seq, { tokens: [...tokens], sampling, restart: true });
  }

  /**
   * One step of every sequence given, in one decodeBatch call. When the call fails before anything ran, each
   * sequence is stepped alone so that only the faulty one fails.
   */
  async advance(seqs: readonly BackendSequence[]): Promise<PromiseSettledResult<number>[]> {
    const steps = seqs.map((seq) => {
      const p = this.pending.get(seq);
      if (!p) throw new Error("no generation on this sequence");
      return { context: seq.context!, tokens: p.tokens, sampling: p.sampling, restart: p.restart };
    });
    const cached = seqs.map((s) => s.cachedTokens.length);
    let settled: PromiseSettledResult<number>[];
    try {
      settled = (await this.call(steps)).map((value) => ({ status: "fulfilled", value }));
    } catch (reason) {
      const untouched = seqs.every((s, i) => s.cachedTokens.length === cached[i]);
      if (steps.length === 1 || !untouched) settled = steps.map(() => ({ status: "rejected", reason }));
      else {
        settled = [];
        for (const step of steps) {
          try {
            settled.push({ status: "fulfilled", value: (await this.call([step]))[0] });
          } catch (e) {
            settled.push({ status: "rejected", reason: e });
          }
        }
      }
    }
    settled.forEach((r, i) => {
      if (r.status === "fulfilled") this.pending.set(seqs[i], { tokens: [r.value], sampling: steps[i].sampling, restart: false });
    });
    return settled;
  }

  /** End `seq`'s generation; its last sampled token stays unevaluated. */
  end(seq: BackendSequence): void {
    this.pending.delete(seq);
  }

  private async call(steps: readonly DecodeStep[]): Promise<number[]> {
    this.calls++;
    this.rows += steps.length;
    return this.decodeBatch(steps);
  }
}
