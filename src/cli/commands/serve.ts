// lora-edge serve: the OpenAI-compatible HTTP server over one base and its adapters, until SIGINT or SIGTERM.
import { EXIT, UsageError } from "../command.js";
import { defineCommand } from "../spec.js";
import { RUNTIME_OPTIONS, openWithAdapters } from "../runtime-flags.js";
import { createServer } from "../../serve/index.js";
import { isLoopback } from "../../serve/auth.js";

export default defineCommand({
  name: "serve",
  summary: "OpenAI-compatible server: lora-edge serve -m BASE -a NAME=FILE[:SCALE] [--port 8080] [--api-key KEY]",
  usage: ["[-m BASE.gguf] [-a NAME=FILE[:SCALE] ...] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [options]"],
  options: {
    ...RUNTIME_OPTIONS,
    host: { kind: "string", value: "HOST", default: "127.0.0.1", help: "address to listen on; a non-loopback address needs --api-key" },
    port: { kind: "int", min: 0, max: 65535, default: 8080, help: "port to listen on (0: any free port)" },
    "api-key": { kind: "string", value: "KEY", help: "Bearer key every request must carry (default: LORA_EDGE_API_KEY, else none)" },
    parallel: { kind: "int", min: 1, default: 4, help: "requests decoded at once" },
    queue: { kind: "int", min: 0, default: 64, help: "requests that may wait beyond those; more get 503 with Retry-After" },
    "adapter-dir": { kind: "string", value: "DIR", help: "allow POST /v1/load_lora_adapter for files inside DIR (off without it)" },
    name: { kind: "string", value: "MODEL", help: "the base's model name in requests and /v1/models (default: the file's name)" },
    "body-limit": { kind: "int", min: 1024, default: 1 << 20, help: "largest request body in bytes" },
  },
  notes: "Stops on SIGINT or SIGTERM. Endpoints, dialects and /metrics: see the README's Serve section.",
}, async (values) => {
  const options = {
    host: values.host,
    port: values.port,
    apiKey: values["api-key"] ?? process.env.LORA_EDGE_API_KEY,
    parallel: values.parallel,
    queue: values.queue,
    adapterDir: values["adapter-dir"],
    modelName: values.name,
    bodyLimit: values["body-limit"],
  };
  if (!isLoopback(options.host) && !options.apiKey) {
    throw new UsageError(`refusing to listen on ${options.host} without --api-key (or LORA_EDGE_API_KEY): anyone who can reach it could use the model`);
  }
  const rt = await openWithAdapters(values);
  let server;
  try {
    server = createServer(rt, options);
    const { url } = await server.listen();
    const names = rt.adapters.list().map((a) => a.name);
    process.stderr.write(
      `lora-edge: serving ${server.modelName}${names.length ? ` with adapters ${names.join(", ")}` : ""} on ${url}/v1 ` +
        `(${options.parallel} at once, ${options.queue} waiting, context ${server.scheduler.contextSize}${options.apiKey ? ", API key required" : ""})\n`,
    );
  } catch (e) {
    await rt.dispose();
    throw e;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  process.stderr.write("lora-edge: stopping\n");
  await server.close();
  await rt.dispose();
  return EXIT.ok;
});
