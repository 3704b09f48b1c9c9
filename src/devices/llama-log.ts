// Reads the buffer sizes llama.cpp logs (model, KV cache, compute, output) to measure what it allocated.

/** MiB figures llama.cpp prints, summed per kind over all backends (CPU, CUDA0, Metal, ...). */
export interface LlamaBufferSizes {
  modelBytes: number;
  kvBytes: number;
  computeBytes: number;
  outputBytes: number;
  loraBytes: number;
  /** Per backend, e.g. { "CPU compute": 66584576 }. */
  detail: Record<string, number>;
}

const MiB = 1024 * 1024;

/**
 * Parses llama.cpp log text. Only the last occurrence per backend and kind counts, so a log that holds
 * several contexts should be cut to the part of the one of interest first.
 */
export function parseBufferSizes(log: string): LlamaBufferSizes {
  const detail: Record<string, number> = {};
  const re = /(load_tensors|llama_kv_cache|llama_context|sched_reserve|llama_adapter_lora_init_impl):\s+(\S+)\s+(model|KV|compute|output|LoRA) buffer size =\s+([\d.]+) MiB/g;
  for (const m of log.matchAll(re)) detail[`${m[2]} ${m[3]}`] = Math.round(Number(m[4]) * MiB);
  const sum = (kind: string) => Object.entries(detail).filter(([k]) => k.endsWith(` ${kind}`)).reduce((s, [, v]) => s + v, 0);
  return { modelBytes: sum("model"), kvBytes: sum("KV"), computeBytes: sum("compute"), outputBytes: sum("output"), loraBytes: sum("LoRA"), detail };
}

/** Collects llama.cpp log messages (node-llama-cpp's `logger` option) and waits for a line to show up. */
export class LlamaLogCollector {
  private parts: string[] = [];
  readonly logger = (_level: unknown, message: string): void => { this.parts.push(message); };

  /** Everything logged since the last `clear()`. */
  text(): string {
    return this.parts.join("\n");
  }

  clear(): void {
    this.parts = [];
  }

  /** Resolves when `re` matches the collected text (log lines arrive asynchronously), or after `timeoutMs`. */
  async waitFor(re: RegExp, timeoutMs = 2000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (re.test(this.text())) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return re.test(this.text());
  }
}
