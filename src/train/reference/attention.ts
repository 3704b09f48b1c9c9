// f64 causal grouped-query attention (softmax(q k^T / sqrt(d)) v per head, row t over positions 0..t) and its backward pass.

export interface AttentionShape {
  readonly T: number;
  readonly nHead: number;
  /** Key/value heads: query head h reads KV head floor(h / (nHead / nHeadKv)), as ggml broadcasts them. */
  readonly nHeadKv: number;
  readonly headDim: number;
}

function kvHead(s: AttentionShape, h: number): number {
  return Math.floor(h / (s.nHead / s.nHeadKv));
}

/**
 * out[t, h] = sum_{j <= t} p[h, t, j] v[j, kvHead(h)] with p = softmax_j(q[t, h] . k[j, kvHead(h)] / sqrt(headDim)).
 * Returns p (nHead x T x T, zero above the diagonal) for the backward pass.
 */
export function attention(out: Float64Array, q: Float64Array, k: Float64Array, v: Float64Array, s: AttentionShape): Float64Array {
  const { T, nHead, headDim: d } = s;
  const qw = nHead * d, kw = s.nHeadKv * d;
  const scale = 1 / Math.sqrt(d);
  const probs = new Float64Array(nHead * T * T);
  for (let h = 0; h < nHead; h++) {
    const kh = kvHead(s, h) * d;
    for (let t = 0; t < T; t++) {
      const p = (h * T + t) * T;
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[t * qw + h * d + i] * k[j * kw + kh + i];
        probs[p + j] = dot * scale;
        max = Math.max(max, probs[p + j]);
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) sum += probs[p + j] = Math.exp(probs[p + j] - max);
      for (let j = 0; j <= t; j++) probs[p + j] /= sum;
      for (let i = 0; i < d; i++) {
        let acc = 0;
        for (let j = 0; j <= t; j++) acc += probs[p + j] * v[j * kw + kh + i];
        out[t * qw + h * d + i] = acc;
      }
    }
  }
  return probs;
}

/**
 * dq, dk, dv += the gradients through attention, from dout and the forward's q, k, v and probabilities:
 * dv_j += p_tj dout_t; dp_tj = dout_t . v_j; ds_tj = p_tj (dp_tj - sum_j p_tj dp_tj);
 * dq_t += ds_tj k_j / sqrt(d); dk_j += ds_tj q_t / sqrt(d).
 */
export function attentionBackward(
  dq: Float64Array, dk: Float64Array, dv: Float64Array, dout: Float64Array,
  q: Float64Array, k: Float64Array, v: Float64Array, probs: Float64Array, s: AttentionShape,
): void {
  const { T, nHead, headDim: d } = s;
  const qw = nHead * d, kw = s.nHeadKv * d;
  const scale = 1 / Math.sqrt(d);
  const dp = new Float64Array(T);
  for (let h = 0; h < nHead; h++) {
    const kh = kvHead(s, h) * d;
    for (let t = 0; t < T; t++) {
      const p = (h * T + t) * T, qo = t * qw + h * d;
      let sum = 0;
      for (let j = 0; j <= t; j++) {
        let dot = 0;
        for (let i = 0; i < d; i++) {
          dot += dout[qo + i] * v[j * kw + kh + i];
          dv[j * kw + kh + i] += probs[p + j] * dout[qo + i];
        }
        dp[j] = dot;
        sum += probs[p + j] * dot;
      }
      for (let j = 0; j <= t; j++) {
        const ds = probs[p + j] * (dp[j] - sum) * scale;
        for (let i = 0; i < d; i++) {
          dq[qo + i] += ds * k[j * kw + kh + i];
          dk[j * kw + kh + i] += ds * q[qo + i];
        }
      }
    }
  }
}
