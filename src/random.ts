// The project's seeded pseudo-random generators: the same seed gives the same numbers everywhere.
// Three, each kept because seeded outputs depend on it (test data and fuzz inputs, generated models and
// sampling, the shipped demo adapters).

/** mulberry32: uniform numbers in [0, 1) (fuzz inputs, torture runs, test data, the SVD's range finder). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** xoshiro128** with its state spread from the seed by splitmix32: 32-bit outputs (generated models, the wasm engine's sampling). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix32 = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix32();
    this.b = splitmix32();
    this.c = splitmix32();
    this.d = splitmix32() | 1;
  }
  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** Fills a byte array with random bytes (whole 32-bit outputs where the array is 4-byte aligned). */
  fill(bytes: Uint8Array): void {
    const n4 = bytes.byteLength >>> 2;
    if (bytes.byteOffset % 4 === 0) {
      const view = new Uint32Array(bytes.buffer, bytes.byteOffset, n4);
      for (let i = 0; i < n4; i++) view[i] = this.u32();
      for (let i = n4 * 4; i < bytes.byteLength; i++) bytes[i] = this.u32() & 255;
    } else {
      for (let i = 0; i < bytes.byteLength; i++) bytes[i] = this.u32() & 255;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** xorshift32: uniform numbers in (0, 1), never 0 (a Box-Muller input); the demo adapters' values come from it. */
export function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}
