// Training's f32 element-wise and attention kernels (RMSNorm, SwiGLU, causal GQA attention, cross-entropy), forward and backward, on row or head ranges so the pool can share them out.

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** Dot product of n f32 at a and b: four lanes, then the tail. */
// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  let s = hsum(acc);
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** y[0..n) += s x[0..n). */
// @ts-ignore: decorator
@inline function axpy(y: usize, x: usize, s: f32, n: i32): void {
  const sv = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(sv, v128.load(x + o))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + s * load<f32>(x + o));
  }
}

/** Rows t0..t1 of RMSNorm: y = w x r with r = 1 / sqrt(mean(x^2) + eps) written to inv[t]. */
export function train_rmsnorm(y: usize, inv: usize, x: usize, w: usize, n: i32, eps: f32, t0: i32, t1: i32): void {
  for (let t = t0; t < t1; t++) {
    const o = <usize>t * n << 2;
    const r: f32 = 1 / Mathf.sqrt(dot(x + o, x + o, n) / <f32>n + eps);
    store<f32>(inv + (<usize>t << 2), r);
    const rv = f32x4.splat(r);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const b = <usize>i << 2;
      v128.store(y + o + b, f32x4.mul(f32x4.mul(v128.load(w + b), v128.load(x + o + b)), rv));
    }
    for (; i < n; i++) {
      const b = <usize>i << 2;
      store<f32>(y + o + b, load<f32>(w + b) * load<f32>(x + o + b) * r);
    }
  }
}

/** Rows t0..t1: dx += r w dy - x r^3 (x . w dy) / n. */
export function train_rmsnorm_back(dx: usize, dy: usize, x: usize, w: usize, inv: usize, n: i32, t0: i32, t1: i32): void {
  for (let t = t0; t < t1; t++) {
    const o = <usize>t * n << 2;
    const r = load<f32>(inv + (<usize>t << 2));
    let acc = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const b = <usize>i << 2;
      acc = f32x4.add(acc, f32x4.mul(v128.load(x + o + b), f32x4.mul(v128.load(w + b), v128.load(dy + o + b))));
    }
    let d = hsum(acc);
    for (; i < n; i++) {
      const b = <usize>i << 2;
      d += load<f32>(x + o + b) * load<f32>(w + b) * load<f32>(dy + o + b);
    }
    const c: f32 = (r * r * r * d) / <f32>n;
    const rv = f32x4.splat(r), cv = f32x4.splat(c);
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const b = <usize>i << 2;
      const g = f32x4.sub(f32x4.mul(rv, f32x4.mul(v128.load(w + b), v128.load(dy + o + b))), f32x4.mul(cv, v128.load(x + o + b)));
      v128.store(dx + o + b, f32x4.add(v128.load(dx + o + b), g));
    }
    for (; i < n; i++) {
      const b = <usize>i << 2;
      store<f32>(dx + o + b, load<f32>(dx + o + b) + (r * load<f32>(w + b) * load<f32>(dy + o + b) - c * load<f32>(x + o + b)));
    }
  }
}

// @ts-ignore: decorator
@inline function sigmoid(x: f32): f32 {
  return 1 / (1 + Mathf.exp(-x));
}

/** Elements i0..i1: h = silu(g) u. */
export function train_swiglu(h: usize, g: usize, u: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const b = <usize>i << 2;
    const gi = load<f32>(g + b);
    store<f32>(h + b, gi * sigmoid(gi) * load<f32>(u + b));
  }
}

/** Elements i0..i1: dg = dh u silu'(g), du = dh silu(g) (written). */
export function train_swiglu_back(dg: usize, du: usize, dh: usize, g: usize, u: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const b = <usize>i << 2;
    const gi = load<f32>(g + b), d = load<f32>(dh + b), s = sigmoid(gi);
    store<f32>(dg + b, d * load<f32>(u + b) * s * (1 + gi * (1 - s)));
    store<f32>(du + b, d * gi * s);
  }
}

/**
 * Causal grouped-query attention for heads h0..h1 over T positions (head h reads kv head h / (nHead / nHeadKv));
 * probs (nHead x T x T, row t over 0..t) is written and serves as the row's score buffer.
 */
export function train_attention(out: usize, probs: usize, q: usize, k: usize, v: usize, T: i32, nHead: i32, nHeadKv: i32, d: i32, h0: i32, h1: i32): void {
  const qw = nHead * d, kw = nHeadKv * d, group = nHead / nHeadKv;
  const scale: f32 = 1 / Mathf.sqrt(<f32>d);
  for (let h = h0; h < h1; h++) {
    const kh = (h / group) * d;
    for (let t = 0; t < T; t++) {
      const p = probs + ((<usize>(h * T + t) * T) << 2), qo = q + ((<usize>(t * qw + h * d)) << 2);
      let max: f32 = -Infinity;
      for (let j = 0; j <= t; j++) {
        const s = dot(qo, k + ((<usize>(j * kw + kh)) << 2), d) * scale;
        store<f32>(p + (<usize>j << 2), s);
        if (s > max) max = s;
      }
      let sum: f32 = 0;
      for (let j = 0; j <= t; j++) {
        const e = Mathf.exp(load<f32>(p + (<usize>j << 2)) - max);
        store<f32>(p + (<usize>j << 2), e);
        sum += e;
      }
      const k1: f32 = 1 / sum;
      for (let j = 0; j <= t; j++) store<f32>(p + (<usize>j << 2), load<f32>(p + (<usize>j << 2)) * k1);
      const oo = out + ((<usize>(t * qw + h * d)) << 2);
      memory.fill(oo, 0, <usize>d << 2);
      for (let j = 0; j <= t; j++) axpy(oo, v + ((<usize>(j * kw + kh)) << 2), load<f32>(p + (<usize>j << 2)), d);
    }
  }
}

/**
 * dq, dk, dv += the gradients through attention for heads h0..h1, which must hold whole kv groups (their dk and dv
 * rows are written by no other range). dp: T f32 of scratch.
 */
export function train_attention_back(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize, probs: usize, T: i32, nHead: i32, nHeadKv: i32, d: i32, h0: i32, h1: i32, dp: usize): void {
  const qw = nHead * d, kw = nHeadKv * d, group = nHead / nHeadKv;
  const scale: f32 = 1 / Mathf.sqrt(<f32>d);
  for (let h = h0; h < h1; h++) {
    const kh = (h / group) * d;
    for (let t = 0; t < T; t++) {
      const p = probs + ((<usize>(h * T + t) * T) << 2), qo = (<usize>(t * qw + h * d)) << 2;
      let sum: f32 = 0;
      for (let j = 0; j <= t; j++) {
        const vo = (<usize>(j * kw + kh)) << 2, pj = load<f32>(p + (<usize>j << 2));
        const dd = dot(dout + qo, v + vo, d);
        axpy(dv + vo, dout + qo, pj, d);
        store<f32>(dp + (<usize>j << 2), dd);
        sum += pj * dd;
      }
      for (let j = 0; j <= t; j++) {
        const ds = load<f32>(p + (<usize>j << 2)) * (load<f32>(dp + (<usize>j << 2)) - sum) * scale, ko = (<usize>(j * kw + kh)) << 2;
        axpy(dq + qo, k + ko, ds, d);
        axpy(dk + ko, q + qo, ds, d);
      }
    }
  }
}

/**
 * e^x for x <= 0 in four lanes (Cephes' single-precision method): x = n ln2 + r with |r| <= ln2 / 2, e^r by a
 * degree-7 polynomial, times 2^n built in the exponent bits. Relative error within 2e-7 over [-87, 0]; below -87
 * the value is e^-87 (1.6e-38), a softmax weight that no f32 sum can see.
 */
// @ts-ignore: decorator
@inline function expNonPositive(x: v128): v128 {
  const xc = f32x4.max(x, f32x4.splat(-87));
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504088896341)));
  // ln2 in two parts (the first exact in few bits): r = x - n ln2 without cancellation
  const r = f32x4.sub(f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

/** The same in one lane (the tails of rows whose length is no multiple of four). */
// @ts-ignore: decorator
@inline function expNonPositive1(x: f32): f32 {
  return f32x4.extract_lane(expNonPositive(f32x4.splat(x)), 0);
}

/** f64 sum of the four lanes added to two f64x2 accumulators' worth: returns acc + the lanes (low pair, high pair). */
// @ts-ignore: decorator
@inline function addLanesF64(acc: v128, v: v128): v128 {
  return f64x2.add(f64x2.add(acc, f64x2.promote_low_f32x4(v)), f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
}

/**
 * Cross-entropy of rows t0..t1 of n logits against targets (i32 per row) with weights (f32 per row; 0 skips the
 * row); losses[t] gets the row's loss (0 when skipped). With dlogits != 0 (it may be logits itself) each row gets
 * weight (softmax - onehot), and zeros when skipped. The exponentials run four at a time (expNonPositive); their
 * sum is kept in f64.
 */
export function train_cross_entropy(logits: usize, dlogits: usize, n: i32, targets: usize, weights: usize, losses: usize, t0: i32, t1: i32): void {
  for (let t = t0; t < t1; t++) {
    const o = (<usize>t * n) << 2, l = logits + o;
    const weight = load<f32>(weights + (<usize>t << 2));
    if (weight == 0) {
      store<f64>(losses + (<usize>t << 3), 0);
      if (dlogits) memory.fill(dlogits + o, 0, <usize>n << 2);
      continue;
    }
    const target = load<i32>(targets + (<usize>t << 2));
    let mv = f32x4.splat(<f32>-Infinity);
    let i = 0;
    for (; i + 4 <= n; i += 4) mv = f32x4.max(mv, v128.load(l + (<usize>i << 2)));
    let max = Mathf.max(Mathf.max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), Mathf.max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; i < n; i++) max = Mathf.max(max, load<f32>(l + (<usize>i << 2)));
    const lt = load<f32>(l + (<usize>target << 2));
    const mx = f32x4.splat(max);
    let acc = f64x2.splat(0);
    let sum: f64 = 0;
    if (dlogits) {
      const dl = dlogits + o;
      for (i = 0; i + 4 <= n; i += 4) {
        const b = <usize>i << 2;
        const e = expNonPositive(f32x4.sub(v128.load(l + b), mx));
        v128.store(dl + b, e);
        acc = addLanesF64(acc, e);
      }
      for (; i < n; i++) {
        const e = expNonPositive1(load<f32>(l + (<usize>i << 2)) - max);
        store<f32>(dl + (<usize>i << 2), e);
        sum += e;
      }
      sum += f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
      const kv = f32x4.splat(<f32>(<f64>weight / sum));
      i = 0;
      for (; i + 4 <= n; i += 4) v128.store(dl + (<usize>i << 2), f32x4.mul(v128.load(dl + (<usize>i << 2)), kv));
      for (; i < n; i++) store<f32>(dl + (<usize>i << 2), load<f32>(dl + (<usize>i << 2)) * <f32>(<f64>weight / sum));
      store<f32>(dl + (<usize>target << 2), load<f32>(dl + (<usize>target << 2)) - weight);
    } else {
      for (i = 0; i + 4 <= n; i += 4) acc = addLanesF64(acc, expNonPositive(f32x4.sub(v128.load(l + (<usize>i << 2)), mx)));
      for (; i < n; i++) sum += expNonPositive1(load<f32>(l + (<usize>i << 2)) - max);
      sum += f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
    }
    store<f64>(losses + (<usize>t << 3), <f64>max + Math.log(sum) - <f64>lt);
  }
}

/**
 * n draws of mulberry32 (src/random.ts) from the 32-bit state at `state` (updated), each stored as
 * f32((2u - 1) * range) with u = draw / 2^32 in f64: the numbers `(2 * rand() - 1) * range` gives in
 * TypeScript, without a boxed number per draw.
 */
export function train_uniform(out: usize, n: i32, state: usize, range: f64): void {
  let a = load<u32>(state);
  for (let i = 0; i < n; i++) {
    a += 0x6d2b79f5;
    let t = a;
    t = (t ^ (t >>> 15)) * (t | 1);
    t ^= t + (t ^ (t >>> 7)) * (t | 61);
    const u = <f64>(t ^ (t >>> 14)) / 4294967296.0;
    store<f32>(out + (<usize>i << 2), <f32>((2 * u - 1) * range));
  }
  store<u32>(state, a);
}

/**
 * Columns c0..c1 of dst (cols x rows) = s * src (rows x cols) transposed, each value f32(s * x) computed in f64
 * (as TypeScript computes it); with inPlace != 0 the scaled values are also written back into src.
 */
export function train_transpose_scale(src: usize, dst: usize, rows: i32, cols: i32, s: f64, inPlace: i32, c0: i32, c1: i32): void {
  for (let r = 0; r < rows; r++) {
    const row = src + ((<usize>r * cols) << 2);
    for (let c = c0; c < c1; c++) {
      const v = <f32>(s * <f64>load<f32>(row + (<usize>c << 2)));
      if (inPlace) store<f32>(row + (<usize>c << 2), v);
      store<f32>(dst + ((<usize>c * rows + r) << 2), v);
    }
  }
}

/**
 * Rows t0..t1 of RoPE on rows of nHeads heads of headDim (row t at position t), rotated by +angle (sign 1) or
 * -angle (-1): pairs (i, i + half) with neox, else (2i, 2i + 1), for i < half; cos and sin are f64 tables of
 * half values a position. In f64, each value stored as f32, as src/train/engine/ops.ts's rope computes it.
 */
export function train_rope(x: usize, nHeads: i32, headDim: i32, neox: i32, cos: usize, sin: usize, half: i32, sign: f64, t0: i32, t1: i32): void {
  const width = nHeads * headDim;
  for (let t = t0; t < t1; t++) {
    const tab = <usize>(t * half) << 3;
    for (let h = 0; h < nHeads; h++) {
      const o = x + ((<usize>(t * width + h * headDim)) << 2);
      for (let i = 0; i < half; i++) {
        const c = load<f64>(cos + tab + (<usize>i << 3)), sn = sign * load<f64>(sin + tab + (<usize>i << 3));
        const p0 = o + ((<usize>(neox ? i : 2 * i)) << 2), p1 = o + ((<usize>(neox ? i + half : 2 * i + 1)) << 2);
        const x0 = <f64>load<f32>(p0), x1 = <f64>load<f32>(p1);
        store<f32>(p0, <f32>(x0 * c - x1 * sn));
        store<f32>(p1, <f32>(x0 * sn + x1 * c));
      }
    }
  }
}

/**
 * Sum of the squares of n f32 values at x, in f64, stored as an f64 at out: four running sums (one per lane of
 * a vector of four), added as (s0 + s1) + (s2 + s3), then the last n % 4 values in order.
 */
export function train_sum_squares(x: usize, n: i32, out: usize): void {
  let lo = f64x2.splat(0), hi = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const a = f64x2.promote_low_f32x4(v), b = f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
    lo = f64x2.add(lo, f64x2.mul(a, a));
    hi = f64x2.add(hi, f64x2.mul(b, b));
  }
  let s = (f64x2.extract_lane(lo, 0) + f64x2.extract_lane(lo, 1)) + (f64x2.extract_lane(hi, 0) + f64x2.extract_lane(hi, 1));
  for (; i < n; i++) {
    const g = <f64>load<f32>(x + (<usize>i << 2));
    s += g * g;
  }
  store<f64>(out, s);
}

/**
 * The AdamW update of n parameters p with gradients g and moments m, v (all f32), in f64 arithmetic rounded to
 * f32 on each store, operation for operation as src/train/engine/adamw.ts computes it (so bit for bit the same):
 * gi = g factor; m = b1 m + c1 gi; v = b2 v + c2 gi gi; p = p keep - stepSize m / (sqrt(v) / bc2Sqrt + eps).
 */
export function train_adamw(p: usize, g: usize, m: usize, v: usize, n: i32, factor: f64, keep: f64, b1: f64, c1: f64, b2: f64, c2: f64, stepSize: f64, bc2Sqrt: f64, eps: f64): void {
  // four values a pass in two f64x2 halves: the same operations in the same order per value as the scalar tail
  const F = f64x2.splat(factor), K = f64x2.splat(keep), B1 = f64x2.splat(b1), C1 = f64x2.splat(c1), B2 = f64x2.splat(b2), C2 = f64x2.splat(c2);
  const S = f64x2.splat(stepSize), Q = f64x2.splat(bc2Sqrt), E = f64x2.splat(eps);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g4 = v128.load(g + o), p4 = v128.load(p + o), m4 = v128.load(m + o), v4 = v128.load(v + o);
    const gLo = f64x2.mul(f64x2.promote_low_f32x4(g4), F), gHi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(g4, g4, 2, 3, 0, 1)), F);
    const mLo = adamwMoment(B1, m4, f64x2.mul(C1, gLo)), mHi = adamwMoment(B1, i32x4.shuffle(m4, m4, 2, 3, 0, 1), f64x2.mul(C1, gHi));
    const vLo = adamwMoment(B2, v4, f64x2.mul(f64x2.mul(C2, gLo), gLo)), vHi = adamwMoment(B2, i32x4.shuffle(v4, v4, 2, 3, 0, 1), f64x2.mul(f64x2.mul(C2, gHi), gHi));
    // the rounded moments, as f32 and back (the update reads the stored f32 values)
    const m32 = i32x4.shuffle(f32x4.demote_f64x2_zero(mLo), f32x4.demote_f64x2_zero(mHi), 0, 1, 4, 5);
    const v32 = i32x4.shuffle(f32x4.demote_f64x2_zero(vLo), f32x4.demote_f64x2_zero(vHi), 0, 1, 4, 5);
    v128.store(m + o, m32);
    v128.store(v + o, v32);
    const pLo = adamwParam(f64x2.mul(f64x2.promote_low_f32x4(p4), K), S, m32, v32, Q, E);
    const pHi = adamwParam(f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(p4, p4, 2, 3, 0, 1)), K), S, i32x4.shuffle(m32, m32, 2, 3, 0, 1), i32x4.shuffle(v32, v32, 2, 3, 0, 1), Q, E);
    v128.store(p + o, i32x4.shuffle(f32x4.demote_f64x2_zero(pLo), f32x4.demote_f64x2_zero(pHi), 0, 1, 4, 5));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = <f64>load<f32>(g + o) * factor;
    const pi = <f64>load<f32>(p + o) * keep;
    const mi = <f32>(b1 * <f64>load<f32>(m + o) + c1 * gi);
    const vi = <f32>(b2 * <f64>load<f32>(v + o) + c2 * gi * gi);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, <f32>(pi - (stepSize * <f64>mi) / (Math.sqrt(<f64>vi) / bc2Sqrt + eps)));
  }
}

/** b old + term in f64 for the two low f32 lanes of old (term: c1 g, or c2 g g). */
// @ts-ignore: decorator
@inline function adamwMoment(b: v128, old: v128, term: v128): v128 {
  return f64x2.add(f64x2.mul(b, f64x2.promote_low_f32x4(old)), term);
}

/** pk - (stepSize m) / (sqrt(v) / bc2Sqrt + eps) in f64 for the two low f32 lanes of m and v. */
// @ts-ignore: decorator
@inline function adamwParam(pk: v128, S: v128, m: v128, v: v128, Q: v128, E: v128): v128 {
  return f64x2.sub(pk, f64x2.div(f64x2.mul(S, f64x2.promote_low_f32x4(m)), f64x2.add(f64x2.div(f64x2.sqrt(f64x2.promote_low_f32x4(v)), Q), E)));
}
