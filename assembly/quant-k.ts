// K-quant quantizers (Q4_K, Q6_K) following ggml's reference search step for step; work arrays live in a caller scratch.
import { f32ToF16, f16ToF32 } from "./half";

const GROUP_MAX_EPS: f32 = 1e-15;

// @ts-ignore: decorator
@inline function nearestInt(v: f32): i32 {
  return <i32>nearest<f32>(v);
}

/** Scratch layout (bytes): L u8[256] at 0, Laux u8[32] at 256, w f32[32] at 288, scales f32[16] at 416, mins f32[8] at 480. */
const S_L: usize = 0, S_LAUX: usize = 256, S_W: usize = 288, S_SC: usize = 416, S_MIN: usize = 480;
export const QUANT_K_SCRATCH_BYTES = 512;

/** Scale/min search over n values at x with weights at ws; levels to L; min (negated) stored at minOut. */
function makeQkx2(n: i32, nmax: i32, x: usize, ws: usize, L: usize, laux: usize, rmin: f32, rdelta: f32, nstep: i32, minOut: usize): f32 {
  let mn = load<f32>(x), mx = load<f32>(x);
  let sumW = load<f32>(ws);
  let sumX = sumW * load<f32>(x);
  for (let i = 1; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v < mn) mn = v;
    if (v > mx) mx = v;
    const w = load<f32>(ws + (<usize>i << 2));
    sumW += w;
    sumX += w * v;
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    memory.fill(L, 0, n);
    store<f32>(minOut, -mn);
    return 0;
  }
  let iscale: f32 = <f32>nmax / (mx - mn);
  let scale: f32 = <f32>1 / iscale;
  let bestError: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const l = max<i32>(0, min<i32>(nmax, nearestInt(iscale * (v - mn))));
    store<u8>(L + i, <u8>l);
    const diff = scale * <f32>l + mn - v;
    bestError += load<f32>(ws + (<usize>i << 2)) * (diff * diff);
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * <f32>is + <f32>nmax) / (mx - mn);
    let sumL: f32 = 0, sumL2: f32 = 0, sumXL: f32 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(x + (<usize>i << 2));
      const l = max<i32>(0, min<i32>(nmax, nearestInt(iscale * (v - mn))));
      store<u8>(laux + i, <u8>l);
      const wl = load<f32>(ws + (<usize>i << 2)) * <f32>l;
      sumL += wl;
      sumL2 += wl * <f32>l;
      sumXL += wl * v;
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      let thisScale = (sumW * sumXL - sumX * sumL) / D;
      let thisMin = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      let cur: f32 = 0;
      for (let i = 0; i < n; i++) {
        const diff = thisScale * <f32>load<u8>(laux + i) + thisMin - load<f32>(x + (<usize>i << 2));
        cur += load<f32>(ws + (<usize>i << 2)) * (diff * diff);
      }
      if (cur < bestError) {
        memory.copy(L, laux, n);
        bestError = cur;
        scale = thisScale;
        mn = thisMin;
      }
    }
  }
  store<f32>(minOut, -mn);
  return scale;
}

export function quantize_q4_k(src: usize, dst: usize, nb: i32, scratch: usize): void {
  const L = scratch + S_L, laux = scratch + S_LAUX, ws = scratch + S_W, scs = scratch + S_SC, mins = scratch + S_MIN;
  for (let i = 0; i < nb; i++) {
    const xb = src + (<usize>i << 10);
    const p = dst + <usize>i * 144;
    memory.fill(p, 0, 144);
    let maxScale: f32 = 0, maxMin: f32 = 0;
    for (let j = 0; j < 8; j++) {
      const xj = xb + (<usize>j << 7);
      let sumX2: f32 = 0;
      for (let l = 0; l < 32; l++) {
        const v = load<f32>(xj + (<usize>l << 2));
        sumX2 += v * v;
      }
      const avX = sqrt<f32>(sumX2 / <f32>32);
      for (let l = 0; l < 32; l++) store<f32>(ws + (<usize>l << 2), avX + abs<f32>(load<f32>(xj + (<usize>l << 2))));
      const s = makeQkx2(32, 15, xj, ws, L + (<usize>j << 5), laux, -1, <f32>0.1, 20, mins + (<usize>j << 2));
      store<f32>(scs + (<usize>j << 2), s);
      if (s > maxScale) maxScale = s;
      const m = load<f32>(mins + (<usize>j << 2));
      if (m > maxMin) maxMin = m;
    }
    const invScale: f32 = maxScale > 0 ? <f32>63 / maxScale : 0;
    const invMin: f32 = maxMin > 0 ? <f32>63 / maxMin : 0;
    const sc = p + 4;
    for (let j = 0; j < 8; j++) {
      const ls = min<u32>(63, <u32>nearestInt(invScale * load<f32>(scs + (<usize>j << 2))) & 255);
      const lm = min<u32>(63, <u32>nearestInt(invMin * load<f32>(mins + (<usize>j << 2))) & 255);
      if (j < 4) {
        store<u8>(sc + j, <u8>ls);
        store<u8>(sc + j + 4, <u8>lm);
      } else {
        store<u8>(sc + j + 4, <u8>((ls & 15) | ((lm & 15) << 4)));
        store<u8>(sc + j - 4, load<u8>(sc + j - 4) | <u8>((ls >> 4) << 6));
        store<u8>(sc + j, load<u8>(sc + j) | <u8>((lm >> 4) << 6));
      }
    }
    const dh = f32ToF16(maxScale / <f32>63), mh = f32ToF16(maxMin / <f32>63);
    store<u16>(p, <u16>dh);
    store<u16>(p, <u16>mh, 2);
    const d0 = f16ToF32(dh), m0 = f16ToF32(mh);
    for (let j = 0; j < 8; j++) {
      let s: u32, m: u32;
      if (j < 4) {
        s = <u32>load<u8>(sc + j) & 63;
        m = <u32>load<u8>(sc + j + 4) & 63;
      } else {
        s = (<u32>load<u8>(sc + j + 4) & 15) | ((<u32>load<u8>(sc + j - 4) >> 6) << 4);
        m = (<u32>load<u8>(sc + j + 4) >> 4) | ((<u32>load<u8>(sc + j) >> 6) << 4);
      }
      const d = d0 * <f32>s;
      if (d == 0) continue;
      const dm = m0 * <f32>m;
      for (let ii = 0; ii < 32; ii++) {
        const v = load<f32>(xb + (<usize>((j << 5) + ii) << 2));
        store<u8>(L + (j << 5) + ii, <u8>max<i32>(0, min<i32>(15, nearestInt((v + dm) / d))));
      }
    }
    for (let j = 0; j < 4; j++) {
      for (let l = 0; l < 32; l++) {
        store<u8>(p + 16 + (j << 5) + l, load<u8>(L + (j << 6) + l) | (load<u8>(L + (j << 6) + l + 32) << 4));
      }
    }
  }
}

/** Levels (0..2*nmax-1, stored as i8) for n values with weights x^2, searching 18 nearby scales. */
function makeQx(n: i32, nmax: i32, x: usize, L: usize): f32 {
  let mx: f32 = 0, amax: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const ax = abs<f32>(v);
    if (ax > amax) {
      amax = ax;
      mx = v;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    memory.fill(L, 0, n);
    return 0;
  }
  let iscale: f32 = <f32>(-nmax) / mx;
  let sumlx: f32 = 0, suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const l = max<i32>(-nmax, min<i32>(nmax - 1, nearestInt(iscale * v)));
    store<i8>(L + i, <i8>(l + nmax));
    const w = v * v;
    sumlx += w * v * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  let scale: f32 = suml2 != 0 ? sumlx / suml2 : 0;
  let best = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(<f32>nmax + <f32>0.1 * <f32>is) / mx;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(x + (<usize>i << 2));
      const l = max<i32>(-nmax, min<i32>(nmax - 1, nearestInt(iscale * v)));
      const w = v * v;
      sumlx += w * v * <f32>l;
      suml2 += w * <f32>l * <f32>l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (let i = 0; i < n; i++) {
        const l = max<i32>(-nmax, min<i32>(nmax - 1, nearestInt(iscale * load<f32>(x + (<usize>i << 2)))));
        store<i8>(L + i, <i8>(l + nmax));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

export function quantize_q6_k(src: usize, dst: usize, nb: i32, scratch: usize): void {
  const L = scratch + S_L, scs = scratch + S_SC;
  for (let i = 0; i < nb; i++) {
    const xb = src + (<usize>i << 10);
    const p = dst + <usize>i * 210;
    memory.fill(p, 0, 210);
    let maxScale: f32 = 0, maxAbs: f32 = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQx(16, 32, xb + (<usize>ib << 6), L + (<usize>ib << 4));
      store<f32>(scs + (<usize>ib << 2), s);
      if (abs<f32>(s) > maxAbs) {
        maxAbs = abs<f32>(s);
        maxScale = s;
      }
    }
    if (maxAbs < GROUP_MAX_EPS) continue;
    const iscale: f32 = <f32>-128 / maxScale;
    const dh = f32ToF16(<f32>1 / iscale);
    store<u16>(p, <u16>dh, 208);
    const d0 = f16ToF32(dh);
    for (let ib = 0; ib < 16; ib++) store<i8>(p + 192 + ib, <i8>min<i32>(127, nearestInt(iscale * load<f32>(scs + (<usize>ib << 2)))));
    for (let j = 0; j < 16; j++) {
      const d = d0 * <f32>load<i8>(p + 192 + j);
      if (d == 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const v = load<f32>(xb + (<usize>((j << 4) + ii) << 2));
        store<i8>(L + (j << 4) + ii, <i8>(max<i32>(-32, min<i32>(31, nearestInt(v / d))) + 32));
      }
    }
    for (let h = 0; h < 2; h++) {
      const j = h << 7;
      for (let l = 0; l < 32; l++) {
        const a = <u32>load<u8>(L + j + l), b = <u32>load<u8>(L + j + l + 32);
        const c = <u32>load<u8>(L + j + l + 64), e = <u32>load<u8>(L + j + l + 96);
        store<u8>(p + (h << 6) + l, <u8>((a & 15) | ((c & 15) << 4)));
        store<u8>(p + (h << 6) + l + 32, <u8>((b & 15) | ((e & 15) << 4)));
        store<u8>(p + 128 + (h << 5) + l, <u8>((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)));
      }
    }
  }
}
