// Low-rank and dense f32 math: merge W += s B A on rows, and a blocked matrix product.

/**
 * W (rows x cols) += s * B (rows x r) A (r x cols), all f32 row-major. Rows go in pairs that share each load of
 * A; every value still sums its r terms in k order, so pairs and single rows give the same bits.
 */
export function merge_f32(wp: usize, bp: usize, ap: usize, rows: i32, cols: i32, r: i32, s: f32): void {
  const stride = <usize>cols << 2;
  let o = 0;
  for (; o + 2 <= rows; o += 2) {
    const w0 = wp + <usize>o * stride, w1 = w0 + stride;
    const b0 = bp + <usize>o * (<usize>r << 2), b1 = b0 + (<usize>r << 2);
    let c = 0;
    for (; c + 16 <= cols; c += 16) {
      const cb = <usize>c << 2;
      let x0 = v128.load(w0 + cb), x1 = v128.load(w0 + cb, 16), x2 = v128.load(w0 + cb, 32), x3 = v128.load(w0 + cb, 48);
      let y0 = v128.load(w1 + cb), y1 = v128.load(w1 + cb, 16), y2 = v128.load(w1 + cb, 32), y3 = v128.load(w1 + cb, 48);
      for (let k = 0; k < r; k++) {
        const kb = <usize>k << 2;
        const p = f32x4.splat(s * load<f32>(b0 + kb));
        const q = f32x4.splat(s * load<f32>(b1 + kb));
        const ac = ap + <usize>k * stride + cb;
        const a0 = v128.load(ac), a1 = v128.load(ac, 16), a2 = v128.load(ac, 32), a3 = v128.load(ac, 48);
        x0 = f32x4.add(x0, f32x4.mul(p, a0)); y0 = f32x4.add(y0, f32x4.mul(q, a0));
        x1 = f32x4.add(x1, f32x4.mul(p, a1)); y1 = f32x4.add(y1, f32x4.mul(q, a1));
        x2 = f32x4.add(x2, f32x4.mul(p, a2)); y2 = f32x4.add(y2, f32x4.mul(q, a2));
        x3 = f32x4.add(x3, f32x4.mul(p, a3)); y3 = f32x4.add(y3, f32x4.mul(q, a3));
      }
      v128.store(w0 + cb, x0); v128.store(w0 + cb, x1, 16); v128.store(w0 + cb, x2, 32); v128.store(w0 + cb, x3, 48);
      v128.store(w1 + cb, y0); v128.store(w1 + cb, y1, 16); v128.store(w1 + cb, y2, 32); v128.store(w1 + cb, y3, 48);
    }
    for (; c < cols; c++) {
      const cb = <usize>c << 2;
      let v = load<f32>(w0 + cb), u = load<f32>(w1 + cb);
      for (let k = 0; k < r; k++) {
        const a = load<f32>(ap + <usize>k * stride + cb);
        v += (s * load<f32>(b0 + (<usize>k << 2))) * a;
        u += (s * load<f32>(b1 + (<usize>k << 2))) * a;
      }
      store<f32>(w0 + cb, v); store<f32>(w1 + cb, u);
    }
  }
  for (; o < rows; o++) {
    const wrow = wp + <usize>o * stride;
    const brow = bp + <usize>o * (<usize>r << 2);
    let c = 0;
    for (; c + 16 <= cols; c += 16) {
      const wc = wrow + (<usize>c << 2);
      let a0 = v128.load(wc), a1 = v128.load(wc, 16), a2 = v128.load(wc, 32), a3 = v128.load(wc, 48);
      for (let k = 0; k < r; k++) {
        const bk = f32x4.splat(s * load<f32>(brow + (<usize>k << 2)));
        const ac = ap + <usize>k * stride + (<usize>c << 2);
        a0 = f32x4.add(a0, f32x4.mul(bk, v128.load(ac)));
        a1 = f32x4.add(a1, f32x4.mul(bk, v128.load(ac, 16)));
        a2 = f32x4.add(a2, f32x4.mul(bk, v128.load(ac, 32)));
        a3 = f32x4.add(a3, f32x4.mul(bk, v128.load(ac, 48)));
      }
      v128.store(wc, a0); v128.store(wc, a1, 16); v128.store(wc, a2, 32); v128.store(wc, a3, 48);
    }
    for (; c < cols; c++) {
      const wc = wrow + (<usize>c << 2);
      let v = load<f32>(wc);
      for (let k = 0; k < r; k++) v += (s * load<f32>(brow + (<usize>k << 2))) * load<f32>(ap + <usize>k * stride + (<usize>c << 2));
      store<f32>(wc, v);
    }
  }
}

/** C (m x n) = A (m x k) B (k x n), f32 row-major, blocked over k and n for cache reuse. */
export function matmul_f32(ap: usize, bp: usize, cp: usize, m: i32, k: i32, n: i32): void {
  memory.fill(cp, 0, <usize>m * <usize>n << 2);
  const KB = 128, NB = 512;
  for (let kk = 0; kk < k; kk += KB) {
    const ke = min<i32>(kk + KB, k);
    for (let jj = 0; jj < n; jj += NB) {
      const je = min<i32>(jj + NB, n);
      for (let i = 0; i < m; i++) {
        const crow = cp + (<usize>i * <usize>n << 2);
        const arow = ap + (<usize>i * <usize>k << 2);
        let j = jj;
        for (; j + 16 <= je; j += 16) {
          const cc = crow + (<usize>j << 2);
          let c0 = v128.load(cc), c1 = v128.load(cc, 16), c2 = v128.load(cc, 32), c3 = v128.load(cc, 48);
          for (let t = kk; t < ke; t++) {
            const a = f32x4.splat(load<f32>(arow + (<usize>t << 2)));
            const bb = bp + ((<usize>t * <usize>n + <usize>j) << 2);
            c0 = f32x4.add(c0, f32x4.mul(a, v128.load(bb)));
            c1 = f32x4.add(c1, f32x4.mul(a, v128.load(bb, 16)));
            c2 = f32x4.add(c2, f32x4.mul(a, v128.load(bb, 32)));
            c3 = f32x4.add(c3, f32x4.mul(a, v128.load(bb, 48)));
          }
          v128.store(cc, c0); v128.store(cc, c1, 16); v128.store(cc, c2, 32); v128.store(cc, c3, 48);
        }
        for (; j < je; j++) {
          let v = load<f32>(crow + (<usize>j << 2));
          for (let t = kk; t < ke; t++) v += load<f32>(arow + (<usize>t << 2)) * load<f32>(bp + ((<usize>t * <usize>n + <usize>j) << 2));
          store<f32>(crow + (<usize>j << 2), v);
        }
      }
    }
  }
}
