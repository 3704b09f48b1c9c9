#!/usr/bin/env node
// lora-edge executable: runs the CLI on the process arguments and exits with its code.
import { main } from "./app.js";

// A closed pipe (lora-edge inspect | head) ends output quietly instead of crashing.
process.stdout.on("error", (e: NodeJS.ErrnoException) => { if (e.code === "EPIPE") process.exit(0); else throw e; });

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
