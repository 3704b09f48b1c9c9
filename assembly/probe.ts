// Memory read probe: streams a buffer through SIMD loads with minimal work, to measure the read ceiling.

/** Reads n bytes (n a multiple of 64) at p; returns a checksum so the loads cannot be dropped. */
export function read_probe(p: usize, n: usize): i32 {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  for (let i: usize = 0; i < n; i += 64) {
    a = i32x4.add(a, v128.load(p + i));
    b = i32x4.add(b, v128.load(p + i, 16));
    c = i32x4.add(c, v128.load(p + i, 32));
    d = i32x4.add(d, v128.load(p + i, 48));
  }
  const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
  return i32x4.extract_lane(s, 0) ^ i32x4.extract_lane(s, 1) ^ i32x4.extract_lane(s, 2) ^ i32x4.extract_lane(s, 3);
}
