// npm run demo:web: serves the browser demo (cross-origin isolated, so it runs on threads) on 127.0.0.1 until stopped.
import { startPageServer } from "../build/src/serve/page-server.js";

const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 8080;
const server = await startPageServer({ port });
console.log(`lora-edge browser demo: ${server.url}  (one thread, without the isolation headers: ${server.plainUrl})`);
console.log("Ctrl-C stops it.");
