// Seeded random tensor bytes for generated models: F32, F16, and valid Q4_0 / Q8_0 blocks.
import { f32ToF16 } from "../../core/reference/half.js";
import type { Rng } from "../../random.js";

/** Approximately normal value (sum of 4 uniforms), mean 0, standard deviation `std`. */
function gauss(rng: Rng, std: number): number {
  return (rng.next() + rng.next() + rng.next() + rng.next() - 2) * 1.7320508 * std;
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
