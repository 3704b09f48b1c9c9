// Where an aLoRA adapter starts acting: the start of the last occurrence of its invocation sequence in the tokens.

/**
 * The index in `tokens` where the last occurrence of `invocation` starts, or undefined when it does not occur
 * (then an aLoRA adapter stays inactive: the text is the base's). Tokens before that index are evaluated
 * with the base weights (their KV cache is the base's and can be kept across adapter switches); the
 * invocation tokens and everything after them are evaluated with the adapter.
 *
 * This is PEFT's rule (the adapter's mask covers the invocation sequence and what follows it) and the one
 * llama-server states. Two differences from llama-server's code (node-llama-cpp 3.21.1's llama.cpp): its
 * backward scan does not re-test a token after a partial match fails, so it misses an occurrence followed by
 * a repeat of the sequence's last token ([a, b] in [a, b, b]) and can then report an earlier one; and it
 * turns the adapter on one token early, at index start - 1. Here every occurrence is found, and the start is
 * the first invocation token. An empty `invocation` never occurs.
 */
export function lastInvocationStart(tokens: ArrayLike<number>, invocation: ArrayLike<number>): number | undefined {
  const n = invocation.length;
  if (n === 0) return undefined;
  for (let start = tokens.length - n; start >= 0; start--) {
    let k = 0;
    while (k < n && tokens[start + k] === invocation[k]) k++;
    if (k === n) return start;
  }
  return undefined;
}
