// Who may talk to the server: loopback-only without a key, and a Bearer key compared in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";

/** True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1].startsWith("127.");
}

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Whether an Authorization header carries `Bearer <key>`; the comparison takes the same time for any wrong key. */
export function bearerMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer[ \t]+(.*)$/i.exec(header ?? "");
  // compare fixed-length digests so neither the key's length nor a matching prefix shows in the timing
  const given = digest(m ? m[1].trim() : "");
  return timingSafeEqual(given, digest(key)) && m !== null;
}
