// Compiles every wasm build of the kernel core (targets in asconfig.json) into build/wasm/ with the local AssemblyScript compiler.
import { readFileSync, mkdirSync, rmSync, existsSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const config = JSON.parse(readFileSync(join(root, "asconfig.json"), "utf8"));
mkdirSync(join(root, "build", "wasm"), { recursive: true });

let failed = false;
for (const [name, target] of Object.entries(config.targets)) {
  const outFile = join(root, target.outFile);
  // written to a temporary name and renamed, so a reader never sees a half-written build
  const tmpFile = `${outFile}.${process.pid}.tmp`;
  const args = ["--config", join(root, "asconfig.json"), "--target", name, "--outFile", tmpFile, "--baseDir", root];
  const started = Date.now();
  const { error, stderr } = await asc.main(args, { stdout: process.stdout, stderr: process.stderr });
  if (error || !existsSync(tmpFile)) {
    failed = true;
    console.error(`build-wasm: target ${name} failed: ${error?.message ?? "no output"}\n${stderr.toString()}`);
    rmSync(tmpFile, { force: true });
  } else {
    renameSync(tmpFile, outFile);
    console.log(`build-wasm: ${target.outFile} (${Date.now() - started} ms)`);
  }
}
if (failed) process.exit(1);
