// f64 cross-entropy of next-token logits over the vocabulary (log-sum-exp minus the target's logit) and its gradient.

/** -log softmax(logits)[target] for one row of n logits starting at `o`. */
export function crossEntropy(logits: Float64Array, o: number, n: number, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[o + i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[o + i] - max);
  return max + Math.log(sum) - logits[o + target];
}

/** dlogits[o..o+n) += weight * (softmax(logits) - onehot(target)): the gradient of weight * crossEntropy. */
export function crossEntropyBackward(dlogits: Float64Array, logits: Float64Array, o: number, n: number, target: number, weight: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[o + i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[o + i] - max);
  for (let i = 0; i < n; i++) dlogits[o + i] += (weight * Math.exp(logits[o + i] - max)) / sum;
  dlogits[o + target] -= weight;
}
