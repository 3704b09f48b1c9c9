// The training engine's f32 element-wise and attention operations, forward and backward (values stored in f32, sums in f64), mirroring src/train/reference/.

/** RMSNorm of T rows of n values into y; writes each row's 1 / rms into inv. */
export function rmsnorm(y: Float32Array, inv: Float32Array, x: Float32Array, w: Float32Array, T: number, n: number, eps: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const r = 1 / Math.sqrt(ss / n + eps);
    inv[t] = r;
    for (let i = 0; i < n; i++) y[o + i] = w[i] * x[o + i] * r;
  }
}

/** dx += the gradient through the norm: r w dy - x r^3 (x . w dy) / n per row. */
export function rmsnormBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, w: Float32Array, inv: Float32Array, T: number, n: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * n, r = inv[t];
    let dot = 0;
    for (let i = 0; i < n; i++) dot += x[o + i] * w[i] * dy[o + i];
    const c = (r * r * r * dot) / n;
    for (let i = 0; i < n; i++) dx[o + i] += r * w[i] * dy[o + i] - c * x[o + i];
  }
}

export interface RopeTable {
  readonly cos: Float64Array;
  readonly sin: Float64Array;
  readonly half: number;
}

/** cos and sin of theta_i = t freqScale base^(-2i / ropeDims) for positions t < maxT (as ggml's rope). */
export function ropeTable(maxT: number, ropeDims: number, base: number, freqScale: number): RopeTable {
  const half = ropeDims / 2;
  const cos = new Float64Array(maxT * half), sin = new Float64Array(maxT * half);
  for (let t = 0; t < maxT; t++) {
    for (let i = 0; i < half; i++) {
      const theta = t * freqScale * Math.pow(base, (-2 * i) / ropeDims);
      cos[t * half + i] = Math.cos(theta);
      sin[t * half + i] = Math.sin(theta);
    }
  }
  return { cos, sin, half };
}

/** Rotates T rows of nHeads heads (row t at position t) by +angle, or by -angle for the backward pass. */
export function rope(x: Float32Array, T: number, nHeads: number, headDim: number, neox: boolean, tab: RopeTable, sign: 1 | -1): void {
  const half = tab.half, width = nHeads * headDim;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const o = t * width + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = tab.cos[t * half + i], s = sign * tab.sin[t * half + i];
        const i0 = neox ? o + i : o + 2 * i, i1 = neox ? o + i + half : o + 2 * i + 1;
        const x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
      }
    }
  }
}

export interface AttentionShape {
  readonly T: number;
  readonly nHead: number;
  readonly nHeadKv: number;
  readonly headDim: number;
}

/** Causal grouped-query attention; writes probabilities (nHead x T x T, row t over 0..t) for the backward pass. */
export function attention(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape): void {
  const { T, nHead, headDim: d } = s;
  const qw = nHead * d, kw = s.nHeadKv * d, group = nHead / s.nHeadKv;
  const scale = 1 / Math.sqrt(d);
  const row = new Float64Array(T);
  for (let h = 0; h < nHead; h++) {
    const kh = Math.floor(h / group) * d;
    for (let t = 0; t < T; t++) {
      const p = (h * T + t) * T, qo = t * qw + h * d;
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        let dot = 0;
        const ko = j * kw + kh;
        for (let i = 0; i < d; i++) dot += q[qo + i] * k[ko + i];
        row[j] = dot * scale;
        if (row[j] > max) max = row[j];
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) sum += row[j] = Math.exp(row[j] - max);
      for (let j = 0; j <= t; j++) probs[p + j] = row[j] / sum;
      for (let i = 0; i < d; i++) {
        let acc = 0;
        for (let j = 0; j <= t; j++) acc += (row[j] / sum) * v[j * kw + kh + i];
        out[qo + i] = acc;
      }
    }
  }
}

/** dq, dk, dv += the gradients through attention (see the reference's attentionBackward). */
export function attentionBackward(
  dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array, s: AttentionShape,
): void {
  const { T, nHead, headDim: d } = s;
  const qw = nHead * d, kw = s.nHeadKv * d, group = nHead / s.nHeadKv;
  const scale = 1 / Math.sqrt(d);
  const dp = new Float64Array(T);
  const dqRow = new Float64Array(d);
  for (let h = 0; h < nHead; h++) {
    const kh = Math.floor(h / group) * d;
    for (let t = 0; t < T; t++) {
      const p = (h * T + t) * T, qo = t * qw + h * d;
      let sum = 0;
      for (let j = 0; j <= t; j++) {
        const vo = j * kw + kh, pj = probs[p + j];
        let dot = 0;
        for (let i = 0; i < d; i++) {
          dot += dout[qo + i] * v[vo + i];
          dv[vo + i] += pj * dout[qo + i];
        }
        dp[j] = dot;
        sum += pj * dot;
      }
      dqRow.fill(0);
      for (let j = 0; j <= t; j++) {
        const ds = probs[p + j] * (dp[j] - sum) * scale, ko = j * kw + kh;
        for (let i = 0; i < d; i++) {
          dqRow[i] += ds * k[ko + i];
          dk[ko + i] += ds * q[qo + i];
        }
      }
      for (let i = 0; i < d; i++) dq[qo + i] += dqRow[i];
    }
  }
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** h = silu(g) u. */
export function swiglu(h: Float32Array, g: Float32Array, u: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) h[i] = g[i] * sigmoid(g[i]) * u[i];
}

/** dg = dh u silu'(g), du = dh silu(g) (written, not added). */
export function swigluBackward(dg: Float32Array, du: Float32Array, dh: Float32Array, g: Float32Array, u: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = sigmoid(g[i]);
    dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] = dh[i] * g[i] * s;
  }
}

/**
 * Cross-entropy of one row of n logits at `o` against `target`; when dlogits is given, writes weight * (softmax -
 * onehot) into it at the same place. Returns the loss.
 */
export function crossEntropy(logits: Float32Array, o: number, n: number, target: number, dlogits?: Float32Array, weight = 1): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[o + i] > max) max = logits[o + i];
  let sum = 0;
  if (dlogits) {
    // each exponential once: kept in dlogits, then scaled
    for (let i = 0; i < n; i++) sum += dlogits[o + i] = Math.exp(logits[o + i] - max);
    const k = weight / sum;
    for (let i = 0; i < n; i++) dlogits[o + i] *= k;
    dlogits[o + target] -= weight;
  } else {
    for (let i = 0; i < n; i++) sum += Math.exp(logits[o + i] - max);
  }
  return max + Math.log(sum) - logits[o + target];
}
