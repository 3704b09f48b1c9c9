// Headless Chromium for the browser tests and benchmark: the system's executable (CHROMIUM_PATH, else Debian's), or a reason to skip.
import { existsSync } from "node:fs";
import puppeteer, { type Browser } from "puppeteer-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium executable to drive, or why there is none. */
export function findChromium(): { path: string } | { reason: string } {
  const env = process.env.CHROMIUM_PATH;
  if (env) return existsSync(env) ? { path: env } : { reason: `CHROMIUM_PATH=${env} does not exist` };
  const found = CANDIDATES.find((p) => existsSync(p));
  return found ? { path: found } : { reason: `no Chromium at ${CANDIDATES.join(", ")} and CHROMIUM_PATH is not set` };
}

export function announceSkip(file: string, reason: string): void {
  console.log(`Browser tests skipped (${file}): ${reason}. Install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH to run them.`);
}

/** Headless Chromium with the flags a container needs. */
export function launchChromium(executablePath: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
}
