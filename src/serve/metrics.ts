// GET /metrics: the scheduler's queue, sequences, tokens, swaps and latency histograms in Prometheus' text format.
import type { Histogram } from "../runtime/latency.js";
import type { SchedulerStats } from "../runtime/scheduler.js";

const label = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const setLabel = (key: string) => label(key === "" ? "base" : key);

function metric(out: string[], name: string, type: "gauge" | "counter", help: string, samples: [string, number][]): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, v] of samples) out.push(`${name}${labels} ${v}`);
}

function histogram(out: string[], name: string, help: string, h: Histogram): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  h.bounds.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${h.counts[i]}`));
  out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
}

/** The exposition text for one scheduler's statistics. */
export function metricsText(s: SchedulerStats): string {
  const out: string[] = [];
  const c = s.counts;
  metric(out, "lora_edge_queue_depth", "gauge", "Requests waiting for a sequence slot.", [["", s.queued]]);
  metric(out, "lora_edge_slots", "gauge", "Sequence slots (requests decoded at once).", [["", s.slots]]);
  metric(out, "lora_edge_active_sequences", "gauge", "Running sequences per adapter set.",
    Object.entries(s.activeBySet).map(([k, n]) => [`{adapters="${setLabel(k)}"}`, n]));
  metric(out, "lora_edge_queued_requests", "gauge", "Waiting requests per adapter set.",
    Object.entries(s.queuedBySet).map(([k, n]) => [`{adapters="${setLabel(k)}"}`, n]));
  metric(out, "lora_edge_requests_total", "counter", "Requests by outcome.", [
    ['{outcome="finished"}', c.finished], ['{outcome="aborted"}', c.aborted], ['{outcome="rejected"}', c.rejected],
  ]);
  metric(out, "lora_edge_prompt_tokens_total", "counter", "Prompt tokens received.", [["", c.promptTokens]]);
  metric(out, "lora_edge_prompt_tokens_reused_total", "counter", "Prompt tokens whose KV states were reused (same adapter set, or computed by the base before an aLoRA invocation).", [["", c.reusedPromptTokens]]);
  metric(out, "lora_edge_prompt_tokens_reused_base_total", "counter", "Reused prompt tokens computed by the base for a request of another adapter set (aLoRA task switches).", [["", c.reusedBaseTokens]]);
  metric(out, "lora_edge_generated_tokens_total", "counter", "Tokens generated.", [["", c.generatedTokens]]);
  metric(out, "lora_edge_decode_steps_total", "counter", "Batched decode steps.", [["", c.steps]]);
  metric(out, "lora_edge_adapter_swaps_total", "counter", "Live adapter swaps between steps.", [["", c.swaps]]);
  metric(out, "lora_edge_kv_parked_total", "counter", "Sequence states parked for later reuse.", [["", c.parked]]);
  metric(out, "lora_edge_kv_restored_total", "counter", "Parked states restored instead of re-evaluating the prompt.", [["", c.restored]]);
  metric(out, "lora_edge_kv_parked_bytes", "gauge", "Bytes of parked states kept.", [["", s.parkedBytes]]);
  metric(out, "lora_edge_turn_tokens", "gauge", "Steps an adapter set keeps its turn while others wait.", [["", s.turnTokens]]);
  metric(out, "lora_edge_decode_step_seconds", "gauge", "Recent mean time of a one-token decode step.", [["", s.stepMs / 1000]]);
  metric(out, "lora_edge_swap_extra_seconds", "gauge", "Recent mean time a live adapter swap adds to the next decode step.", [["", s.swapExtraMs / 1000]]);
  metric(out, "lora_edge_context_memory_bytes", "gauge", "Memory of the serving context (KV cache, compute buffers) and parked states.", [["", s.memoryBytes]]);
  metric(out, "process_resident_memory_bytes", "gauge", "Resident memory of the server process.", [["", process.memoryUsage().rss]]);
  histogram(out, "lora_edge_time_to_first_token_seconds", "Time from a request's arrival to its first token.", s.timeToFirstToken);
  histogram(out, "lora_edge_time_per_output_token_seconds", "Mean time between a request's tokens after the first.", s.timePerOutputToken);
  return out.join("\n") + "\n";
}
