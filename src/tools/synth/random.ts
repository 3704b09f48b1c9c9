// Seeded random tensor bytes for generated models: F32, F16, and valid Q4_0 / Q8_0 blocks.
import { f32ToF16 } from "../../core/reference/half.js";

/** xoshiro128** generator: deterministic, fast, 32-bit outputs. */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    // splitmix32 to spread the seed over the state
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next() | 1;
  }
  u32(): number {
    const m = Math.imul(this.b, 5);
    const out = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t; this.d = (this.d << 11) | (this.d >>> 21);
    return out;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  /** Fills a byte array with random bytes. */
  fill(bytes: Uint8Array): void {
    const n4 = bytes.byteLength >>> 2;
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteOffset % 4 === 0 ? n4 : 0);
    if (view.length === n4) {
      for (let i = 0; i < n4; i++) view[i] = this.u32();
      for (let i = n4 * 4; i < bytes.byteLength; i++) bytes[i] = this.u32() & 255;
    } else {
      for (let i = 0; i < bytes.byteLength; i++) bytes[i] = this.u32() & 255;
    }
  }
}

/** Approximately normal value (sum of 4 uniforms), mean 0, standard deviation `std`. */
function gauss(rng: Rng, std: number): number {
  return (rng.float() + rng.float() + rng.float() + rng.float() - 2) * 1.7320508 * std;
}

/** `n` F32 values with the given standard deviation (or all `constant` when given). */
export function randomF32(rng: Rng, n: number, std: number, constant?: number): Uint8Array {
  const out = new Float32Array(n);
  if (constant !== undefined) out.fill(constant);
  else for (let i = 0; i < n; i++) out[i] = gauss(rng, std);
  return new Uint8Array(out.buffer);
}

/** `n` F16 values with the given standard deviation. */
export function randomF16(rng: Rng, n: number, std: number): Uint8Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToF16(gauss(rng, std));
  return new Uint8Array(out.buffer);
}

/**
 * Valid Q4_0 blocks (f16 scale + 16 bytes of random nibbles) for `n` values whose dequantized standard
 * deviation is about `std` (uniform nibbles in -8..7 have a deviation of about 4.6 steps).
 */
export function randomQ4_0(rng: Rng, n: number, std: number): Uint8Array {
  const blocks = n / 32;
  const out = new Uint8Array(blocks * 18);
  rng.fill(out);
  const d = f32ToF16(std / 4.6);
  for (let b = 0; b < blocks; b++) {
    out[b * 18] = d & 255;
    out[b * 18 + 1] = d >>> 8;
  }
  return out;
}

/** Valid Q8_0 blocks (f16 scale + 32 random i8) for `n` values of deviation about `std`. */
export function randomQ8_0(rng: Rng, n: number, std: number): Uint8Array {
  const blocks = n / 32;
  const out = new Uint8Array(blocks * 34);
  rng.fill(out);
  const d = f32ToF16(std / 73.9);
  for (let b = 0; b < blocks; b++) {
    out[b * 34] = d & 255;
    out[b * 34 + 1] = d >>> 8;
  }
  return out;
}
